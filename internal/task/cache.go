package task

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// headSize is how much of an executable is kept to read a #! line: the
// kernel reads the same amount (BINPRM_BUF_SIZE).
const headSize = 256

// racyWindow: a file whose mtime or ctime is this close to "now" is hashed
// but not cached. A write that lands in the same timestamp tick as our stat
// (ext4 stamps with a coarse clock; FAT with 2 s) leaves size and mtime
// unchanged, and a cached digest would then be stale for good — the "racy
// git" problem, handled the same way.
const racyWindow = 2 * time.Second

// hashAttempts bounds re-hashing a file that changes while it is read.
const hashAttempts = 3

// fileKey identifies one version of a file without reading it: its path,
// size and mtime, plus the platform's fileIdentity (on Linux device, inode
// and ctime — the ctime, unlike the mtime, cannot be set back by a user with
// touch -r or cp -p).
type fileKey struct {
	path  string
	size  int64
	mtime int64 // ns since the epoch
	id    fileIdentity
}

// fileDigest is the SHA-256 of a file and its first headSize bytes.
type fileDigest struct {
	sum  [sha256.Size]byte
	head []byte
}

// CacheStats counts code-hash cache use since NewSigner.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
}

// codeCache is a bounded LRU of file digests, one entry per path. A lookup
// whose key (device, inode, size, mtime, ctime) differs from the stored one
// is a miss, and the new digest replaces the old entry.
//
// The LRU is hand-written (a list and a map, 40 lines) rather than a
// dependency because it needs per-path replacement and nothing else.
type codeCache struct {
	max int
	now func() time.Time

	mu     sync.Mutex // guards the fields below
	ll     *list.List // of *cacheItem, most recently used first
	byPath map[string]*list.Element
	hits   uint64
	misses uint64
}

type cacheItem struct {
	key fileKey
	d   fileDigest
}

func newCodeCache(max int, now func() time.Time) *codeCache {
	return &codeCache{max: max, now: now, ll: list.New(), byPath: make(map[string]*list.Element)}
}

func (c *codeCache) get(k fileKey) (fileDigest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byPath[k.path]; ok {
		it := el.Value.(*cacheItem)
		if it.key == k {
			c.ll.MoveToFront(el)
			c.hits++
			return it.d, true
		}
	}
	c.misses++
	return fileDigest{}, false
}

func (c *codeCache) put(k fileKey, d fileDigest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byPath[k.path]; ok {
		el.Value = &cacheItem{key: k, d: d}
		c.ll.MoveToFront(el)
		return
	}
	c.byPath[k.path] = c.ll.PushFront(&cacheItem{key: k, d: d})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.byPath, last.Value.(*cacheItem).key.path)
	}
}

func (c *codeCache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Entries: c.ll.Len()}
}

// purge drops every entry (benchmarks of the uncached path use it).
func (c *codeCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.byPath)
}

// racy reports whether k's timestamps are too recent to trust for caching.
func (c *codeCache) racy(k fileKey) bool {
	limit := c.now().Add(-racyWindow).UnixNano()
	return k.mtime >= limit || k.id.changed() >= limit
}

// digest returns the SHA-256 and head of the file at path (which should be
// free of symlinks, so that one file has one entry), charging its size to
// b as code named what ("program", "script"). The file is stat'ed through
// the open descriptor before and after reading, so the digest is of the
// version the key names; a file that keeps changing is an error.
//
// Whose rights: the file is opened for reading before the cache is looked
// at, with the rights of the calling thread — under cred.Do, the user's.
// So a digest cached when one user (or root) signed is served to another
// only if that one can open the file for reading too, and could compute
// the digest themselves; a user who cannot gets "permission denied", never
// the digest, and cannot confirm a guess of a file's content from its
// signature. (Keying entries by uid would give the same guarantee, but
// cache one file once per user and still need the open for the first
// look; the open costs one system call.)
func (c *codeCache) digest(what, path string, b *budget) (fileDigest, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileDigest{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileDigest{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileDigest{}, &os.PathError{Op: "hash", Path: path, Err: errNotRegular}
	}
	if err := b.hash(what, path, fi.Size()); err != nil {
		return fileDigest{}, err
	}
	key := statKey(path, fi)
	if d, ok := c.get(key); ok {
		return d, nil
	}
	for range hashAttempts {
		d, err := hashFile(f, func() error { return b.check(what, path) })
		if err != nil {
			return fileDigest{}, err
		}
		fi, err := f.Stat()
		if err != nil {
			return fileDigest{}, err
		}
		after := statKey(path, fi)
		if after == key {
			if !c.racy(key) {
				c.put(key, d)
			}
			return d, nil
		}
		key = after
	}
	return fileDigest{}, &os.PathError{Op: "hash", Path: path, Err: errChanging}
}

var (
	errNotRegular = errors.New("not a regular file")
	errChanging   = fmt.Errorf("file changed on each of %d attempts to hash it", hashAttempts)
)

// hashChunk is how much hashFile reads between calls of its check.
const hashChunk = 1 << 20

// hashFile hashes f from its start and keeps its first headSize bytes. It
// calls check after each hashChunk bytes and stops with its error.
func hashFile(f *os.File, check func() error) (fileDigest, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fileDigest{}, err
	}
	h := sha256.New()
	head := make([]byte, headSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return fileDigest{}, err
	}
	head = head[:n]
	h.Write(head)
	if n == headSize {
		for {
			m, err := io.CopyN(h, f, hashChunk)
			if err == io.EOF || err == nil && m < hashChunk {
				break
			}
			if err != nil {
				return fileDigest{}, err
			}
			if err := check(); err != nil {
				return fileDigest{}, err
			}
		}
	}
	var d fileDigest
	h.Sum(d.sum[:0])
	d.head = head
	return d, nil
}
