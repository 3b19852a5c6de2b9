package store

import (
	"crypto/rand"
	"time"

	"github.com/oklog/ulid/v2"
)

// idEntropy makes the random part of ids: crypto/rand, made monotonic
// within a millisecond so that ids made by one process sort in the order
// they were made. LockedMonotonicReader makes it safe for concurrent use.
var idEntropy = &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)}

// NewID returns a new task id: a ULID, 26 characters of Crockford base32
// holding a 48-bit millisecond Unix time and 80 random bits. Ids sort
// lexically by creation time, and strictly so among the ids of one process.
// It is safe for concurrent use.
func NewID() string {
	ms := ulid.Timestamp(time.Now())
	id, err := ulid.New(ms, idEntropy)
	if err != nil {
		// The monotonic increments overflowed the 80 bits within one
		// millisecond (~2^48 ids): fall back to fresh randomness.
		id = ulid.MustNew(ms, rand.Reader)
	}
	return id.String()
}
