package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/prescient-sched/prescient/internal/task"
)

// recordV1 marks a value of the tasks bucket as version 1: the byte is
// followed by the JSON form of task.Record. JSON, not a binary layout,
// because task.Record grows fields over time and JSON decodes old and new
// records alike; a Put costs an fsync, next to which encoding is free.
const recordV1 byte = 1

// maxIDLen bounds task ids so index keys stay small.
const maxIDLen = 256

// validRecord checks what the indexes rely on.
func validRecord(r *task.Record) error {
	if r == nil {
		return fmt.Errorf("nil record: %w", ErrInvalid)
	}
	if r.ID == "" || len(r.ID) > maxIDLen || strings.IndexByte(r.ID, 0) >= 0 {
		return fmt.Errorf("record id %q: want 1 to %d bytes without NUL: %w", r.ID, maxIDLen, ErrInvalid)
	}
	if strings.IndexByte(r.Signature, 0) >= 0 {
		return fmt.Errorf("record %s: signature contains NUL: %w", r.ID, ErrInvalid)
	}
	if !r.State.Valid() {
		return fmt.Errorf("record %s: unknown state %q: %w", r.ID, r.State, ErrInvalid)
	}
	return nil
}

// encodeRecord returns the stored form of r.
func encodeRecord(r *task.Record) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(recordV1)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		// Only bad values fail: NaN or ±Inf stats, years beyond 9999.
		return nil, fmt.Errorf("encode record %s: %w: %w", r.ID, ErrInvalid, err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // drop Encode's newline
}

// decodeRecord parses a stored record. Its input is whatever is on disk
// after a crash or an older or newer binary, so it checks everything the
// indexes and callers rely on and never panics.
func decodeRecord(b []byte) (*task.Record, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty value: %w", ErrCorrupt)
	}
	if b[0] != recordV1 {
		return nil, fmt.Errorf("record version %d, want %d: %w", b[0], recordV1, ErrCorrupt)
	}
	var r task.Record
	if err := json.Unmarshal(b[1:], &r); err != nil {
		return nil, fmt.Errorf("decode record: %w: %w", ErrCorrupt, err)
	}
	if err := validRecord(&r); err != nil {
		// %v: a stored record is corrupt, not an invalid argument.
		return nil, fmt.Errorf("decoded record: %v: %w", err, ErrCorrupt)
	}
	return &r, nil
}
