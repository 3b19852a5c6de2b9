package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Log files are handled by root (the daemon and the shims) in directories
// whose names the task's user must not be able to redirect. The layout:
//
//	<state>/logs/        owned by the daemon's user (root), 0755: fixed at every start
//	<state>/logs/<id>/   owned by root, 0755: created (or taken over) by the shim
//	<state>/logs/<id>/std{out,err}.log{,.1,…}
//	                     regular files, 0600, owned by the task's user
//
// The user can read its files at their paths but cannot create, rename or
// remove names in the directory. Every operation on a name inside it goes
// through a descriptor of the directory (openat, renameat, unlinkat,
// fstatat) and never follows a symbolic link; files are created with
// O_EXCL. A directory left by an older daemon may still belong to the
// user, who can then plant anything in it: readers check what they opened
// (openLog), and the shim takes such a directory over before it writes.

// logDirMode is the mode of <state>/logs and of each task's directory.
const logDirMode = 0o755

// logRoot is <state>/logs.
func (d *Daemon) logRoot() string { return filepath.Join(d.cfg.StateDir, "logs") }

// logDir is an open log directory. Close it when done; it is safe for
// concurrent use (its descriptor is only read).
type logDir struct {
	fd   int
	path string // for messages only: never resolved again
}

// Close closes the directory's descriptor.
func (d *logDir) Close() error { return unix.Close(d.fd) }

// secureLogRoot makes path (<state>/logs) a directory owned by this
// process's user, mode 0755, so that only the daemon creates names in it.
// It does not follow a symlink at path.
func secureLogRoot(path string) error {
	if err := os.MkdirAll(path, logDirMode); err != nil {
		return fmt.Errorf("log root: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("log root %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := ownDir(fd); err != nil {
		return fmt.Errorf("log root %s: %w", path, err)
	}
	return nil
}

// ownDir gives the open directory fd to this process's user and group,
// mode 0755, unless it already is.
func ownDir(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if st.Uid != uid || st.Gid != gid {
		if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
			return fmt.Errorf("take ownership: %w", err)
		}
	}
	if st.Mode&0o7777 != logDirMode {
		if err := unix.Fchmod(fd, logDirMode); err != nil {
			return fmt.Errorf("set mode: %w", err)
		}
	}
	return nil
}

// privateDir reports whether st is a directory that only this process's
// user can change (owned by it, not writable by group or others).
func privateDir(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Uid == uint32(os.Geteuid()) && st.Mode&0o022 == 0
}

// openParent opens the directory holding a task's log directory, which
// must be private to this process's user (see secureLogRoot), and returns
// it with the task directory's name.
func openParent(path string) (int, string, error) {
	parent, base := filepath.Split(filepath.Clean(path))
	if base == "" || base == "." || base == ".." || parent == "" {
		return -1, "", fmt.Errorf("log dir %q: not a directory under a log root: %w", path, ErrUnsafeLog)
	}
	// The parent's own path is the daemon's configuration (the state
	// directory), not the user's: symlinks in it are followed.
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("log root %s: %w", parent, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		unix.Close(pfd)
		return -1, "", fmt.Errorf("log root %s: %w", parent, err)
	}
	if !privateDir(&st) {
		unix.Close(pfd)
		return -1, "", fmt.Errorf("log root %s is owned by uid %d with mode %#o; want uid %d and no write for group or others: %w",
			parent, st.Uid, st.Mode&0o7777, os.Geteuid(), ErrUnsafeLog)
	}
	return pfd, base, nil
}

// makeLogDir creates a task's log directory for the shim, or takes over
// one that exists (from an earlier attempt, or left by an older daemon
// owned by the task's user): owned by this process's user, mode 0755.
func makeLogDir(path string) (*logDir, error) {
	pfd, base, err := openParent(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, logDirMode); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create log dir %s: %w", path, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open log dir %s: %w", path, err)
	}
	if err := ownDir(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("log dir %s: %w", path, err)
	}
	return &logDir{fd: fd, path: path}, nil
}

// openLogDir opens an existing task log directory for reading, without
// following a symlink at its name. A missing directory is os.ErrNotExist.
func openLogDir(path string) (*logDir, error) {
	pfd, base, err := openParent(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("log dir %s: %w", path, os.ErrNotExist)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		return nil, fmt.Errorf("log dir %s is not a directory: %w", path, ErrUnsafeLog)
	case err != nil:
		return nil, fmt.Errorf("open log dir %s: %w", path, err)
	}
	return &logDir{fd: fd, path: path}, nil
}

// create makes a new, empty log file name for writing (O_APPEND): a name
// already there is unlinked first (never opened), the file is created with
// O_EXCL and O_NOFOLLOW, mode 0600, and given to uid/gid when uid ≥ 0.
func (d *logDir) create(name string, uid, gid int) (*os.File, error) {
	if err := d.remove(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", d.name(name), err)
	}
	f := os.NewFile(uintptr(fd), d.name(name))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", d.name(name), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%s is %s: %w", d.name(name), fileKind(uint32(st.Mode)), ErrUnsafeLog)
	}
	if uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			f.Close()
			return nil, fmt.Errorf("chown %s: %w", d.name(name), err)
		}
	}
	return f, nil
}

// remove unlinks name (a file, or a symlink itself); a missing name is fine.
func (d *logDir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", d.name(name), err)
	}
	return nil
}

// rename renames from to to inside the directory (replacing to); a
// missing from is os.ErrNotExist.
func (d *logDir) rename(from, to string) error {
	err := unix.Renameat(d.fd, from, d.fd, to)
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rename %s: %w", d.name(from), os.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", d.name(from), to, err)
	}
	return nil
}

// stat is fstatat without following a symlink.
func (d *logDir) stat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func (d *logDir) name(n string) string { return filepath.Join(d.path, n) }

// openLog opens the log file name for reading on behalf of the owner of
// a task. It never follows a symlink, never blocks (a FIFO opens at once
// with O_NONBLOCK and is refused) and never opens anything but a regular
// file: what it finds is checked before the open (so a device is not even
// opened) and again on the descriptor. The file must belong to owner, or
// to this process's user in a directory only that user can change (the
// directory then guarantees the shim made it). A missing file is
// os.ErrNotExist; a refusal wraps ErrUnsafeLog and says why.
func (d *logDir) openLog(name string, owner uint32) (*os.File, error) {
	var dir unix.Stat_t
	if err := unix.Fstat(d.fd, &dir); err != nil {
		return nil, fmt.Errorf("stat %s: %w", d.path, err)
	}
	trusted := privateDir(&dir)
	check := func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s is %s, not a regular file: %w", name, fileKind(uint32(st.Mode)), ErrUnsafeLog)
		}
		if st.Uid != owner && !(trusted && st.Uid == uint32(os.Geteuid())) {
			return fmt.Errorf("%s belongs to uid %d, not to the task's owner (uid %d): %w", name, st.Uid, owner, ErrUnsafeLog)
		}
		return nil
	}
	pre, err := d.stat(name)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("%s: %w", d.name(name), os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", d.name(name), err)
	}
	if err := check(&pre); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("%s: %w", d.name(name), os.ErrNotExist)
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%s is a symbolic link, not a regular file: %w", name, ErrUnsafeLog)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", d.name(name), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", d.name(name), err)
	}
	if err := check(&st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), d.name(name)), nil
}

// fileKind names a file type for messages.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "of an unknown type"
}
