//go:build !linux

package cred

import "os"

// Do runs fn when c is the process's own user; any other user is refused
// with ErrUnsupported, since this platform has no per-thread credentials.
func Do(c Credential, fn func() error) error {
	if int64(c.UID) == int64(os.Geteuid()) {
		return fn()
	}
	return ErrUnsupported
}
