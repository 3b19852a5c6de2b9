package daemon

import (
	"errors"
	"os"
	"strconv"
	"sync"
)

// rotator is an io.Writer to the log file name in a log directory that,
// before a write would take the file over max bytes, renames it to name.1
// (name.1 to name.2, … up to keep old files; the oldest is deleted) and
// starts a new one; with keep 0 it starts the new one in its place. Files
// are made by logDir.create (never opened by name, mode 0600, owned by
// uid/gid when uid ≥ 0, so the task's user can read its own logs), and
// every rename is relative to the directory's descriptor. It counts the
// bytes it deleted: always the oldest output, so "the first Dropped()
// bytes" of the stream are gone.
type rotator struct {
	dir      *logDir // not owned: the caller closes it after the rotator
	name     string
	max      int64
	keep     int
	uid, gid int

	mu      sync.Mutex // guards the fields below
	f       *os.File
	n       int64   // bytes in f
	old     []int64 // sizes of name.1, name.2, … (at most keep)
	dropped int64
}

// newRotator starts name afresh in dir: the file and old files up to
// name.keep left by an earlier attempt of the task are removed.
func newRotator(dir *logDir, name string, max int64, keep, uid, gid int) (*rotator, error) {
	if max <= 0 {
		max = 1 << 62
	}
	r := &rotator{dir: dir, name: name, max: max, keep: max0(keep), uid: uid, gid: gid}
	for i := 1; i <= r.keep; i++ {
		if err := dir.remove(r.oldName(i)); err != nil {
			return nil, err
		}
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func max0(v int) int {
	if v < 0 {
		return 0
	}
	return v
}

func (r *rotator) oldName(i int) string { return r.name + "." + strconv.Itoa(i) }

func (r *rotator) open() error {
	f, err := r.dir.create(r.name, r.uid, r.gid)
	if err != nil {
		return err
	}
	r.f, r.n = f, 0
	return nil
}

func (r *rotator) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	if r.keep == 0 {
		r.dropped += r.n
		return r.open() // keep nothing old: the new file replaces this one
	}
	if len(r.old) == r.keep {
		r.dropped += r.old[r.keep-1] // name.keep is replaced below
		r.old = r.old[:r.keep-1]
	}
	for i := len(r.old); i >= 1; i-- {
		if err := r.dir.rename(r.oldName(i), r.oldName(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := r.dir.rename(r.name, r.oldName(1)); err != nil {
		return err
	}
	r.old = append([]int64{r.n}, r.old...)
	return r.open()
}

func (r *rotator) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	written := 0
	for len(b) > 0 {
		if r.n >= r.max {
			if err := r.rotate(); err != nil {
				return written, err
			}
		}
		chunk := b
		if room := r.max - r.n; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		n, err := r.f.Write(chunk)
		written += n
		r.n += int64(n)
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// Dropped is how many bytes of the stream, from its start, rotation
// deleted.
func (r *rotator) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Close closes the current file; it is idempotent.
func (r *rotator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
