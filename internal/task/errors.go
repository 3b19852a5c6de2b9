package task

import (
	"errors"
	"fmt"
	"io/fs"
)

// Errors returned by this package. Test for them with errors.Is; the error
// values themselves carry a one-line message naming the path and the cause
// (for example `input "/data/x.csv": permission denied`), and errors.Is also
// matches the cause (fs.ErrNotExist, fs.ErrPermission, …).
var (
	// ErrSpec means the Spec cannot be signed as written: an empty argv, an
	// environment entry that is not KEY=VALUE, or an indirection loop.
	ErrSpec = errors.New("task: invalid spec")
	// ErrProgramNotFound means Argv[0] (or an interpreter named by a #!
	// line, or the program `env` runs) is not an executable regular file.
	ErrProgramNotFound = errors.New("task: program not found")
	// ErrScript means an interpreter's script exists but cannot be read, or
	// changed on every attempt to hash it.
	ErrScript = errors.New("task: script unreadable")
	// ErrInput means a declared input is missing or cannot be read.
	ErrInput = errors.New("task: input unreadable")
	// ErrLimit means a Sign went over one of SignerConfig's budgets
	// (MaxEntries, MaxCodeBytes, Timeout); the error is a *LimitError.
	ErrLimit = errors.New("task: signing limit exceeded")
	// ErrConfig means a SignerConfig was rejected by NewSigner.
	ErrConfig = errors.New("task: invalid signer config")
	// ErrSyntax means a ParseSize, ParseCPU or ParseRate argument is not
	// of the accepted form.
	ErrSyntax = errors.New("task: invalid syntax")
	// ErrRange means a parsed value is negative, zero where it must be
	// positive, or too large.
	ErrRange = errors.New("task: value out of range")
)

// kindError is an error of one of the kinds above with its own message.
// errors.Is matches both the kind and the underlying cause.
type kindError struct {
	kind  error
	msg   string
	cause error
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// newKindError builds a kindError whose message is "<what> <quoted name>: <cause>".
// A *fs.PathError cause is reduced to its errno, so the message names the
// path once: `input "/x": permission denied`, not
// `input "/x": open /x: permission denied`. A cause naming a different path
// (a file inside a directory input) keeps that path in the message.
func newKindError(kind error, what, name string, cause error) error {
	var pe *fs.PathError
	if errors.As(cause, &pe) && (pe.Path == name || pe.Path == "") {
		cause = pe.Err
	} else if errors.As(cause, &pe) {
		return &kindError{kind: kind, msg: fmt.Sprintf("%s %q: %s: %v", what, name, pe.Path, pe.Err), cause: pe.Err}
	}
	return &kindError{kind: kind, msg: fmt.Sprintf("%s %q: %v", what, name, cause), cause: cause}
}

func specErrorf(format string, args ...any) error {
	return &kindError{kind: ErrSpec, msg: fmt.Sprintf(format, args...)}
}
