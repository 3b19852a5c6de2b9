//go:build linux

package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup1"
	"syscall"

	"golang.org/x/sys/unix"
)

// v2Controllers are the v2 controllers delegated down to the root cgroup.
var v2Controllers = []string{"cpu", "memory", "io", "pids"}

// host is where the executor looks at and writes to the system. Tests
// replace it with a fake cgroupfs in a temporary directory.
type host struct {
	mountinfo   string // /proc/self/mountinfo
	selfCgroup  string // /proc/self/cgroup
	sysDevBlock string // /sys/dev/block
	pid         int    // this process
	// onMainThread reports whether the calling thread is the main thread
	// (the thread-group leader).
	onMainThread func() bool
	// write writes one cgroup control file with a single write(2). On a
	// real cgroupfs the file must exist (a missing file means a missing
	// controller); the fake creates it.
	write func(path string, data []byte) error
}

func realHost() host {
	return host{
		mountinfo:    "/proc/self/mountinfo",
		selfCgroup:   "/proc/self/cgroup",
		sysDevBlock:  "/sys/dev/block",
		pid:          os.Getpid(),
		write:        writeControlFile,
		onMainThread: func() bool { return unix.Gettid() == unix.Getpid() },
	}
}

// writeControlFile writes data to an existing cgroup control file in one
// write(2), as the kernel parses each write separately.
func writeControlFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", strings.TrimSpace(string(data)), path, err)
	}
	return nil
}

// Executor starts tasks in cgroups under one root cgroup. It is safe for
// concurrent use.
type Executor struct {
	cfg Config
	log *slog.Logger
	h   host
	lay layout

	// Set up by New, read-only afterwards.
	v1Roots map[string]string   // v1 controller -> root dir (<own>/<Root>)
	v1Subs  []cgroup1.Subsystem // library subsystems, one per controller
	memsw   bool                // v1 memory.memsw.limit_in_bytes exists
	v2Root  string              // <own>/<Root> in the v2 hierarchy, "" if none
	v2Ctrl  map[string]bool     // controllers delegated to task cgroups (V2 mode)
	v2Swap  bool                // v2 memory.swap.max exists
	created []string            // root dirs New created, deepest last

	mu     sync.Mutex // guards the fields below
	net    NetLimiter
	closed bool
}

// New works out the host's cgroup layout and creates the root cgroups (in
// every v1 controller used and in the v2 hierarchy), delegating the v2
// controllers down to them. Without write access it fails with an error
// wrapping ErrDelegation that names the file or directory.
func New(cfg Config) (*Executor, error) {
	return newExecutor(cfg, realHost())
}

func newExecutor(cfg Config, h host) (*Executor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lay, err := readLayout(h)
	if err != nil {
		return nil, err
	}
	e := &Executor{
		cfg: cfg, log: cfg.Logger, h: h, lay: lay, net: cfg.NetLimiter,
		v1Roots: map[string]string{}, v2Ctrl: map[string]bool{},
	}
	if err := e.setupV1(); err != nil {
		e.removeRoots()
		return nil, err
	}
	if err := e.setupV2(); err != nil {
		e.removeRoots()
		return nil, err
	}
	e.log.Debug("cgroups ready", "mode", e.lay.mode, "v1", e.v1Roots, "v2", e.v2Root, "v2_controllers", e.v2Ctrl)
	return e, nil
}

func readLayout(h host) (layout, error) {
	mi, err := os.Open(h.mountinfo)
	if err != nil {
		return layout{}, fmt.Errorf("read mounts: %w", err)
	}
	defer mi.Close()
	mounts, err := parseMountinfo(mi)
	if err != nil {
		return layout{}, fmt.Errorf("parse %s: %w", h.mountinfo, err)
	}
	cg, err := os.Open(h.selfCgroup)
	if err != nil {
		return layout{}, fmt.Errorf("read own cgroup: %w", err)
	}
	defer cg.Close()
	pc, err := parseProcCgroup(cg)
	if err != nil {
		return layout{}, fmt.Errorf("parse %s: %w", h.selfCgroup, err)
	}
	return discover(mounts, pc)
}

// Mode is the host's cgroup layout.
func (e *Executor) Mode() Mode { return e.lay.mode }

// V2Root is the root cgroup's directory in the v2 hierarchy (on a hybrid
// host, under /sys/fs/cgroup/unified), "" if there is none. eBPF cgroup
// programs attached there see every task.
func (e *Executor) V2Root() string { return e.v2Root }

// V1Root is the root cgroup's directory in the v1 hierarchy of controller
// (e.g. "blkio"), "" if that controller is not mounted as v1.
func (e *Executor) V1Root(controller string) string { return e.v1Roots[controller] }

// SetNetLimiter sets (or, with nil, removes) the NetLimiter used by later
// Start and Update calls.
func (e *Executor) SetNetLimiter(n NetLimiter) {
	e.mu.Lock()
	e.net = n
	e.mu.Unlock()
}

func (e *Executor) state() (closed bool, net NetLimiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed, e.net
}

func (e *Executor) setupV1() error {
	homes := map[string]bool{}
	for _, c := range v1Controllers {
		hh, ok := e.lay.v1[c]
		if !ok {
			continue
		}
		root := filepath.Join(hh.own, e.cfg.Root)
		e.v1Roots[c] = root
		if err := e.mkdirRoot(hh.own, root); err != nil {
			return err
		}
		// Launching moves a thread into the task's v1 cgroups and back
		// home; both ends must be writable.
		if !homes[hh.own] {
			homes[hh.own] = true
			if err := writable(filepath.Join(hh.own, "tasks")); err != nil {
				return err
			}
		}
		e.v1Subs = append(e.v1Subs, newV1Subsystem(c, hh.mount))
	}
	if r, ok := e.v1Roots["memory"]; ok {
		_, err := os.Stat(filepath.Join(r, "memory.memsw.limit_in_bytes"))
		e.memsw = err == nil
	}
	return nil
}

func newV1Subsystem(c, mount string) cgroup1.Subsystem {
	switch c {
	case "cpu":
		return cgroup1.NewCpu(mount)
	case "cpuacct":
		return cgroup1.NewCpuacct(mount)
	case "memory":
		return cgroup1.NewMemory(mount)
	case "blkio":
		return cgroup1.NewBlkio(mount)
	case "pids":
		return cgroup1.NewPids(mount)
	case "freezer":
		return cgroup1.NewFreezer(mount)
	}
	panic("executor: unknown v1 controller " + c)
}

func (e *Executor) setupV2() error {
	if e.lay.v2 == nil {
		return nil
	}
	if e.lay.mode == V2 && filepath.Base(e.lay.v2.own) == daemonLeaf && e.lay.v2.own != e.lay.v2.mount {
		// In the leaf an Executor moved this process (or its parent, as
		// with a per-task shim) into: the tasks' root is beside it.
		e.lay.v2.own = filepath.Dir(e.lay.v2.own)
	}
	own := e.lay.v2.own
	root := filepath.Join(own, e.cfg.Root)
	var want []string
	if e.lay.mode == V2 {
		avail, err := readControllers(filepath.Join(own, "cgroup.controllers"))
		if err != nil {
			return err
		}
		for _, c := range v2Controllers {
			if avail[c] {
				want = append(want, c)
			}
		}
		if len(want) > 0 {
			if err := e.enableControllers(own, want, true); err != nil {
				return err
			}
		}
	}
	// Create Root level by level, delegating the controllers at each.
	rel, _ := filepath.Rel(own, root)
	dir := own
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, part)
		if err := e.mkdirRoot(own, dir); err != nil {
			return err
		}
		if len(want) > 0 {
			if err := e.enableControllers(dir, want, false); err != nil {
				return err
			}
		}
	}
	// clone3(CLONE_INTO_CGROUP) needs write access to cgroup.procs of the
	// common ancestor of this process's cgroup and the task's.
	if err := writable(filepath.Join(own, "cgroup.procs")); err != nil {
		return err
	}
	e.v2Root = root
	if len(want) > 0 {
		got, err := readControllers(filepath.Join(root, "cgroup.subtree_control"))
		if err != nil {
			return err
		}
		e.v2Ctrl = got
		_, err = os.Stat(filepath.Join(root, "memory.swap.max"))
		e.v2Swap = err == nil && got["memory"]
	}
	return nil
}

// enableControllers delegates ctrls from dir to its children. A v2 cgroup
// that holds processes cannot delegate controllers (the "no internal
// processes" rule); when dir is this process's own cgroup, the process
// moves itself to the leaf "<dir>/daemon" and tries again.
func (e *Executor) enableControllers(dir string, ctrls []string, own bool) error {
	file := filepath.Join(dir, "cgroup.subtree_control")
	have, err := readControllers(file)
	if err != nil {
		return err
	}
	var add []string
	for _, c := range ctrls {
		if !have[c] {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	data := []byte(strings.Join(add, " "))
	err = e.h.write(file, data)
	if err != nil && own && errors.Is(err, unix.EBUSY) {
		if merr := e.moveSelf(dir); merr != nil {
			return merr
		}
		err = e.h.write(file, data)
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("delegate controllers from %s: other processes remain in %s: %w",
				dir, filepath.Join(dir, "cgroup.procs"), err)
		}
	}
	if err != nil {
		return permErr(err)
	}
	return nil
}

// daemonLeaf is the v2 leaf cgroup this process moves into when its own
// cgroup must delegate controllers.
const daemonLeaf = "daemon"

// moveSelf moves this process from dir to the leaf dir/daemon.
func (e *Executor) moveSelf(dir string) error {
	leaf := filepath.Join(dir, daemonLeaf)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return permErr(err)
	}
	if err := e.h.write(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(e.h.pid))); err != nil {
		return permErr(err)
	}
	e.log.Info("moved this process to a leaf cgroup so that its own can delegate controllers", "cgroup", leaf)
	return nil
}

// mkdirRoot creates dir and any missing parents below base, remembering
// what it created, and checks that dir is writable.
func (e *Executor) mkdirRoot(base, dir string) error {
	var missing []string
	for d := dir; d != base && len(d) > len(base); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for _, d := range slices.Backward(missing) {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return permErr(err)
		}
		e.created = append(e.created, d)
	}
	return writable(dir)
}

// removeRoots removes the root dirs New created, deepest first, if empty.
func (e *Executor) removeRoots() {
	for _, d := range slices.Backward(e.created) {
		_ = unix.Rmdir(d)
	}
}

// writable reports, as an ErrDelegation error naming path, that path is
// not writable by this process.
func writable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return permErr(&fs.PathError{Op: "access", Path: path, Err: err})
	}
	return nil
}

// permErr adds ErrDelegation to permission errors.
func permErr(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: %w", err, ErrDelegation)
	}
	return err
}

// readControllers reads a space-separated controller list file; a
// missing file is an empty list.
func readControllers(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, permErr(err)
	}
	out := map[string]bool{}
	for _, c := range strings.Fields(string(data)) {
		out[c] = true
	}
	return out, nil
}

// has reports whether the limit kind ("cpu", "memory", "io", "pids") can
// be enforced, and if not, why.
func (e *Executor) has(kind string) (bool, string) {
	if e.lay.mode == V2 {
		if e.v2Ctrl[kind] {
			return true, ""
		}
		return false, fmt.Sprintf("the v2 %s controller is not delegated to %s", kind, e.v2Root)
	}
	c := kind
	if kind == "io" {
		c = "blkio"
	}
	if _, ok := e.lay.v1[c]; ok {
		return true, ""
	}
	return false, fmt.Sprintf("no cgroup v1 %s controller is mounted", c)
}

// checkLimits refuses limits this host cannot enforce.
func (e *Executor) checkLimits(l cgLimits, net NetLimiter) error {
	for _, c := range []struct {
		set  bool
		kind string
	}{{l.cpuQuotaUS > 0, "cpu"}, {l.memBytes > 0, "memory"}, {l.iops > 0, "io"}, {l.pids > 0, "pids"}} {
		if !c.set {
			continue
		}
		if ok, why := e.has(c.kind); !ok {
			return fmt.Errorf("%s limit: %s: %w", c.kind, why, ErrUnsupportedLimit)
		}
	}
	if l.netMbps > 0 {
		switch {
		case net == nil:
			return fmt.Errorf("network limit: no NetLimiter is configured: %w", ErrUnsupportedLimit)
		case e.v2Root == "":
			return fmt.Errorf("network limit: needs a cgroup v2 hierarchy for its eBPF limiter: %w", ErrUnsupportedLimit)
		}
	}
	return nil
}

// Close removes the root cgroups. Task cgroups are left alone: if any
// remain (tasks not yet closed, or left running on purpose for a later
// Adopt), their roots stay too and Close returns an error wrapping ErrBusy.
// Close is idempotent; Start and Adopt fail with ErrClosed afterwards.
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	roots := slices.Sorted(func(yield func(string) bool) {
		for _, r := range e.v1Roots {
			if !yield(r) {
				return
			}
		}
		if e.v2Root != "" {
			yield(e.v2Root)
		}
	})
	var errs []error
	for _, r := range slices.Compact(roots) {
		err := unix.Rmdir(r)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
			ents, _ := os.ReadDir(r)
			var tasks []string
			for _, de := range ents {
				if de.IsDir() {
					tasks = append(tasks, de.Name())
				}
			}
			errs = append(errs, fmt.Errorf("remove %s: task cgroups %v remain: %w", r, tasks, ErrBusy))
		default:
			errs = append(errs, fmt.Errorf("remove %s: %w", r, err))
		}
	}
	// Parents of a nested Root that New created, if now empty.
	for _, d := range slices.Backward(e.created) {
		if !slices.Contains(roots, d) {
			_ = unix.Rmdir(d)
		}
	}
	return errors.Join(errs...)
}

// signalName is the signal's name as records carry it ("SIGKILL").
func signalName(s syscall.Signal) string { return unix.SignalName(s) }
