//go:build unix

package profile

import (
	"errors"

	"golang.org/x/sys/unix"
)

// statFile is a cgroup stat file kept open for the life of a Sampler and
// re-read from offset 0 with one pread per sample. A raw descriptor instead
// of an *os.File keeps kernfs files out of the runtime poller (they support
// poll, so os.Open would register them) and costs exactly one syscall per
// read (os.File.ReadAt needs a second one to see EOF).
type statFile struct {
	fd int
}

// noFile is the invalid statFile of a missing source.
var noFile = statFile{fd: -1}

func openStat(path string) (statFile, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return noFile, err
	}
	return statFile{fd: fd}, nil
}

func (f statFile) valid() bool { return f.fd >= 0 }

// readAt0 reads the whole file from offset 0 into buf in one call. It
// returns n == len(buf) when the file may be longer than buf; the caller
// then grows buf and reads again (never continues at an offset: cgroup
// files are regenerated on every read, so two reads would not be one
// snapshot).
func (f statFile) readAt0(buf []byte) (int, error) {
	for {
		n, err := unix.Pread(f.fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}

func (f statFile) close() error {
	if f.fd < 0 {
		return nil
	}
	return unix.Close(f.fd)
}

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }
