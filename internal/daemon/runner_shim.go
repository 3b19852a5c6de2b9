package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/task"
)

// shimRunner runs each task under its own `prescient shim` process and
// reaches the task's cgroups through the executor. The shim, not the
// daemon, is the task's parent: it runs in its own session, so a daemon
// killed with SIGKILL leaves it and the task running, and it writes how
// the task ended to exit.json.
type shimRunner struct {
	stateDir string
	shim     []string // the shim command; the run directory is appended
	log      *slog.Logger
	ex       *executor.Executor
	net      *profile.NetMonitor // nil: network unavailable

	pmu   sync.Mutex // guards procs
	procs map[string]*executor.Process
}

var _ runner = (*shimRunner)(nil)

func newShimRunner(cfg Config) (*shimRunner, error) {
	ex, err := executor.New(executor.Config{Root: cfg.CgroupRoot, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	rt := &shimRunner{stateDir: cfg.StateDir, shim: cfg.ShimCommand, log: cfg.Logger, ex: ex, procs: map[string]*executor.Process{}}
	rt.net = profile.OpenNode(ex.V1Root("blkio"), ex.V2Root(), cfg.StateDir, cfg.Logger)
	return rt, nil
}

func (rt *shimRunner) Close() {
	if rt.net != nil {
		_ = rt.net.Close()
	}
	if err := rt.ex.Close(); err != nil && !errors.Is(err, executor.ErrBusy) {
		rt.log.Warn("close executor", "err", err)
	}
}

func (rt *shimRunner) runDir(id string) string { return filepath.Join(rt.stateDir, "run", id) }

// Start writes the request and starts the shim, which inherits the run
// directory's lock: from the moment the lock is taken here until the shim
// exits it is held, so a restarted daemon can tell a live shim from a dead
// one without a window between them.
func (rt *shimRunner) Start(req shimRequest) (runHandle, error) {
	dir := rt.runDir(req.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, runLockFile), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("run directory %s is locked by another shim: %w", dir, err)
	}
	// Leftovers of an earlier run of the same task (an OOM retry) must not
	// be mistaken for this run's.
	for _, f := range []string{runStartedFile, runExitFile, runPIDFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, runRequestFile), b, false); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, runShimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusW.Close()
	ackR, ackW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		return nil, err
	}
	defer ackR.Close()
	argv := append(append([]string(nil), rt.shim...), dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{statusW, lock, ackR} // fds 3, 4 and 5
	if rt.net != nil && req.Limits.NetMbps > 0 {
		nf, err := rt.net.LimitsFile()
		if err != nil {
			statusR.Close()
			ackW.Close()
			return nil, fmt.Errorf("network limit: %w", err)
		}
		defer nf.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, nf) // fd 6
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		statusR.Close()
		ackW.Close()
		return nil, err
	}
	h := &shimRun{dir: dir, pid: cmd.Process.Pid, status: statusR, ack: ackW, started: make(chan struct{}), exited: make(chan struct{}), done: make(chan struct{})}
	h.wg.Add(2)
	go func() { // reap the shim whenever it exits; its end is seen through the pipe
		defer h.wg.Done()
		_ = cmd.Wait()
	}()
	go h.read()
	return h, nil
}

// shimRun follows a shim this daemon started, through its status pipe.
type shimRun struct {
	dir    string
	pid    int
	status *os.File // read end: "started", "exited", then EOF when the shim exits
	ack    *os.File // write end: "ack" lets the shim remove the cgroup and exit
	wg     sync.WaitGroup

	started, exited, done chan struct{}
	startedAt             time.Time // written before started closes
	piped                 *shimExit // the "exit" line, if one came; written before exited closes

	ackOnce   sync.Once
	closeOnce sync.Once
}

func (h *shimRun) read() {
	defer h.wg.Done()
	startedOpen, exitedOpen := true, true
	sc := bufio.NewScanner(h.status)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "exit "); ok {
			var x shimExit
			if json.Unmarshal([]byte(data), &x) == nil {
				h.piped = &x
			}
			continue
		}
		switch line {
		case "started":
			if startedOpen {
				h.startedAt = readStartedAt(h.dir)
				close(h.started)
				startedOpen = false
			}
		case "exited":
			if exitedOpen {
				close(h.exited)
				exitedOpen = false
			}
		}
	}
	if exitedOpen {
		close(h.exited)
	}
	close(h.done)
}

func (h *shimRun) Started() <-chan struct{} { return h.started }
func (h *shimRun) StartedAt() time.Time     { return h.startedAt }
func (h *shimRun) Exited() <-chan struct{}  { return h.exited }
func (h *shimRun) Done() <-chan struct{}    { return h.done }

// End reads exit.json; when the shim could not write it (a full state
// directory), the status it sent on the pipe.
func (h *shimRun) End() task.End {
	if _, err := readExit(h.dir); err != nil && h.piped != nil {
		return evictedIn(h.dir, h.piped.end())
	}
	return readEnd(h.dir)
}

// evictedIn marks e evicted when the daemon recorded, in the run
// directory dir, that it killed the task for the scheduler, and the task
// did end by a signal: one that exited by itself first (the kill found it
// gone) ended as it ended, and is not run again.
func evictedIn(dir string, e task.End) task.End {
	if !e.Started || e.Signal == "" {
		return e
	}
	if _, err := os.Stat(filepath.Join(dir, runEvictedFile)); err == nil {
		e.Evicted = true
	}
	return e
}

func (h *shimRun) Ack() {
	h.ackOnce.Do(func() {
		_, _ = h.ack.WriteString("ack\n") // EPIPE when the shim is gone: fine
		_ = h.ack.Close()
	})
}

func (h *shimRun) Cancel() {
	if err := syscall.Kill(h.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		slog.Default().Debug("signal shim", "pid", h.pid, "err", err)
	}
}

// Close stops following: the status pipe is closed (the shim's writes
// then fail with EPIPE, which it ignores) and so is the ack pipe (the
// shim then removes the cgroup itself when the task ends).
func (h *shimRun) Close() {
	h.closeOnce.Do(func() {
		h.Ack()
		_ = h.status.Close()
	})
	h.wg.Wait()
}

// readStartedAt reads the start time from started.json (now if missing).
func readStartedAt(dir string) time.Time {
	var st shimStarted
	b, err := os.ReadFile(filepath.Join(dir, runStartedFile))
	if err == nil && json.Unmarshal(b, &st) == nil && !st.StartedAt.IsZero() {
		return st.StartedAt
	}
	return time.Now()
}

// readEnd reads exit.json; without it the run is lost.
func readEnd(dir string) task.End {
	x, err := readExit(dir)
	if err != nil {
		return task.End{Lost: "its shim died without recording an exit status", FinishedAt: time.Now()}
	}
	return evictedIn(dir, x.end())
}

func readExit(dir string) (*shimExit, error) {
	b, err := os.ReadFile(filepath.Join(dir, runExitFile))
	if err != nil {
		return nil, err
	}
	var x shimExit
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("decode %s: %w", runExitFile, err)
	}
	return &x, nil
}

// end is exit.json as a task.End. Killed in exit.json means the shim
// killed the task because it was told to cancel it.
func (x *shimExit) end() task.End {
	kind := task.ErrorKind(x.ErrorKind)
	switch kind {
	case task.KindNotFound, task.KindNotExecutable, task.KindNoSpace:
	default:
		kind = task.KindStart // also "other", written by older shims
	}
	e := task.End{
		Started: x.Started, StartedAt: x.StartedAt, FinishedAt: x.FinishedAt,
		StartError: x.StartError, Code: x.Code, Signal: x.Signal, OOMKills: x.OOMKills,
		Killed: x.Killed, Cancelled: x.Killed, WaitError: x.WaitError,
	}
	if e.StartError != "" {
		e.StartKind = kind
	}
	if x.OOMKilled && e.OOMKills == 0 {
		e.OOMKills = 1
	}
	return e
}

// Inspect implements runner. The lock is tested before exit.json is read:
// a shim writes exit.json, then exits, then the lock is free; the other
// order could miss an exit written in between.
func (rt *shimRunner) Inspect(id string) leftover {
	dir := rt.runDir(id)
	var l leftover
	if _, err := os.Stat(dir); err != nil {
		l.Procs = rt.hasProcs(id)
		return l
	}
	l.Dir = true
	l.ShimAlive = !lockFree(dir)
	if l.ShimAlive {
		return l
	}
	if x, err := readExit(dir); err == nil {
		e := evictedIn(dir, x.end())
		l.Exit = &e
		l.Logs = logDrops(dir)
	}
	_, err := os.Stat(filepath.Join(dir, runStartedFile))
	l.Started = err == nil
	l.Procs = rt.hasProcs(id)
	return l
}

func (rt *shimRunner) hasProcs(id string) bool {
	p, err := rt.ex.Adopt(id)
	return err == nil && p.Pid() != 0
}

// lockFree reports whether no shim holds dir's lock.
func lockFree(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, runLockFile), os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// Reattach implements runner: a re-attached shim is not this process's
// child and has no pipe to it, so its start and end are polled (100 ms):
// started.json for the start, the lock for its exit.
func (rt *shimRunner) Reattach(id string) runHandle {
	h := &pollRun{dir: rt.runDir(id), started: make(chan struct{}), exited: make(chan struct{}), stop: make(chan struct{})}
	if b, err := os.ReadFile(filepath.Join(h.dir, runPIDFile)); err == nil {
		h.pid = atoiOr0(strings.TrimSpace(string(b)))
	}
	h.wg.Add(1)
	go h.poll()
	return h
}

type pollRun struct {
	dir       string
	pid       int
	started   chan struct{}
	exited    chan struct{} // also Done: the shim is gone
	startedAt time.Time
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
}

func (h *pollRun) poll() {
	defer h.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	startedOpen := true
	for {
		if startedOpen {
			if _, err := os.Stat(filepath.Join(h.dir, runStartedFile)); err == nil {
				h.startedAt = readStartedAt(h.dir)
				close(h.started)
				startedOpen = false
			}
		}
		if lockFree(h.dir) {
			if startedOpen {
				if _, err := os.Stat(filepath.Join(h.dir, runStartedFile)); err == nil {
					h.startedAt = readStartedAt(h.dir)
					close(h.started)
				}
			}
			close(h.exited)
			return
		}
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}

func (h *pollRun) Started() <-chan struct{} { return h.started }
func (h *pollRun) StartedAt() time.Time     { return h.startedAt }
func (h *pollRun) Exited() <-chan struct{}  { return h.exited }
func (h *pollRun) Done() <-chan struct{}    { return h.exited }
func (h *pollRun) Ack()                     {} // no pipe: the shim removed the cgroup itself
func (h *pollRun) End() task.End            { return readEnd(h.dir) }
func (h *pollRun) Cancel() {
	if h.pid > 0 {
		_ = syscall.Kill(h.pid, syscall.SIGTERM)
	}
}
func (h *pollRun) Close() {
	h.stopOnce.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// Adopt implements runner: the task is followed through its cgroup, polled
// until it is empty; its exit status is unknown.
func (rt *shimRunner) Adopt(id string, started time.Time) (runHandle, error) {
	p, err := rt.ex.Adopt(id)
	if err != nil {
		return nil, err
	}
	if p.Pid() == 0 {
		return nil, fmt.Errorf("adopt %s: no process left in its cgroup", id)
	}
	h := &adoptRun{rt: rt, id: id, p: p, startedAt: started, started: make(chan struct{}), exited: make(chan struct{}), stop: make(chan struct{})}
	close(h.started)
	h.wg.Add(1)
	go h.poll()
	return h, nil
}

type adoptRun struct {
	rt        *shimRunner
	id        string
	p         *executor.Process
	startedAt time.Time
	started   chan struct{}
	exited    chan struct{}
	end       task.End
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
}

func (h *adoptRun) poll() {
	defer h.wg.Done()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
		if !h.rt.hasProcs(h.id) {
			x, err := h.p.Wait() // the cgroup is empty: returns at once
			h.end = task.End{Started: true, StartedAt: h.startedAt, FinishedAt: time.Now(), Code: -1,
				OOMKills: x.OOMKills, Unknown: true}
			if err != nil {
				h.end.WaitError = err.Error()
			}
			close(h.exited)
			return
		}
	}
}

func (h *adoptRun) Started() <-chan struct{} { return h.started }
func (h *adoptRun) StartedAt() time.Time     { return h.startedAt }
func (h *adoptRun) Exited() <-chan struct{}  { return h.exited }
func (h *adoptRun) Done() <-chan struct{}    { return h.exited }
func (h *adoptRun) Ack()                     {}
func (h *adoptRun) End() task.End            { return h.end }
func (h *adoptRun) Cancel()                  { _ = h.p.Kill() }
func (h *adoptRun) Close() {
	h.stopOnce.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// Sampler implements runner.
func (rt *shimRunner) Sampler(id string) (sampler, error) {
	p, err := rt.ex.Adopt(id)
	if err != nil {
		return nil, err
	}
	cg := p.Cgroups()
	return profile.NewSampler(profile.Target{V1: cg.V1, V2: cg.V2, CgroupID: cg.CgroupID}, rt.net)
}

// Release implements runner.
func (rt *shimRunner) Release(id string) error {
	rt.pmu.Lock()
	delete(rt.procs, id)
	rt.pmu.Unlock()
	p, err := rt.ex.Adopt(id)
	if err != nil {
		return nil // no cgroup left
	}
	return p.Close()
}

// Forget implements runner.
func (rt *shimRunner) Forget(id string) error { return os.RemoveAll(rt.runDir(id)) }

// proc returns the adopted Process of running task id, for live limits.
func (rt *shimRunner) proc(id string) (*executor.Process, error) {
	rt.pmu.Lock()
	defer rt.pmu.Unlock()
	if p := rt.procs[id]; p != nil {
		return p, nil
	}
	p, err := rt.ex.Adopt(id)
	if err != nil {
		return nil, err
	}
	rt.procs[id] = p
	return p, nil
}

// Update implements Control.
func (rt *shimRunner) Update(id string, l task.Limits) error {
	p, err := rt.proc(id)
	if err != nil {
		return err
	}
	return p.Update(l)
}

// SetSoftMemory implements Control.
func (rt *shimRunner) SetSoftMemory(id string, mb float64) error {
	p, err := rt.proc(id)
	if err != nil {
		return err
	}
	return setSoftMemory(p.Cgroups(), mb)
}

// Evict implements Control: the mark first (a daemon restarted before the
// end is handled must know the SIGKILL was an eviction), then the kill.
func (rt *shimRunner) Evict(id string) error {
	if err := rt.markEvicted(id); err != nil {
		return err
	}
	if err := rt.Kill(id); err != nil {
		// Not killed (it had ended): whatever its end, it is its own.
		_ = os.Remove(filepath.Join(rt.runDir(id), runEvictedFile))
		return err
	}
	return nil
}

// markEvicted records in id's run directory that the daemon is killing it
// for the scheduler (see evictedIn).
func (rt *shimRunner) markEvicted(id string) error {
	if err := writeFileAtomic(filepath.Join(rt.runDir(id), runEvictedFile), nil, false); err != nil {
		return fmt.Errorf("evict %s: %w", id, err)
	}
	return nil
}

// Kill implements Control: it kills the task's cgroup; the shim reports
// the end.
func (rt *shimRunner) Kill(id string) error {
	p, err := rt.proc(id)
	if err != nil {
		return err
	}
	return p.Kill()
}

// logDrops reads what log rotation dropped from dir's exit.json.
func logDrops(dir string) *api.LogsDropped {
	x, err := readExit(dir)
	if err != nil {
		return nil
	}
	a, b := x.LogDroppedBytes["stdout"], x.LogDroppedBytes["stderr"]
	if a == 0 && b == 0 {
		return nil
	}
	return &api.LogsDropped{StdoutBytes: a, StderrBytes: b}
}

// LogDrops says what log rotation dropped; valid once Done closed.
func (h *shimRun) LogDrops() *api.LogsDropped { return logDrops(h.dir) }

// LogDrops says what log rotation dropped; valid once Done closed.
func (h *pollRun) LogDrops() *api.LogsDropped { return logDrops(h.dir) }
