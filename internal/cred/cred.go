package cred

import (
	"errors"
	"fmt"
)

// Errors returned by Do.
var (
	// ErrSwitch means the thread could not take the credential (the
	// process lacks CAP_SETUID/CAP_SETGID, or the kernel refused); fn did
	// not run.
	ErrSwitch = errors.New("cred: cannot switch to the user's credentials")
	// ErrUnsupported means this platform has no per-thread credentials and
	// c is not the process's own user; fn did not run.
	ErrUnsupported = errors.New("cred: per-thread credentials are not supported on this platform")
)

// Credential is a local user's identity for file access: a uid, a primary
// gid and the supplementary groups (which should include GID, as
// getgrouplist(3) does; they are set exactly as given).
type Credential struct {
	UID, GID uint32
	Groups   []uint32
}

func (c Credential) String() string {
	return fmt.Sprintf("uid %d gid %d groups %v", c.UID, c.GID, c.Groups)
}

// PanicError carries a panic of fn out of Do's thread: Do re-panics with
// it in the caller's goroutine.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("cred: panic in the user's thread: %v\n%s", p.Value, p.Stack)
}
