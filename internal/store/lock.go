package store

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// fileID is a file's identity as /proc/locks prints it.
type fileID struct {
	major, minor uint32
	inode        uint64
}

// lockPIDs returns the pids of the processes holding a lock on file f,
// parsed from the text of /proc/locks. Waiters ("->" lines) are skipped, and
// so are locks without a pid (-1 for OFD locks, 0 across pid namespaces).
//
// A line reads, for example:
//
//	2: FLOCK  ADVISORY  WRITE 5678 fd:00:2345 0 EOF
//
// where the device's major and minor are hex and the inode decimal.
func lockPIDs(r io.Reader, f fileID) []int {
	var pids []int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] == "->" {
			continue
		}
		// fields: id: type mode access pid dev:ino start end
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 {
			continue
		}
		parts := strings.Split(fields[5], ":")
		if len(parts) != 3 {
			continue
		}
		maj, err1 := strconv.ParseUint(parts[0], 16, 32)
		mnr, err2 := strconv.ParseUint(parts[1], 16, 32)
		ino, err3 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if (fileID{uint32(maj), uint32(mnr), ino}) == f {
			pids = append(pids, pid)
		}
	}
	return pids
}

// describeHolder words the answer of lockPIDs for an error message.
func describeHolder(pids []int, self int) string {
	if len(pids) == 0 {
		return "another process or open (holder unknown)"
	}
	pid := pids[0]
	if pid == self {
		return "pid " + strconv.Itoa(pid) + " (this process: opened twice?)"
	}
	return "pid " + strconv.Itoa(pid)
}
