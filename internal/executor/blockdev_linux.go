//go:build linux

package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ioDevice is the block device "MAJ:MIN" that IOPS limits of a task
// working in dir apply to: Config.IODevice, or the whole disk behind dir.
func (e *Executor) ioDevice(dir string) (string, error) {
	if e.cfg.IODevice != "" {
		return e.cfg.IODevice, nil
	}
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = wd
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("iops limit: %w", &fs.PathError{Op: "stat", Path: dir, Err: err})
	}
	dev, err := wholeDisk(e.h.sysDevBlock, unix.Major(st.Dev), unix.Minor(st.Dev))
	if err != nil {
		return "", fmt.Errorf("iops limit: %s: %w", dir, err)
	}
	return dev, nil
}

// wholeDisk maps a block device to the whole disk it belongs to (IO
// throttling works on a disk's request queue, and the kernel rejects a
// partition). Devices outside sysDevBlock (tmpfs, overlayfs, btrfs
// subvolumes, NFS) have no disk to throttle.
func wholeDisk(sysDevBlock string, maj, min uint32) (string, error) {
	id := fmt.Sprintf("%d:%d", maj, min)
	p := filepath.Join(sysDevBlock, id)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no block device backs it (device %s is not in %s; set Config.IODevice): %w",
				id, sysDevBlock, ErrUnsupportedLimit)
		}
		return "", err
	}
	if _, err := os.Stat(filepath.Join(p, "partition")); err != nil {
		return id, nil // a whole disk
	}
	// /sys/dev/block/M:m links to …/block/<disk>/<partition>.
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(real), "dev"))
	if err != nil {
		return "", fmt.Errorf("find the disk of partition %s: %w", id, err)
	}
	disk := strings.TrimSpace(string(data))
	if _, _, err := parseMajMin(disk); err != nil {
		return "", err
	}
	return disk, nil
}
