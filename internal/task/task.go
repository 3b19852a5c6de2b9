package task

import (
	"fmt"
	"time"
)

// State is where a task is in its life. The terminal states are Succeeded,
// Failed and Cancelled; an accepted task always ends in one of them.
type State string

// The task states, as they appear in the API and in --json output.
const (
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	return s == Succeeded || s == Failed || s == Cancelled
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case Queued, Running, Succeeded, Failed, Cancelled:
		return true
	}
	return false
}

// Limits are hard resource limits for one task. A zero field means "no
// limit" in that dimension.
type Limits struct {
	CPUCores float64 `json:"cpu_cores"` // cores; 0.25 = a quarter of one core
	// CPUShare is the task's weight when the CPU is contended, in cores'
	// worth (v1 cpu.shares = 1024 per core, v2 cpu.weight = 100 per core);
	// 0: the kernel's default (one core's worth). Not a limit: a task may
	// use idle CPU beyond it.
	CPUShare float64 `json:"cpu_share,omitempty"`
	MemoryMB float64 `json:"memory_mb"` // MiB
	// MemoryHoldMB, when above MemoryMB, says that a task reaching its
	// memory limit is held there, not OOM-killed, until the limit is
	// raised or the hold lifted: the scheduler sets it while it has lowered
	// a task's limit under what the task's history says it may need, so a
	// task that grows back sooner than its curve said waits for the raise
	// instead of dying for the scheduler's guess. On cgroup v1 the memory
	// controller's OOM killer is off for the task (memory.oom_control
	// oom_kill_disable: a process that cannot be charged waits in the
	// kernel); on v2, which has no such switch, memory.high is MemoryMB
	// (the kernel throttles the task there) and memory.max MemoryHoldMB.
	MemoryHoldMB float64 `json:"memory_hold_mb,omitempty"`
	IOPS         float64 `json:"iops"`     // read and write ops/s, each
	NetMbps      float64 `json:"net_mbps"` // megabits/s, each direction
	Pids         int64   `json:"pids,omitempty"`
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// Validate rejects negative or non-finite limits.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"cpu", l.CPUCores}, {"cpu share", l.CPUShare}, {"memory", l.MemoryMB}, {"memory hold", l.MemoryHoldMB}, {"iops", l.IOPS}, {"net-mbps", l.NetMbps}} {
		if f.v < 0 || f.v != f.v || f.v > 1e12 {
			return fmt.Errorf("%s limit %v is out of range", f.name, f.v)
		}
	}
	if l.Pids < 0 {
		return fmt.Errorf("pids limit %d is out of range", l.Pids)
	}
	return nil
}

// Spec is what a user asks to run.
type Spec struct {
	Argv   []string `json:"argv"`             // program and arguments; Argv[0] is resolved through PATH
	Inputs []string `json:"inputs,omitempty"` // declared input paths (files or directories)
	Env    []string `json:"env,omitempty"`    // KEY=VALUE; the task's whole environment
	Dir    string   `json:"dir,omitempty"`    // working directory; empty = the caller's
	Limits Limits   `json:"limits"`
}

// Stats summarises one dimension of a run. Nil pointers in the JSON form
// mean "unavailable on this host", never zero.
type Stats struct {
	CPUPct   *float64 `json:"cpu_pct"`
	MemoryMB *float64 `json:"memory_mb"`
	IOPS     *float64 `json:"iops"`
	NetMbps  *float64 `json:"net_mbps"`
}

// Record is the durable account of one task.
type Record struct {
	ID        string    `json:"id"`
	Signature string    `json:"signature"`
	Spec      Spec      `json:"spec"`
	State     State     `json:"state"`
	ExitCode  *int      `json:"exit_code"`        // nil until the task exits, or when killed by a signal
	Signal    string    `json:"signal,omitempty"` // e.g. "killed"
	OOMKilled bool      `json:"oom_killed"`
	Error     string    `json:"error,omitempty"`      // why it did not succeed, for people
	ErrorKind ErrorKind `json:"error_kind,omitempty"` // the same, for programs (see End.Outcome)
	Limits    Limits    `json:"limits"`
	Peak      Stats     `json:"peak"`
	Mean      Stats     `json:"mean"`
	Samples   int       `json:"samples"`
	// CPUSeconds is the CPU time the run used, from its cgroup's counter
	// at the end (0: not measured; records before the field).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// CPUThrottledS is how long its CFS quota held the run back (a quota
	// is set only when the user capped CPU), from the same reading.
	CPUThrottledS float64    `json:"cpu_throttled_s,omitempty"`
	SubmittedAt   time.Time  `json:"submitted_at"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	DurationS     float64    `json:"duration_s"`
	LogDir        string     `json:"log_dir,omitempty"`
	InputBytes    int64      `json:"input_bytes"`          // exact total size of declared inputs (a feature for the predictor)
	RunnerPID     int        `json:"runner_pid,omitempty"` // the prescient process running it (local mode), to detect a runner that died
}
