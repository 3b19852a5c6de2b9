//go:build linux

package task

import "golang.org/x/sys/unix"

// canExec reports whether the calling thread may execute p, checked with
// its effective ids (AT_EACCESS): cred.Do changes only those, and access(2)
// without the flag would check root's real ids instead.
func canExec(p string) error {
	return unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS)
}
