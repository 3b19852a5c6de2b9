//go:build !unix

package profile

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// statFile is the portable fallback of the unix implementation in
// fd_unix.go: an *os.File read with ReadAt.
type statFile struct {
	f *os.File
}

// noFile is the invalid statFile of a missing source.
var noFile = statFile{}

func openStat(path string) (statFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return statFile{}, err
	}
	return statFile{f: f}, nil
}

func (f statFile) valid() bool { return f.f != nil }

func (f statFile) readAt0(buf []byte) (int, error) {
	n, err := f.f.ReadAt(buf, 0)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

func (f statFile) close() error {
	if f.f == nil {
		return nil
	}
	return f.f.Close()
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
