//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockHolder says who holds the lock on path, from /proc/locks.
func lockHolder(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return describeHolder(nil, 0)
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return describeHolder(nil, 0)
	}
	defer f.Close()
	id := fileID{major: unix.Major(st.Dev), minor: unix.Minor(st.Dev), inode: st.Ino}
	return describeHolder(lockPIDs(f, id), os.Getpid())
}
