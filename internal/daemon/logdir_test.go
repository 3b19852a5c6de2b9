package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const otherUID = 54321 // a uid no test user has

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown and mknod")
	}
}

// newLogTree makes a private log root (like <state>/logs) holding one
// task directory made by makeLogDir.
func newLogTree(t *testing.T) (root string, dir *logDir) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "logs")
	if err := secureLogRoot(root); err != nil {
		t.Fatal(err)
	}
	dir, err := makeLogDir(filepath.Join(root, "01J0000000000000000000000A"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	return root, dir
}

// TestOpenLog is the check every read of a log by the daemon goes
// through: only a regular file of the task's owner (or, in a directory
// only the daemon can write, the daemon's) is opened; a symlink, a FIFO, a
// device or another user's file is refused at once, without following,
// blocking or reading.
func TestOpenLog(t *testing.T) {
	needRoot(t)
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const owner = 4242
	tests := []struct {
		name     string
		userDir  bool // the directory belongs to the task's user (older daemon)
		plant    func(t *testing.T, dir string)
		want     string // "" (opens), "missing", or the refusal's words
		wantRead string
	}{
		{"regular file of the owner", false, regular(owner, "hello\n"), "", "hello\n"},
		{"regular file of the owner, user's dir", true, regular(owner, "hello\n"), "", "hello\n"},
		{"daemon's file in its own dir", false, regular(0, "root task\n"), "", "root task\n"},
		{"daemon's file in the user's dir", true, regular(0, "x"), "belongs to uid 0", ""},
		{"another user's file", false, regular(otherUID, "x"), "belongs to uid 54321", ""},
		{"symlink to a root-only file", true, func(t *testing.T, dir string) { must(t, os.Symlink(secret, filepath.Join(dir, "stdout.log"))) }, "symbolic link", ""},
		{"symlink to the owner's file", true, func(t *testing.T, dir string) {
			regular(owner, "x")(t, dir)
			must(t, os.Rename(filepath.Join(dir, "stdout.log"), filepath.Join(dir, "real")))
			must(t, os.Symlink("real", filepath.Join(dir, "stdout.log")))
		}, "symbolic link", ""},
		{"fifo", true, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "stdout.log")
			must(t, unix.Mkfifo(p, 0o600))
			must(t, os.Chown(p, owner, owner))
		}, "a FIFO, not a regular file", ""},
		{"char device (/dev/zero)", true, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "stdout.log")
			must(t, unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))))
			must(t, os.Chown(p, owner, owner))
		}, "a character device, not a regular file", ""},
		{"directory", true, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "stdout.log")
			must(t, os.Mkdir(p, 0o700))
			must(t, os.Chown(p, owner, owner))
		}, "a directory, not a regular file", ""},
		{"missing", false, func(*testing.T, string) {}, "missing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, dir := newLogTree(t)
			if tt.userDir {
				must(t, unix.Fchown(dir.fd, owner, owner))
			}
			tt.plant(t, dir.path)
			// Read through a fresh open, as handleLogs does.
			rd, err := openLogDir(filepath.Join(root, filepath.Base(dir.path)))
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			start := time.Now()
			f, err := rd.openLog("stdout.log", owner)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("openLog took %v", d)
			}
			switch tt.want {
			case "":
				if err != nil {
					t.Fatalf("openLog: %v", err)
				}
				defer f.Close()
				b := make([]byte, 100)
				n, _ := f.Read(b)
				if string(b[:n]) != tt.wantRead {
					t.Errorf("read %q, want %q", b[:n], tt.wantRead)
				}
			case "missing":
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("openLog = %v, want os.ErrNotExist", err)
				}
			default:
				if err == nil {
					f.Close()
					t.Fatal("openLog opened it")
				}
				if !errors.Is(err, ErrUnsafeLog) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("openLog = %v, want ErrUnsafeLog saying %q", err, tt.want)
				}
			}
		})
	}
}

func regular(uid int, content string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, "stdout.log")
		must(t, os.WriteFile(p, []byte(content), 0o600))
		must(t, os.Chown(p, uid, uid))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLogDirs: the log root and each task's directory are the daemon's,
// 0755, whatever an older daemon left; a symlink or a root writable by
// others is refused.
func TestLogDirs(t *testing.T) {
	needRoot(t)
	t.Run("log root is fixed", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "logs")
		must(t, os.Mkdir(root, 0o777))
		must(t, os.Chmod(root, 0o777))
		must(t, os.Chown(root, otherUID, otherUID))
		must(t, secureLogRoot(root))
		checkDir(t, root)
	})
	t.Run("log root symlink refused", func(t *testing.T) {
		base := t.TempDir()
		must(t, os.Symlink(t.TempDir(), filepath.Join(base, "logs")))
		if err := secureLogRoot(filepath.Join(base, "logs")); err == nil {
			t.Error("secureLogRoot followed a symlink")
		}
	})
	t.Run("user's task dir taken over", func(t *testing.T) {
		root, dir := newLogTree(t)
		must(t, unix.Fchown(dir.fd, otherUID, otherUID))
		must(t, unix.Fchmod(dir.fd, 0o777))
		d2, err := makeLogDir(dir.path)
		if err != nil {
			t.Fatal(err)
		}
		d2.Close()
		checkDir(t, filepath.Join(root, filepath.Base(dir.path)))
	})
	t.Run("task dir symlink refused", func(t *testing.T) {
		root, _ := newLogTree(t)
		elsewhere := t.TempDir()
		p := filepath.Join(root, "01J0000000000000000000000B")
		must(t, os.Symlink(elsewhere, p))
		if d, err := makeLogDir(p); err == nil {
			d.Close()
			t.Error("makeLogDir followed a symlink")
		}
		if d, err := openLogDir(p); !errors.Is(err, ErrUnsafeLog) {
			if d != nil {
				d.Close()
			}
			t.Errorf("openLogDir = %v, want ErrUnsafeLog", err)
		}
	})
	t.Run("root writable by others refused", func(t *testing.T) {
		root, dir := newLogTree(t)
		must(t, os.Chmod(root, 0o777))
		if d, err := makeLogDir(dir.path); !errors.Is(err, ErrUnsafeLog) {
			if d != nil {
				d.Close()
			}
			t.Errorf("makeLogDir = %v, want ErrUnsafeLog", err)
		}
	})
}

func checkDir(t *testing.T, p string) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); st.Mode() != os.ModeDir|0o755 || sys.Uid != 0 || sys.Gid != 0 {
		t.Errorf("%s: %v %d:%d, want a 0755 directory of root:root", p, st.Mode(), sys.Uid, sys.Gid)
	}
}

// TestRotatorNeverFollows: names planted in the directory (an older
// daemon's, the user's) are replaced, never opened: the victim of a
// symlink keeps its owner and content through creation and rotations.
func TestRotatorNeverFollows(t *testing.T) {
	needRoot(t)
	victim := filepath.Join(t.TempDir(), "passwd")
	must(t, os.WriteFile(victim, []byte("root:x:0:0\n"), 0o644))
	_, dir := newLogTree(t)
	for _, n := range []string{"stdout.log", "stdout.log.1", "stdout.log.2"} {
		must(t, os.Symlink(victim, filepath.Join(dir.path, n)))
	}
	r, err := newRotator(dir, "stdout.log", 10, 2, otherUID, otherUID)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		// A planted symlink appears before every rotation: rotation moves
		// it to stdout.log.1 and never opens it.
		_ = os.Remove(filepath.Join(dir.path, "stdout.log.1"))
		must(t, os.Symlink(victim, filepath.Join(dir.path, "stdout.log.1")))
		if _, err := r.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	must(t, r.Close())
	b, _ := os.ReadFile(victim)
	st, _ := os.Stat(victim)
	if string(b) != "root:x:0:0\n" || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("victim changed: %q uid %d", b, st.Sys().(*syscall.Stat_t).Uid)
	}
	st, err = os.Lstat(filepath.Join(dir.path, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || sys.Uid != otherUID {
		t.Errorf("stdout.log: %v uid %d, want a regular 0600 file of uid %d", st.Mode(), sys.Uid, otherUID)
	}
}

func TestRotator(t *testing.T) {
	tests := []struct {
		name        string
		keep        int
		writes      int // of 15 bytes, max 10 per file
		current     string
		old         []int // sizes of .1, .2, …
		wantDropped int64
	}{
		// 60 bytes in files of 10: six files, the last two old ones kept.
		{"keep two", 2, 4, "56789abcde", []int{10, 10}, 30},
		{"keep none", 0, 4, "56789abcde", nil, 50},
		{"no rotation", 2, 0, "", nil, 0},
		{"within keep", 3, 2, "56789abcde", []int{10, 10}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := newLogTree(t)
			r, err := newRotator(dir, "stdout.log", 10, tt.keep, -1, -1)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.writes {
				if _, err := r.Write([]byte("0123456789abcde")); err != nil {
					t.Fatal(err)
				}
			}
			must(t, r.Close())
			must(t, r.Close()) // idempotent
			path := filepath.Join(dir.path, "stdout.log")
			if b, _ := os.ReadFile(path); string(b) != tt.current {
				t.Errorf("current = %q, want %q", b, tt.current)
			}
			kept := 0
			for i, n := range tt.old {
				b, err := os.ReadFile(path + "." + string(rune('1'+i)))
				if err != nil || len(b) != n {
					t.Errorf(".%d = %q (%v), want %d bytes", i+1, b, err, n)
				}
				kept += len(b)
			}
			if _, err := os.Stat(path + "." + string(rune('1'+len(tt.old)))); err == nil {
				t.Errorf("kept more than %d old files", len(tt.old))
			}
			if got := r.Dropped(); got != tt.wantDropped {
				t.Errorf("Dropped = %d, want %d", got, tt.wantDropped)
			}
			if total := int64(len(tt.current)+kept) + r.Dropped(); total != int64(15*tt.writes) {
				t.Errorf("kept %d + dropped %d ≠ written %d", len(tt.current)+kept, r.Dropped(), 15*tt.writes)
			}
		})
	}
}
