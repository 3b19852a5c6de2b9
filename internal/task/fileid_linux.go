//go:build linux

package task

import (
	"os"
	"syscall"
)

// fileIdentity is what Linux adds to a file's cache key.
type fileIdentity struct {
	dev, ino uint64
	ctime    int64 // ns since the epoch
}

// changed is the last status change, for the racy-timestamp rule.
func (id fileIdentity) changed() int64 { return id.ctime }

// statKey builds the cache key of a file from its stat result.
func statKey(path string, fi os.FileInfo) fileKey {
	k := fileKey{path: path, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.id = fileIdentity{dev: uint64(st.Dev), ino: st.Ino, ctime: st.Ctim.Nano()} //nolint:unconvert // Dev is uint32 on some GOARCHes
	}
	return k
}
