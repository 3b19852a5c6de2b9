//go:build !linux

package profile

// EnableV1IOAccounting returns ErrNotSupported: cgroups are Linux only.
func EnableV1IOAccounting(blkioDir, path string) error { return ErrNotSupported }
