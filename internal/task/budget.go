package task

import (
	"fmt"
	"time"
)

// Names of the budgets in LimitError.Limit: the SignerConfig fields.
const (
	LimitEntries   = "MaxEntries"
	LimitCodeBytes = "MaxCodeBytes"
	LimitTimeout   = "Timeout"
)

// LimitError is the error of a Sign that went over one of SignerConfig's
// budgets. It matches ErrLimit. Its message names the input or code file
// and the limit's value, and says what to do.
type LimitError struct {
	// Limit is the SignerConfig field that was exceeded: LimitEntries,
	// LimitCodeBytes or LimitTimeout.
	Limit string
	msg   string
}

func (e *LimitError) Error() string { return e.msg }

func (e *LimitError) Unwrap() error { return ErrLimit }

// budget is the work one Sign may still do. It belongs to one Sign call.
type budget struct {
	maxEntries int
	maxCode    int64
	timeout    time.Duration
	deadline   time.Time
	now        func() time.Time

	entries int   // directory entries walked so far
	before  int   // entries walked for the inputs before the current one
	code    int64 // bytes of code files charged so far
}

func (s *Signer) newBudget() *budget {
	now := s.now
	return &budget{
		maxEntries: s.cfg.MaxEntries, maxCode: s.cfg.MaxCodeBytes,
		timeout: s.cfg.Timeout, deadline: now().Add(s.cfg.Timeout), now: now,
	}
}

// startInput marks the start of the walk of another directory input.
func (b *budget) startInput() { b.before = b.entries }

// walk charges n more directory entries, read for the directory input
// named input.
func (b *budget) walk(input string, n int) error {
	first := b.before == 0
	b.entries += n
	if b.entries <= b.maxEntries {
		return b.check("input", input)
	}
	if first {
		return &LimitError{Limit: LimitEntries, msg: fmt.Sprintf(
			"input %q has more than %d entries: name the files the task reads", input, b.maxEntries)}
	}
	return &LimitError{Limit: LimitEntries, msg: fmt.Sprintf(
		"inputs up to %q have more than %d entries together: name the files the task reads", input, b.maxEntries)}
}

// hash charges a code file of size bytes, named by what ("program",
// "script") and path.
func (b *budget) hash(what, path string, size int64) error {
	b.code += size
	if b.code > b.maxCode {
		return &LimitError{Limit: LimitCodeBytes, msg: fmt.Sprintf(
			"%s %q: the code to hash (program and script together) is over %d bytes", what, path, b.maxCode)}
	}
	return b.check(what, path)
}

// check fails once the deadline has passed, naming where signing was.
func (b *budget) check(what, path string) error {
	if b.now().After(b.deadline) {
		return &LimitError{Limit: LimitTimeout, msg: fmt.Sprintf(
			"%s %q: signing took more than %v", what, path, b.timeout)}
	}
	return nil
}
