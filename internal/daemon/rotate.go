package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// rotator is an io.Writer to a log file that, before a write would take
// the file over max bytes, renames it to path.1 (path.1 to path.2, … up to
// keep old files) and starts a new one. Files are mode 0600, owned by
// uid/gid when those are ≥ 0, so the task's user can read its own logs.
type rotator struct {
	path     string
	max      int64
	keep     int
	uid, gid int

	mu sync.Mutex // guards f and n
	f  *os.File
	n  int64
}

func newRotator(path string, max int64, keep, uid, gid int) (*rotator, error) {
	if max <= 0 {
		max = 1 << 62
	}
	r := &rotator{path: path, max: max, keep: max0(keep), uid: uid, gid: gid}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if uid >= 0 {
		if err := os.Chown(filepath.Dir(path), uid, gid); err != nil {
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

func (r *rotator) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if r.uid >= 0 {
		if err := f.Chown(r.uid, r.gid); err != nil {
			f.Close()
			return err
		}
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
		return r.open() // truncate: keep nothing old
	}
	for i := r.keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", r.path, i), fmt.Sprintf("%s.%d", r.path, i+1))
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return err
	}
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
