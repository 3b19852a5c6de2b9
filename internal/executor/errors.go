package executor

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrNoCgroups is returned by New when no cgroup hierarchy is mounted.
	ErrNoCgroups = errors.New("executor: no cgroup hierarchy is mounted")
	// ErrDelegation is returned by New when a cgroup directory or file it
	// must write is not writable: not root, and the hierarchy is not
	// delegated to this user. The error names the file or directory.
	ErrDelegation = errors.New("executor: no write access to the cgroup hierarchy (run as root or delegate it to this user)")
	// ErrNotRoot is ErrDelegation under the name most callers look for.
	ErrNotRoot = ErrDelegation
	// ErrInvalid is returned for bad arguments: an empty or unsafe task id,
	// an empty argv, an out-of-range limit, a malformed Config field.
	ErrInvalid = errors.New("executor: invalid argument")
	// ErrNotFound is returned when the program to run, or the task cgroup
	// to adopt, does not exist.
	ErrNotFound = errors.New("executor: not found")
	// ErrNotExecutable is returned when the program exists but cannot be
	// executed (not a regular file, no execute permission, bad format).
	ErrNotExecutable = errors.New("executor: not executable")
	// ErrExists is returned by Start when a cgroup for the task id already
	// exists (a live task, or one not yet closed).
	ErrExists = errors.New("executor: task cgroup already exists")
	// ErrUnsupportedLimit is returned when a limit cannot be applied here:
	// its controller is missing, there is no block device for IOPS, no
	// NetLimiter for a network limit, or the value is below what the kernel
	// can enforce.
	ErrUnsupportedLimit = errors.New("executor: limit cannot be applied on this host")
	// ErrBusy is returned by Executor.Close when task cgroups remain under
	// the root (live tasks that a later Adopt can take over).
	ErrBusy = errors.New("executor: task cgroups remain")
	// ErrClosed is returned by Start and Adopt after Executor.Close.
	ErrClosed = errors.New("executor: closed")
	// ErrUnsupported is returned by New on platforms without cgroups.
	ErrUnsupported = errors.New("executor: not supported on this platform")
)
