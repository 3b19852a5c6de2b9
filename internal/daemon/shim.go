package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/task"
)

// The files of a task's run directory, <state>/run/<id>/. The daemon writes
// request.json and holds lock until the shim has inherited it; the shim
// writes the rest. exit.json is the durable word on how the task ended:
// written atomically and fsynced before the shim exits, it survives any
// crash of the daemon.
const (
	runLockFile    = "lock"
	runRequestFile = "request.json"
	runPIDFile     = "shim.pid"
	runStartedFile = "started.json"
	runExitFile    = "exit.json"
	runEvictedFile = "evicted" // written by the daemon before it kills the task for the scheduler
	runShimLog     = "shim.log"
)

// The shim's inherited descriptors (exec.Cmd.ExtraFiles).
const (
	shimStatusFD = 3 // a pipe to the daemon: "started", "exit <exit.json>", "exited" lines
	shimLockFD   = 4 // the run directory's lock, held for the shim's life
	shimAckFD    = 5 // a pipe from the daemon: "ack\n" once it sampled the ended task
	shimNetFD    = 6 // the daemon's network policer map, when it has one
)

// ackWait bounds how long the shim waits, after the task ended, for the
// daemon's last sample before it removes the cgroup anyway.
const ackWait = time.Minute

// shimRequest is request.json: everything the shim needs to start a task.
type shimRequest struct {
	ID          string      `json:"id"`
	Argv        []string    `json:"argv"`
	Env         []string    `json:"env"`
	Dir         string      `json:"dir"`
	Limits      task.Limits `json:"limits"`
	UID         uint32      `json:"uid"`
	GID         uint32      `json:"gid"`
	Groups      []uint32    `json:"groups,omitempty"`
	SetCred     bool        `json:"set_cred"` // run as UID/GID (false: as the shim, i.e. root submitted)
	LogDir      string      `json:"log_dir"`
	LogMaxBytes int64       `json:"log_max_bytes"`
	LogKeep     int         `json:"log_keep"`
	CgroupRoot  string      `json:"cgroup_root"`
}

// shimStarted is started.json.
type shimStarted struct {
	ShimPID   int       `json:"shim_pid"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

// shimExit is exit.json.
type shimExit struct {
	Started    bool      `json:"started"`
	StartError string    `json:"start_error,omitempty"`
	ErrorKind  string    `json:"error_kind,omitempty"` // a task.ErrorKind: not_found, not_executable, start
	Code       int       `json:"code"`
	Signal     string    `json:"signal,omitempty"`
	OOMKilled  bool      `json:"oom_killed"`
	OOMKills   uint64    `json:"oom_kills"`
	Killed     bool      `json:"killed"` // cancelled (SIGTERM to the shim)
	WaitError  string    `json:"wait_error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// LogDroppedBytes counts, by stream ("stdout", "stderr"), the output
	// rotation deleted: the first bytes of the stream, beyond LogKeep old
	// files of LogMaxBytes.
	LogDroppedBytes map[string]int64 `json:"log_dropped_bytes,omitempty"`
}

// RunShim is the body of the hidden `prescient shim RUNDIR` command: the
// parent of one task. The daemon starts it in a session of its own, outside
// the task's cgroup, so it outlives a daemon that dies; it starts the task
// through the executor, writes started.json, waits for the end and writes
// exit.json (fsynced), says "exited", and waits for the daemon's "ack"
// (its last sample is taken) — or for the pipe's end, when no daemon
// follows it — before it removes the task's cgroup and exits. So a task's
// cgroup never outlives its shim, whether or not a daemon is there.
// SIGTERM cancels the task. The task's output goes through the shim into
// size-capped, rotated log files owned by the task's user, in a log
// directory owned by root that the user cannot change (see logdir.go).
func RunShim(runDir string) error {
	// Descriptors 3 and 4 came from the daemon without close-on-exec; the
	// task must inherit neither (the lock would outlive the shim).
	status := inherited(shimStatusFD, "status", false)
	lock := inherited(shimLockFD, "lock", false)
	ack := inherited(shimAckFD, "ack", true) // non-blocking, so its read can time out
	defer runtime.KeepAlive(lock)
	notify := func(msg string) {
		if status != nil {
			_, _ = status.WriteString(msg + "\n") // EPIPE once the daemon is gone: fine
		}
	}
	var req shimRequest
	b, err := os.ReadFile(filepath.Join(runDir, runRequestFile))
	if err != nil {
		return fmt.Errorf("shim: %w", err)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return fmt.Errorf("shim: decode request: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	x := shimExit{}
	// finish records how the task ended: on the status pipe first (so a
	// daemon that follows us knows even when the state directory is full),
	// then in exit.json, the durable copy; "exited" follows either way.
	var writeErr error
	finish := func() error {
		x.FinishedAt = time.Now()
		data, err := json.Marshal(x)
		if err != nil {
			return err
		}
		notify("exit " + string(data))
		if err := writeFileAtomic(filepath.Join(runDir, runExitFile), data, true); err != nil {
			writeErr = fmt.Errorf("shim: write exit status: %w", err)
			fmt.Fprintln(os.Stderr, writeErr)
		}
		notify("exited")
		return nil
	}
	startFailed := func(err error) error {
		x.StartError = err.Error()
		x.ErrorKind = string(executor.StartErrorKind(err))
		if noSpace(err) {
			x.ErrorKind = string(task.KindNoSpace) // not the task's fault: the daemon requeues it
		}
		x.Killed = ctx.Err() != nil
		return finish()
	}
	if err := writeFileAtomic(filepath.Join(runDir, runPIDFile), []byte(strconv.Itoa(os.Getpid())), false); err != nil {
		return startFailed(fmt.Errorf("write %s: %w", runPIDFile, err))
	}

	ex, err := executor.New(executor.Config{Root: req.CgroupRoot})
	if err != nil {
		return startFailed(err)
	}
	// The daemon's policer, so a network limit is in place before the
	// task's first packet.
	if _, err := unix.FcntlInt(uintptr(shimNetFD), unix.F_GETFD, 0); err == nil {
		unix.CloseOnExec(shimNetFD)
		nl, err := profile.OpenNetLimiter(shimNetFD, nil) // takes the descriptor
		if err != nil {
			if req.Limits.NetMbps > 0 {
				return startFailed(fmt.Errorf("network limit: %w", err))
			}
		} else {
			defer nl.Close()
			ex.SetNetLimiter(nl)
		}
	}
	// ex is never closed: Close would remove the root cgroup, racing with
	// other shims creating theirs. The daemon owns the roots.
	uid, gid := -1, -1
	var cred *syscall.Credential
	if req.SetCred {
		uid, gid = int(req.UID), int(req.GID)
		cred = &syscall.Credential{Uid: req.UID, Gid: req.GID, Groups: req.Groups}
	}
	logs, err := makeLogDir(req.LogDir)
	if err != nil {
		return startFailed(fmt.Errorf("log dir: %w", err))
	}
	defer logs.Close() // after the rotators (deferred later, run earlier)
	stdout, err := newRotator(logs, "stdout.log", req.LogMaxBytes, req.LogKeep, uid, gid)
	if err != nil {
		return startFailed(fmt.Errorf("log file: %w", err))
	}
	defer stdout.Close()
	stderr, err := newRotator(logs, "stderr.log", req.LogMaxBytes, req.LogKeep, uid, gid)
	if err != nil {
		return startFailed(fmt.Errorf("log file: %w", err))
	}
	defer stderr.Close()

	// started.json is written before the task's first instruction: from
	// here on the run may have started, which is what a restarted daemon
	// must assume; a task never starts unless that is on disk.
	writeStarted := func(pid int, at time.Time) error {
		st, _ := json.Marshal(shimStarted{ShimPID: os.Getpid(), PID: pid, StartedAt: at})
		return writeFileAtomic(filepath.Join(runDir, runStartedFile), st, false)
	}
	if err := writeStarted(0, time.Now()); err != nil {
		return startFailed(fmt.Errorf("write %s: %w", runStartedFile, err))
	}
	env := append(append([]string(nil), req.Env...), "PRESCIENT_TASK_ID="+req.ID)
	p, err := ex.Start(ctx, executor.StartOptions{
		ID: req.ID, Argv: req.Argv, Env: env, Dir: req.Dir, Limits: req.Limits,
		Stdout: stdout, Stderr: stderr, Credential: cred,
	})
	if err != nil {
		return startFailed(err)
	}
	x.Started, x.StartedAt = true, time.Now()
	_ = writeStarted(p.Pid(), x.StartedAt) // the pid, if there is room; the first copy stands otherwise
	notify("started")
	ex2, werr := p.Wait()
	x.Code, x.OOMKilled, x.OOMKills, x.Killed = ex2.Code, ex2.OOMKilled, ex2.OOMKills, ex2.Killed
	if ex2.Signal != 0 {
		x.Signal = unix.SignalName(ex2.Signal)
	}
	if werr != nil {
		x.WaitError = werr.Error()
	}
	_ = stdout.Close()
	_ = stderr.Close()
	if a, b := stdout.Dropped(), stderr.Dropped(); a > 0 || b > 0 {
		x.LogDroppedBytes = map[string]int64{"stdout": a, "stderr": b}
	}
	if err := finish(); err != nil {
		return err
	}
	// The cgroup stays for the daemon's last sample, then goes with us.
	waitAck(ack)
	if err := p.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "shim: remove the task's cgroup: %v\n", err)
	}
	return writeErr
}

// waitAck waits for the daemon's "ack" on ack, its end (the daemon is
// gone), or ackWait.
func waitAck(ack *os.File) {
	if ack == nil {
		return
	}
	defer ack.Close()
	_ = ack.SetReadDeadline(time.Now().Add(ackWait)) // pipes support deadlines
	b := make([]byte, 8)
	_, _ = ack.Read(b)
}

// inherited marks fd close-on-exec and wraps it, or returns nil when the
// shim was not given it. A non-blocking fd joins the runtime's poller, so
// deadlines work on it.
func inherited(fd int, name string, nonblock bool) *os.File {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil
	}
	unix.CloseOnExec(fd)
	if nonblock {
		_ = unix.SetNonblock(fd, true)
	}
	return os.NewFile(uintptr(fd), name)
}

// writeFileAtomic writes path through a temporary file and a rename, so a
// reader sees all of it or nothing; with sync, the data and the rename are
// fsynced (durable across a power loss, not only a process crash).
func writeFileAtomic(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if sync {
		d, err := os.Open(filepath.Dir(path))
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}
	return nil
}
