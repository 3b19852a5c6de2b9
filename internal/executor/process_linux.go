//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/internal/cred"
	"github.com/prescient-sched/prescient/internal/task"
)

// Process is one running (or finished) task. Its methods are safe for
// concurrent use.
type Process struct {
	e    *Executor
	id   string
	log  *slog.Logger
	cg   *taskCgroup
	proc *os.Process // nil when adopted
	pid  int

	tees    sync.WaitGroup // tee copiers
	teeIn   []*os.File     // their read ends
	stopCtx func() bool    // unregisters the context's Kill

	waitOnce sync.Once
	exit     Exit
	waitErr  error

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // guards the fields below
	limits  cgLimits   // in force
	known   bool       // limits is what the cgroup files say (false after Adopt)
	ioDir   string     // the directory whose disk IOPS limits apply to
	ioDev   string     // its resolved "MAJ:MIN", "" until needed
	netSet  bool       // a NetLimiter limit is in force
	killed  bool       // Kill found processes to kill
	removed bool       // the cgroups are gone
}

// Start starts a task in a new cgroup carrying o.Limits, in place before
// the task's first instruction (see the package documentation). The task
// runs in its own process group with stdin on /dev/null, so signals meant
// for this process (a terminal's ^C) do not reach it. Cancelling ctx kills
// the task (as Kill); the caller must still Wait and Close. On error
// nothing is left behind: no cgroup, no process, no limiter entry; the
// error wraps ErrInvalid, ErrNotFound, ErrNotExecutable, ErrExists,
// ErrUnsupportedLimit or ErrClosed where one applies. With o.Credential
// set, the working directory and the program are checked with that user's
// rights (see checkPaths).
func (e *Executor) Start(ctx context.Context, o StartOptions) (_ *Process, err error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("start task: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("start task %s: %w", o.ID, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	closed, net := e.state()
	if closed {
		return nil, ErrClosed
	}
	lim, err := translate(o.Limits)
	if err != nil {
		return nil, err
	}
	if err := e.checkLimits(lim, net); err != nil {
		return nil, err
	}
	prog, err := checkPaths(o)
	if err != nil {
		return nil, err
	}
	var dev string
	if lim.iops > 0 {
		if dev, err = e.ioDevice(o.Dir); err != nil {
			return nil, err
		}
	}

	// From here on, every step is undone if a later one fails.
	var undo []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(undo) {
				f()
			}
		}
	}()
	var child []*os.File // the child's ends, closed here once it runs
	undo = append(undo, func() { closeAll(child) })
	var teeIn []*os.File
	undo = append(undo, func() { closeAll(teeIn) })
	var copiers []func()
	outputs := []struct {
		name  string
		extra io.Writer
	}{{"stdout", o.Stdout}, {"stderr", o.Stderr}}
	var streams [2]*os.File
	if o.LogDir != "" {
		if err := os.MkdirAll(o.LogDir, 0o700); err != nil {
			return nil, fmt.Errorf("log dir: %w", err)
		}
	}
	for i, out := range outputs {
		var logf *os.File
		if o.LogDir != "" {
			if logf, err = openLog(filepath.Join(o.LogDir, out.name+".log")); err != nil {
				return nil, err
			}
		}
		switch {
		case out.extra == nil && logf == nil: // /dev/null
		case out.extra == nil:
			streams[i] = logf
			child = append(child, logf)
		default:
			r, w, err := os.Pipe()
			if err != nil {
				closeAll([]*os.File{logf})
				return nil, err
			}
			streams[i] = w
			child = append(child, w)
			teeIn = append(teeIn, r)
			t := &tee{file: logf, extra: out.extra}
			copiers = append(copiers, func() { t.copy(r) })
			if logf != nil {
				undo = append(undo, func() { logf.Close() })
			}
		}
	}

	tc, err := e.createCgroup(o.ID)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		if err := tc.remove(); err != nil {
			e.log.Warn("remove cgroup after failed start", "task", o.ID, "err", err)
		}
	})
	// On v1, the launching thread takes a pids.max slot while it is in the
	// task's cgroup; one more keeps the fork from failing, and the exact
	// limit is written as soon as the thread leaves (see startMigrated).
	var slack int64
	var settle func() error
	if lim.pids > 0 && len(tc.v1Dirs) > 0 && tc.dirs.V1["pids"] != "" {
		slack = 1
		settle = func() error {
			if err := e.h.write(filepath.Join(tc.dirs.V1["pids"], "pids.max"), []byte(strconv.FormatInt(lim.pids, 10))); err != nil {
				return fmt.Errorf("set pids limit: %w", err)
			}
			return nil
		}
	}
	if err := e.applyLimits(tc, lim, cgLimits{}, false, dev, slack); err != nil {
		return nil, err
	}
	if lim.netMbps > 0 {
		if err := net.SetNetLimit(tc.dirs.CgroupID, lim.netMbps); err != nil {
			return nil, fmt.Errorf("network limit: %w", err)
		}
		undo = append(undo, func() { net.ClearNetLimit(tc.dirs.CgroupID) })
	}

	cmd := &exec.Cmd{
		Path:        prog,
		Args:        o.Argv,
		Env:         o.Env,
		Dir:         o.Dir,
		Stdout:      streams[0],
		Stderr:      streams[1],
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: o.Credential},
	}
	launchErr := e.launch(cmd, tc, settle)
	if launchErr != nil && cmd.Process == nil {
		return nil, startError(launchErr)
	}
	p := &Process{
		e: e, id: o.ID, log: e.log.With("task", o.ID), cg: tc,
		proc: cmd.Process, pid: cmd.Process.Pid,
		teeIn: teeIn, limits: lim, known: true, ioDir: o.Dir, ioDev: dev, netSet: lim.netMbps > 0,
	}
	// The task runs: a failure from here on must kill it before the
	// cgroup can go.
	undo = append(undo, func() {
		_ = e.kill(tc)
		_, _ = p.proc.Wait()
		_ = p.waitEmpty()
	})
	if launchErr != nil {
		return nil, launchErr
	}
	closeAll(child)
	child = nil
	for _, c := range copiers {
		p.tees.Add(1)
		go func() {
			defer p.tees.Done()
			c()
		}()
	}
	p.stopCtx = context.AfterFunc(ctx, func() {
		if err := p.Kill(); err != nil {
			p.log.Warn("kill on cancel", "err", err)
		}
	})
	p.log.Debug("started", "pid", p.pid, "argv", o.Argv, "cgroups", tc.dirs)
	return p, nil
}

// Adopt re-attaches to the cgroup of task id, left running by an earlier
// Executor (a daemon restart). The task is not this process's child: Wait
// polls until the cgroup is empty and reports Exit.Unknown. The limits in
// force are unknown to Update, which therefore rewrites every dimension.
func (e *Executor) Adopt(id string) (_ *Process, err error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
	if closed, _ := e.state(); closed {
		return nil, fmt.Errorf("adopt %s: %w", id, ErrClosed)
	}
	tc := &taskCgroup{id: id}
	for _, c := range v1Controllers {
		root, ok := e.v1Roots[c]
		if !ok {
			continue
		}
		dir := filepath.Join(root, id)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		if tc.dirs.V1 == nil {
			tc.dirs.V1 = map[string]string{}
		}
		tc.dirs.V1[c] = dir
		if !slices.Contains(tc.v1Dirs, dir) {
			tc.v1Dirs = append(tc.v1Dirs, dir)
			tc.v1Home = append(tc.v1Home, e.lay.v1[c].own)
		}
	}
	if e.v2Root != "" {
		dir := filepath.Join(e.v2Root, id)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			tc.dirs.V2 = dir
		}
	}
	if len(tc.v1Dirs) == 0 && tc.dirs.V2 == "" {
		return nil, fmt.Errorf("adopt %s: no cgroup under the root: %w", id, ErrNotFound)
	}
	if err := e.loadCgroup(tc); err != nil {
		return nil, fmt.Errorf("adopt %s: %w", id, err)
	}
	p := &Process{e: e, id: id, log: e.log.With("task", id), cg: tc}
	pids, err := tc.pids(e.h.pid)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", id, err)
	}
	p.pid = topPid(pids)
	p.log.Debug("adopted", "pid", p.pid, "processes", len(pids))
	return p, nil
}

// topPid picks the task's main process among pids: one whose parent is
// not in the set (the lowest such pid), or 0 for none.
func topPid(pids []int) int {
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	best := 0
	for _, p := range pids {
		if in[ppid(p)] {
			continue
		}
		if best == 0 || p < best {
			best = p
		}
	}
	return best
}

// ppid reads a process's parent pid from /proc/<pid>/stat, 0 if unknown.
func ppid(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Pid is the task's main process id (for an adopted task, the topmost
// process found in its cgroup, 0 if it had none).
func (p *Process) Pid() int { return p.pid }

// Cgroups are the task's cgroup directories, for profiling.
func (p *Process) Cgroups() CgroupDirs {
	d := p.cg.dirs
	if d.V1 != nil {
		m := make(map[string]string, len(d.V1))
		for k, v := range d.V1 {
			m[k] = v
		}
		d.V1 = m
	}
	return d
}

// Update replaces the task's limits while it runs; zero fields lift a
// limit. Only the dimensions that change are written. If a write fails
// (for example a memory limit below what the task already uses), the
// dimensions already changed are put back and the error says which failed.
func (p *Process) Update(l task.Limits) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("update task %s: %w", p.id, err)
		}
	}()
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	lim, err := translate(l)
	if err != nil {
		return err
	}
	_, net := p.e.state()
	if err := p.e.checkLimits(lim, net); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return ErrClosed
	}
	needDev := lim.iops > 0 || p.limits.iops > 0 || !p.known
	if needDev && p.ioDev == "" {
		dev, err := p.e.ioDevice(p.ioDir)
		if err != nil && lim.iops > 0 {
			return err
		}
		p.ioDev = dev // "" when unresolvable and only lifting
	}
	prev := p.limits
	if err := p.e.applyLimits(p.cg, lim, prev, !p.known, p.ioDev, 0); err != nil {
		if p.known {
			if rerr := p.e.applyLimits(p.cg, prev, lim, false, p.ioDev, 0); rerr != nil {
				p.log.Warn("restore limits after failed update", "err", rerr)
			}
		}
		return err
	}
	switch {
	case lim.netMbps > 0 && lim.netMbps != prev.netMbps || lim.netMbps > 0 && !p.netSet:
		if err := net.SetNetLimit(p.cg.dirs.CgroupID, lim.netMbps); err != nil {
			if p.known {
				_ = p.e.applyLimits(p.cg, prev, lim, false, p.ioDev, 0)
			}
			return fmt.Errorf("network limit: %w", err)
		}
		p.netSet = true
	case lim.netMbps == 0 && (p.netSet || !p.known) && net != nil && p.cg.dirs.CgroupID != 0:
		net.ClearNetLimit(p.cg.dirs.CgroupID)
		p.netSet = false
	}
	p.limits, p.known = lim, true
	p.log.Debug("limits updated", "limits", l)
	return nil
}

// Kill sends SIGKILL to every process in the task's cgroup: on v2 (and
// hybrid hosts) through cgroup.kill, on v1 by freezing the cgroup, killing
// each member and thawing. It does not wait; Wait does. Kill is idempotent
// and a no-op once the cgroup is empty or removed.
func (p *Process) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil
	}
	if empty, err := p.cg.empty(p.e.h.pid); err == nil && empty {
		return nil
	}
	p.killed = true
	if err := p.e.kill(p.cg); err != nil {
		return fmt.Errorf("kill task %s: %w", p.id, err)
	}
	return nil
}

// Wait blocks until the main process has exited and the task's cgroup is
// empty, then reports how the task ended. It may be called any number of
// times, also concurrently; all calls return the same result.
func (p *Process) Wait() (Exit, error) {
	p.waitOnce.Do(p.wait)
	return p.exit, p.waitErr
}

func (p *Process) wait() {
	var x Exit
	var errs []error
	if p.proc != nil {
		st, err := p.proc.Wait()
		switch {
		case err != nil:
			x.Code = -1
			errs = append(errs, fmt.Errorf("wait for pid %d: %w", p.pid, err))
		default:
			ws := st.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				x.Code, x.Signal = -1, ws.Signal()
			} else {
				x.Code = ws.ExitStatus()
			}
		}
	} else {
		x.Code, x.Unknown = -1, true
	}
	if err := p.waitEmpty(); err != nil {
		errs = append(errs, err)
	}
	p.finishTees()
	kills, err := p.e.oomKills(p.cg)
	if err != nil {
		errs = append(errs, err)
	}
	// Any kill for memory during the task's life makes the run OOM-killed,
	// whatever the main process did afterwards (see Exit.OOMKilled).
	x.OOMKills = kills
	x.OOMKilled = kills > 0
	p.mu.Lock()
	x.Killed = p.killed
	p.mu.Unlock()
	if p.stopCtx != nil {
		p.stopCtx()
	}
	p.exit, p.waitErr = x, errors.Join(errs...)
	p.log.Debug("ended", "exit", x.String())
}

// waitEmpty polls until the cgroup holds no process.
func (p *Process) waitEmpty() error {
	delay := 200 * time.Microsecond
	for {
		empty, err := p.cg.empty(p.e.h.pid)
		if err != nil {
			return fmt.Errorf("wait for cgroup of %s to empty: %w", p.id, err)
		}
		if empty {
			return nil
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// finishTees waits for the tee copiers to drain the pipes. Every writer
// was in the cgroup, now empty, so they end at once unless a process that
// escaped the cgroup still holds a pipe; after a grace period the read
// ends are closed under it.
func (p *Process) finishTees() {
	done := make(chan struct{})
	go func() {
		p.tees.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		p.log.Warn("task output still open after its cgroup emptied; closing it")
		closeAll(p.teeIn)
		<-done
	}
}

// Close removes the task's cgroups, killing what still runs there and
// waiting for it first, and lifts its network limit. Call it after the
// final statistics are read. Close is idempotent.
func (p *Process) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.close() })
	return p.closeErr
}

func (p *Process) close() error {
	if p.stopCtx != nil {
		p.stopCtx()
	}
	var errs []error
	if err := p.Kill(); err != nil {
		errs = append(errs, err)
	}
	if _, err := p.Wait(); err != nil {
		errs = append(errs, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, net := p.e.state(); net != nil && p.netSet {
		net.ClearNetLimit(p.cg.dirs.CgroupID)
		p.netSet = false
	}
	if err := p.cg.remove(); err != nil {
		errs = append(errs, err)
	}
	p.removed = true
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close task %s: %w", p.id, err)
	}
	return nil
}

// tee copies a task's output to its log file and an extra writer. A
// failing extra writer is dropped; a failing log file is reported once.
type tee struct {
	file      *os.File
	extra     io.Writer
	fileErred bool
}

func (t *tee) copy(r *os.File) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			t.write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	r.Close()
	if t.file != nil {
		t.file.Close()
	}
}

func (t *tee) write(b []byte) {
	if t.file != nil && !t.fileErred {
		if _, err := t.file.Write(b); err != nil {
			t.fileErred = true
		}
	}
	if t.extra != nil {
		if _, err := t.extra.Write(b); err != nil {
			t.extra = nil
		}
	}
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// checkPaths checks o.Dir and resolves the program before anything is set
// up. With o.Credential set it does so with that user's rights (cred.Do),
// so that a path the user cannot see is refused exactly as the user's own
// shell would refuse it — "permission denied" inside a directory they
// cannot search, whether the name exists or not — and root's rights never
// tell a user what a directory they cannot read holds.
func checkPaths(o StartOptions) (prog string, err error) {
	check := func() error {
		if o.Dir != "" {
			if st, err := os.Stat(o.Dir); err != nil {
				return fmt.Errorf("working directory: %w", notFound(err))
			} else if !st.IsDir() {
				return fmt.Errorf("working directory %s is not a directory: %w", o.Dir, ErrInvalid)
			}
		}
		prog, err = lookPath(o.Argv[0], o.Dir, o.Env)
		return err
	}
	c := o.Credential
	if c == nil {
		return prog, check()
	}
	groups := c.Groups
	if c.NoSetGroups { // the child keeps this process's groups
		gs, err := syscall.Getgroups()
		if err != nil {
			return "", fmt.Errorf("supplementary groups: %w", err)
		}
		groups = make([]uint32, len(gs))
		for i, g := range gs {
			groups[i] = uint32(g)
		}
	}
	err = cred.Do(cred.Credential{UID: c.Uid, GID: c.Gid, Groups: groups}, check)
	return prog, err
}

// lookPath resolves argv0 the way a shell would, but with the task's PATH
// (from env, else this process's) and relative to the task's dir.
func lookPath(argv0, dir string, env []string) (string, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	if strings.Contains(argv0, "/") {
		p := abs(argv0)
		return p, checkExecutable(p)
	}
	path, ok := "", false
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			path, ok = v, true
		}
	}
	if !ok {
		path = os.Getenv("PATH")
	}
	var firstErr error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := abs(filepath.Join(d, argv0))
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, ErrNotFound) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fmt.Errorf("program %q is not in PATH: %w", argv0, ErrNotFound)
}

// checkExecutable checks that p is a regular file the calling thread may
// execute: under cred.Do, the user's effective ids decide (faccessat with
// AT_EACCESS; plain access(2) would ask about the real ids, root's).
func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrPermission) { // a directory on the way is closed: exec fails alike
		return fmt.Errorf("program: %w: %w", err, ErrNotExecutable)
	}
	if err != nil {
		return fmt.Errorf("program: %w", notFound(err))
	}
	if st.IsDir() || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("program %s: %w", p, ErrNotExecutable)
	}
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("program %s: %w: %w", p, ErrNotExecutable, err)
	}
	return nil
}

// notFound adds ErrNotFound to "does not exist" errors.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", err, ErrNotFound)
	}
	return err
}
