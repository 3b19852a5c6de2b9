package store

import "errors"

// Sentinel errors. Returned errors wrap them; test with errors.Is.
var (
	// ErrNotFound: no task with that id.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrLocked: another process (or another open in this one) holds the
	// state directory.
	ErrLocked = errors.New("store: state dir in use")
	// ErrInvalid: an argument was rejected before anything was written.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrCorrupt: a stored record could not be decoded.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrSchema: tasks.db was written by a newer, incompatible version.
	ErrSchema = errors.New("store: unsupported schema version")
	// ErrOutOfOrder: a sample is older than the TSDB accepts for its series
	// (behind the newest sample of that series, or too far behind the head,
	// beyond the out-of-order window). Nothing of that Append call was stored.
	ErrOutOfOrder = errors.New("store: sample out of order")
	// ErrDuplicate: a sample has the same millisecond as a stored one of the
	// same series but a different value.
	ErrDuplicate = errors.New("store: duplicate sample timestamp")
)
