package profile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// EnableV1IOAccounting makes a cgroup v1 kernel count the IOs to the disk
// that holds path in every blkio cgroup's blkio.throttle.io_serviced, which
// the Sampler reads for the IO dimension on v1 hosts.
//
// Since Linux 6.10 blk-throttle is set up for a disk only when a throttle
// rule is first written for it, and until then the v1 throttle counters of
// all cgroups stay at zero. Writing the rule "MAJ:MIN 0" (no limit) to
// blkioDir's blkio.throttle.read_iops_device sets it up without limiting
// anything; it stays set up after the cgroup is removed. Nothing is
// written when blkioDir already has a read IOPS rule for the disk. Call it
// once at start for each disk tasks use, with a blkio directory whose
// limits the caller owns (the daemon's parent directory, not a task's).
// cgroup v2 io.stat needs none of this.
func EnableV1IOAccounting(blkioDir, path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	disk, err := wholeDisk(unix.Major(st.Dev), unix.Minor(st.Dev))
	if err != nil {
		return fmt.Errorf("disk of %s: %w", path, err)
	}
	rules := filepath.Join(blkioDir, "blkio.throttle.read_iops_device")
	cur, err := os.ReadFile(rules)
	if err != nil {
		return fmt.Errorf("read rules: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(cur))
	for sc.Scan() {
		if dev, _, _ := strings.Cut(sc.Text(), " "); dev == disk {
			return nil
		}
	}
	if err := os.WriteFile(rules, []byte(disk+" 0\n"), 0); err != nil {
		return fmt.Errorf("enable blk-throttle accounting on %s: %w", disk, err)
	}
	return nil
}

// wholeDisk returns "MAJ:MIN" of the disk a block device belongs to: the
// device itself, or the parent of a partition (blk-throttle rules take
// whole disks only).
func wholeDisk(major, minor uint32) (string, error) {
	dev := strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10)
	// /sys/dev/block/MAJ:MIN links into /sys/devices; resolve it so that
	// ".." is the partition's disk, not /sys/dev/block.
	sys, err := filepath.EvalSymlinks(filepath.Join("/sys/dev/block", dev))
	if err != nil {
		return "", fmt.Errorf("%s is not a block device: %w", dev, err)
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err != nil {
		return dev, nil
	}
	parent, err := os.ReadFile(filepath.Join(sys, "..", "dev"))
	if err != nil {
		return "", fmt.Errorf("disk of partition %s: %w", dev, err)
	}
	return strings.TrimSpace(string(parent)), nil
}
