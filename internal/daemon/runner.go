package daemon

import (
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/task"
)

// runner starts and follows the processes of tasks: shims and cgroups on
// a real machine (shimRunner), a fake in the daemon's unit tests, so that
// the end-of-run, lost-run and recovery logic is tested without root.
//
// Its Control methods (Update, SetSoftMemory, Kill) are called by the
// policy under its lock and must not call back into the daemon.
type runner interface {
	Control
	// Start launches the run described by req and returns at once.
	Start(req shimRequest) (runHandle, error)
	// Inspect says what an earlier daemon left of task id's run.
	Inspect(id string) leftover
	// Reattach follows a live shim that an earlier daemon started.
	Reattach(id string) runHandle
	// Adopt follows a task whose shim died while its processes live on;
	// started is when the run began, as recorded.
	Adopt(id string, started time.Time) (runHandle, error)
	// Sampler opens a profile sampler on a running task's cgroups.
	Sampler(id string) (sampler, error)
	// Release kills whatever is left of a run and removes its cgroups.
	// Idempotent; nothing to remove is not an error.
	Release(id string) error
	// Forget removes the run's directory. Idempotent.
	Forget(id string) error
	// Close releases the runner's own resources; runs go on.
	Close()
}

// leftover is what Inspect found of a run.
type leftover struct {
	Dir       bool             // a run directory exists
	ShimAlive bool             // a shim holds the run's lock
	Exit      *task.End        // the shim recorded how the run ended
	Logs      *api.LogsDropped // and what log rotation dropped
	Started   bool             // the shim recorded the start
	Procs     bool             // the task's cgroup still has processes
}

// runHandle follows one run. Its channels close in order: Started (if the
// task's processes ever ran), Exited (they are gone; the cgroup stays for
// a last sample until Ack), Done (the shim is gone). Exited and Done close
// also when the shim dies without a word.
type runHandle interface {
	Started() <-chan struct{}
	// StartedAt is when the processes started; valid once Started closed.
	StartedAt() time.Time
	Exited() <-chan struct{}
	// Ack tells the shim the last sample is taken: it may remove the
	// task's cgroup and exit.
	Ack()
	Done() <-chan struct{}
	// End says how the run ended; valid once Done closed. A run whose end
	// is unknown has End.Lost set.
	End() task.End
	// Cancel kills the task's processes (through its shim, which records
	// it as killed).
	Cancel()
	// Close stops following the run (the daemon is stopping); the run
	// goes on. It waits for the handle's goroutines.
	Close()
}
