package task

import (
	"fmt"
	"time"
)

// ErrorKind says, as a stable machine-readable word, why a task did not
// succeed. It reaches the API as the task's error_code, so that a client
// (the CLI's exit codes, a dashboard) never has to match error messages.
type ErrorKind string

// The error kinds. A succeeded task has none.
const (
	KindNone          ErrorKind = ""
	KindExit          ErrorKind = "exit"           // the program exited with a non-zero status
	KindSignal        ErrorKind = "signal"         // the program was killed by a signal
	KindOOM           ErrorKind = "oom"            // the kernel killed a process of the task for memory
	KindNotFound      ErrorKind = "not_found"      // the program (or working directory) does not exist
	KindNotExecutable ErrorKind = "not_executable" // the program is not executable
	KindStart         ErrorKind = "start"          // Prescient could not start it (cgroup, limits, files)
	KindNoSpace       ErrorKind = "no_space"       // its run could not be prepared: the state directory was full
	KindCancelled     ErrorKind = "cancelled"      // the user cancelled it
	KindLost          ErrorKind = "lost"           // its run was lost: no exit status was recorded
	KindEvicted       ErrorKind = "evicted"        // killed to relieve memory pressure, not requeued
	KindInternal      ErrorKind = "internal"       // Prescient failed while following it
)

// End is how one run of a task ended, as the runtime saw it: the facts,
// before any policy. Local mode, the daemon and the daemon's recovery all
// describe a run's end with it, and Outcome turns it into the record's
// final state — the one place where that mapping lives.
type End struct {
	// Started: the program ran (its process existed in its cgroup).
	Started    bool
	StartedAt  time.Time
	FinishedAt time.Time
	// StartError, when set, says why the run could not start; StartKind
	// classifies it (KindNotFound, KindNotExecutable or KindStart).
	StartError string
	StartKind  ErrorKind
	// Code is the main process's exit status, -1 when it was killed by a
	// signal or the status is unknown.
	Code int
	// Signal names the signal that killed the main process ("SIGKILL"),
	// "" if none.
	Signal string
	// OOMKills counts the kernel's OOM kills in the task's cgroup during
	// the run, of any of its processes. Any kill makes the run OOM-killed,
	// whatever the main process did afterwards (a shell that reports
	// "Killed" and exits 137, or a pipeline that exits 0 with truncated
	// output).
	OOMKills uint64
	// MemoryLimitMB is the hard memory limit in force at the end, for the
	// message of an OOM kill (0: unknown).
	MemoryLimitMB float64
	// Killed: Prescient killed the task's cgroup (a cancel or an eviction).
	Killed bool
	// Cancelled: the user asked to cancel this task.
	Cancelled bool
	// Evicted: the scheduler killed it to relieve memory pressure.
	Evicted bool
	// Unknown: the main process was not Prescient's child (followed through
	// its cgroup after its shim died), so Code and Signal are unknown.
	Unknown bool
	// WaitError: following the task failed.
	WaitError string
	// Lost, when set, says why nothing is known of how the run ended (its
	// shim died without recording an exit status).
	Lost string
}

// Outcome is a run's end as a record states it.
type Outcome struct {
	State     State
	ExitCode  *int // nil when killed by a signal or unknown
	Signal    string
	OOMKilled bool
	Kind      ErrorKind
	Error     string
}

// Outcome maps e to the record's final state. The rules, first match wins:
//
//	could not start                       failed (cancelled if the user cancelled)
//	run lost                              failed, lost (cancelled if the user cancelled)
//	cancelled by the user and killed or   cancelled
//	  ended with a non-zero status
//	OOM kill in the cgroup                failed, oom — never succeeded
//	evicted                               failed, evicted
//	following it failed                   failed, internal
//	status unknown                        failed, lost
//	exit 0                                succeeded
//	otherwise                             failed (exit or signal)
func (e End) Outcome() Outcome {
	var o Outcome
	if e.Started && !e.Unknown && e.WaitError == "" && e.Lost == "" && e.StartError == "" {
		if e.Code >= 0 && e.Signal == "" {
			c := e.Code
			o.ExitCode = &c
		}
		o.Signal = e.Signal
	}
	switch {
	case e.StartError != "":
		o.State, o.Kind, o.Error = Failed, e.StartKind, e.StartError
		if o.Kind == KindNone {
			o.Kind = KindStart
		}
		if e.Cancelled {
			o.State, o.Kind = Cancelled, KindCancelled
		}
	case e.Lost != "":
		o.State, o.Kind, o.Error = Failed, KindLost, e.Lost
		if e.Cancelled {
			o.State, o.Kind = Cancelled, KindCancelled
		}
	case e.Cancelled && (e.Killed || e.Code != 0 || e.Signal != ""):
		o.State, o.Kind = Cancelled, KindCancelled
	case e.OOMKills > 0:
		o.State, o.Kind, o.OOMKilled = Failed, KindOOM, true
		o.Error = fmt.Sprintf("killed for memory: %d OOM kill%s in the task's cgroup", e.OOMKills, plural(e.OOMKills))
		if e.MemoryLimitMB > 0 {
			o.Error += fmt.Sprintf(" (limit %.0f MB)", e.MemoryLimitMB)
		}
	case e.Evicted:
		o.State, o.Kind, o.Error = Failed, KindEvicted, "killed to relieve memory pressure"
	case e.WaitError != "":
		o.State, o.Kind, o.Error = Failed, KindInternal, e.WaitError
	case e.Unknown:
		o.State, o.Kind, o.Error = Failed, KindLost, "exit status unknown: the task's shim died while it ran"
	case e.Code == 0 && e.Signal == "":
		o.State = Succeeded
	case e.Signal != "":
		o.State, o.Kind = Failed, KindSignal
	default:
		o.State, o.Kind = Failed, KindExit
	}
	return o
}

// Apply writes e's outcome and times into r.
func (e End) Apply(r *Record) Outcome {
	o := e.Outcome()
	r.State, r.ExitCode, r.Signal, r.OOMKilled, r.ErrorKind, r.Error = o.State, o.ExitCode, o.Signal, o.OOMKilled, o.Kind, o.Error
	end := e.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	r.FinishedAt = &end
	if e.Started && !e.StartedAt.IsZero() {
		at := e.StartedAt
		r.StartedAt = &at
		r.DurationS = end.Sub(at).Seconds()
	}
	return o
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
