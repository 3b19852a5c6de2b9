package daemon

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrConfig: a Config field is missing or out of range.
	ErrConfig = errors.New("daemon: invalid configuration")
	// ErrUnsupported: the daemon needs Linux.
	ErrUnsupported = errors.New("daemon: not supported on this platform")
	// ErrSocketInUse: another daemon answers on the socket.
	ErrSocketInUse = errors.New("daemon: socket in use by a running daemon")
	// ErrUnsafeLog: a log file or directory is not what the daemon made (a
	// symlink, a FIFO, a device, another user's file, a directory others
	// can write): it is neither read nor written.
	ErrUnsafeLog = errors.New("daemon: unsafe log file")
)
