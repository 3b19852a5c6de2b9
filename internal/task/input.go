package task

import (
	"cmp"
	"errors"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// InputInfo describes one declared input as it enters a signature: its type
// and size bucket are hashed; its path and exact size are not (the exact
// size is a feature for the predictor, see Signature.InputBytes).
type InputInfo struct {
	Path   string `json:"path"`            // absolute, as declared (symlinks not resolved)
	Type   string `json:"type"`            // see sniffType; directories "dir:<dominant type>"
	Bucket int    `json:"bucket"`          // ceil(log2(Size)); 0 for 0 or 1 byte
	Size   int64  `json:"size"`            // bytes; for a directory, of its regular files
	Files  int    `json:"files,omitempty"` // directories: regular files under it
}

func (in InputInfo) isDir() bool { return strings.HasPrefix(in.Type, "dir:") }

// placeholder is what replaces the input's path in the argument vector.
func (in InputInfo) placeholder() string {
	return "<input:" + in.Type + ":2^" + strconv.Itoa(in.Bucket) + ">"
}

// sizeBucket is the power-of-two bucket of n: ceil(log2(n)), so that bucket
// B holds sizes in (2^(B-1), 2^B]. 0 and 1 are both bucket 0.
func sizeBucket(n int64) int {
	if n <= 1 {
		return 0
	}
	return bits.Len64(uint64(n - 1))
}

// describeInput characterises the declared input p (relative paths are
// taken from dir).
//
// A declared symlink is followed; inside a directory, symlinks are not
// (filepath.WalkDir), and only regular files count. Non-regular inputs
// (FIFOs, sockets, devices) are typed by their mode and never opened, so a
// FIFO cannot block signing.
//
// Every file is read with the calling thread's rights (see Signer): a
// declared file is opened even when empty, so an input the caller cannot
// read is an error whatever its size. The walk of directory inputs is
// charged to b (MaxEntries) and stops at its deadline.
func (s *Signer) describeInput(p, dir string, b *budget) (InputInfo, error) {
	abs := absIn(p, dir)
	if err := b.check("input", abs); err != nil {
		return InputInfo{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return InputInfo{}, newKindError(ErrInput, "input", abs, err)
	}
	in := InputInfo{Path: abs}
	switch m := fi.Mode(); {
	case m.IsRegular():
		typ, err := sniffFile(abs, fi.Size())
		if err != nil {
			return InputInfo{}, newKindError(ErrInput, "input", abs, err)
		}
		in.Type, in.Size = typ, fi.Size()
	case m.IsDir():
		if err := s.describeDir(abs, &in, b); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				return InputInfo{}, err
			}
			return InputInfo{}, newKindError(ErrInput, "input", abs, err)
		}
	case m&fs.ModeNamedPipe != 0:
		in.Type = "fifo"
	case m&fs.ModeSocket != 0:
		in.Type = "socket"
	case m&fs.ModeCharDevice != 0:
		in.Type = "chardev"
	case m&fs.ModeDevice != 0:
		in.Type = "blockdev"
	default:
		in.Type = "irregular"
	}
	in.Bucket = sizeBucket(in.Size)
	return in, nil
}

// sniffFile reads the first bytes of a regular file and types it. It opens
// the file even when size is 0, so that an unreadable file is an error.
func sniffFile(path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if size == 0 {
		return "empty", nil
	}
	buf := make([]byte, sniffLen)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return "", err
	}
	return sniffType(path, buf[:n], size), nil
}

// describeDir fills in a directory input: total size and count of the
// regular files under it, and "dir:<dominant type>" — the type holding the
// most bytes (ties: more files, then the smaller name); "dir:empty" when it
// has no regular file. Files are typed by content for the first
// cfg.MaxSniffFiles in walk (lexical) order and by extension after that
// ("binary" when the extension is unknown), which keeps the type of a huge
// directory cheap and deterministic. Every entry walked is charged to b,
// and each regular file is checked against b's deadline.
func (s *Signer) describeDir(root string, in *InputInfo, b *budget) error {
	// Walk the target of a declared symlink; WalkDir does not follow a
	// symlinked root.
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	type agg struct {
		bytes int64
		files int
	}
	byType := map[string]*agg{}
	sniffed := 0
	b.startInput()
	err = walkDir(real, func(n int) error { return b.walk(root, n) }, func(p string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return nil
		}
		if err := b.check("input", root); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var typ string
		switch {
		case fi.Size() == 0:
			typ = "empty"
		case sniffed < s.cfg.MaxSniffFiles:
			sniffed++
			if typ, err = sniffFile(p, fi.Size()); err != nil {
				return err
			}
		default:
			typ = extTypeOnly(p)
		}
		a := byType[typ]
		if a == nil {
			a = &agg{}
			byType[typ] = a
		}
		a.bytes += fi.Size()
		a.files++
		in.Size += fi.Size()
		in.Files++
		return nil
	})
	if err != nil {
		return err
	}
	if len(byType) == 0 {
		in.Type = "dir:empty"
		return nil
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.SortFunc(types, func(x, y string) int {
		ax, ay := byType[x], byType[y]
		if c := cmp.Compare(ay.bytes, ax.bytes); c != 0 {
			return c
		}
		if c := cmp.Compare(ay.files, ax.files); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	in.Type = "dir:" + types[0]
	return nil
}

// walkBatch is how many entries walkDir reads from a directory at a time.
const walkBatch = 1024

// walkDir calls fn for every entry under the directory root, in the order
// of filepath.WalkDir (lexical, depth first; symlinks are not followed;
// root itself is not passed). Unlike WalkDir it reads each directory
// walkBatch entries at a time and calls charge with each batch's size
// before keeping it, so that a charge that fails stops a huge directory
// before it is read whole. An error from opening or reading a directory is
// returned as is (an *fs.PathError naming the directory).
func walkDir(root string, charge func(n int) error, fn func(path string, d fs.DirEntry) error) error {
	ents, err := readDirCharged(root, charge)
	if err != nil {
		return err
	}
	for _, d := range ents {
		p := filepath.Join(root, d.Name())
		if err := fn(p, d); err != nil {
			return err
		}
		if d.IsDir() {
			if err := walkDir(p, charge, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDirCharged reads the directory dir sorted by name, charging each
// batch read.
func readDirCharged(dir string, charge func(n int) error) ([]fs.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ents []fs.DirEntry
	for {
		batch, err := f.ReadDir(walkBatch)
		if len(batch) > 0 {
			if err := charge(len(batch)); err != nil {
				return nil, err
			}
			ents = append(ents, batch...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// extTypeOnly types a file by its extension alone.
func extTypeOnly(name string) string {
	ext := extOf(name)
	if ce, ok := compressedExt[ext]; ok {
		inner := ce.inner
		if inner == "" {
			inner = extTypes[extOf(strings.TrimSuffix(name, filepath.Ext(name)))]
		}
		if inner == "" {
			return ce.comp
		}
		return inner + "+" + ce.comp
	}
	if t, ok := extTypes[ext]; ok {
		return t
	}
	return "binary"
}

// absIn makes p absolute against dir (itself absolute) and cleans it.
func absIn(p, dir string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}
