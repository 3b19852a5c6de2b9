package api

import (
	"fmt"
	"time"
)

// Task states, as in State fields.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// TerminalState reports whether s is a final state.
func TerminalState(s string) bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Limits are hard resource limits; a zero field means unlimited.
type Limits struct {
	CPUCores float64 `json:"cpu_cores"`
	// CPUShare is the weight under contention in cores' worth (not a
	// limit); 0: the default.
	CPUShare float64 `json:"cpu_share,omitempty"`
	MemoryMB float64 `json:"memory_mb"`
	// MemoryHoldMB is set by the scheduler only, in a task's allocations:
	// above MemoryMB it says the task, at its memory limit, is held there
	// (not OOM-killed) until the limit is raised (docs/scheduling.md). A
	// request that sets it is refused.
	MemoryHoldMB float64 `json:"memory_hold_mb,omitempty"`
	IOPS         float64 `json:"iops"`
	NetMbps      float64 `json:"net_mbps"`
	Pids         int64   `json:"pids,omitempty"`
}

// Spec is what to run. Env is the task's whole environment (PATH in it
// resolves Argv[0]); Dir its working directory, which must be absolute.
type Spec struct {
	Argv   []string `json:"argv"`
	Inputs []string `json:"inputs,omitempty"`
	Env    []string `json:"env,omitempty"`
	Dir    string   `json:"dir,omitempty"`
	Limits Limits   `json:"limits"`
}

// SubmitRequest is the body of POST /v1/tasks.
type SubmitRequest struct {
	Spec Spec `json:"spec"`
	// Requests is what the scheduler reserves for the task (CPU cores and
	// memory MB are used). Nil means the task's limits where set, else the
	// daemon's default request.
	Requests *Limits `json:"requests,omitempty"`
	// Priority orders the queue: higher runs first, FIFO within a
	// priority (default 0).
	Priority int `json:"priority,omitempty"`
}

// Amounts are resource amounts in every dimension the scheduler accounts.
type Amounts struct {
	CPUCores float64 `json:"cpu_cores"`
	MemoryMB float64 `json:"memory_mb"`
	// MemoryHoldMB is set by the scheduler only, in a task's allocations:
	// above MemoryMB it says the task, at its memory limit, is held there
	// (not OOM-killed) until the limit is raised (docs/scheduling.md). A
	// request that sets it is refused.
	MemoryHoldMB float64 `json:"memory_hold_mb,omitempty"`
	IOPS         float64 `json:"iops"`
	NetMbps      float64 `json:"net_mbps"`
}

// PredictionStep is one step of a predicted curve: for DurationS seconds,
// usage at or below P50 half the time and at or below Upper with
// probability Prediction.UpperQuantile.
type PredictionStep struct {
	DurationS float64 `json:"duration_s"`
	P50       Amounts `json:"p50"`
	Upper     Amounts `json:"upper"`
}

// Prediction is the curve the scheduler planned a task with.
type Prediction struct {
	Model         string           `json:"model"` // e.g. "history/exact", "requests"
	UpperQuantile float64          `json:"upper_quantile"`
	Steps         []PredictionStep `json:"steps"`
}

// Reservation is a queued task's soft reservation in the calendar.
type Reservation struct {
	Held bool `json:"held"` // false: waiting for room (or deferred)
	// Deferred: more tasks are ahead in the queue than the scheduler plans
	// (serve --plan-depth); it is planned as they leave.
	Deferred bool       `json:"deferred,omitempty"`
	Start    *time.Time `json:"start,omitempty"` // planned start
	Soft     Amounts    `json:"soft"`            // peak amount reserved
}

// Allocation is one change of a task's allocation.
type Allocation struct {
	Time time.Time `json:"time"`
	// Limits are what the task's cgroup has; Held what the task holds in
	// the scheduler's ledger (for CPU its predicted use: CPU is
	// compressible; for an oom_retry the memory its next run will start
	// with).
	Limits       Limits  `json:"limits"`
	Held         Amounts `json:"held"`
	SoftMemoryMB float64 `json:"soft_memory_mb,omitempty"`
	SoftApplied  bool    `json:"soft_applied"`
	Reason       string  `json:"reason"` // commit, adjust_up, adjust_down, oom_retry, throttle, unthrottle, evict, release, restore
	Detail       string  `json:"detail,omitempty"`
}

// Stats is peak or mean per dimension; nil = unavailable, never zero.
type Stats struct {
	CPUPct   *float64 `json:"cpu_pct"`
	MemoryMB *float64 `json:"memory_mb"`
	IOPS     *float64 `json:"iops"`
	NetMbps  *float64 `json:"net_mbps"`
}

// Owner is the user a task runs as.
type Owner struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// Task is the daemon's account of one task.
type Task struct {
	ID        string `json:"id"`
	Signature string `json:"signature"`
	State     string `json:"state"`
	ExitCode  *int   `json:"exit_code"`
	Signal    string `json:"signal,omitempty"`
	OOMKilled bool   `json:"oom_killed"`
	Error     string `json:"error,omitempty"`
	// ErrorCode says why the task did not succeed, for programs: exit,
	// signal, oom, not_found, not_executable, start, cancelled, lost,
	// evicted, internal (see docs/api.md).
	ErrorCode string `json:"error_code,omitempty"`
	Spec      Spec   `json:"spec"`
	Limits    Limits `json:"limits"`
	Requests  Limits `json:"requests"`
	Peak      Stats  `json:"peak"`
	Mean      Stats  `json:"mean"`
	Samples   int    `json:"samples"`
	// CPUSeconds is the CPU time the task's run used, read from its
	// cgroup's counter at the end (absent while it runs and when not
	// measured). Exact, unlike the integral of the sampled curve, which
	// misses the tail after the last sample.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// CPUThrottledS is how long the task's CFS quota held it back (only a
	// user's --max-cpu sets a quota: contention under weights shows as
	// Stretch instead).
	CPUThrottledS float64 `json:"cpu_throttled_s,omitempty"`
	// Stretch is the run's duration over its predicted duration, and
	// PredictedCPUSeconds what its prediction put its CPU-seconds at
	// (the curve's median): a run longer than predicted for the same
	// CPU-seconds waited for CPU (contention); more CPU-seconds than
	// predicted is a contention tax or different work. Only for a task
	// that ran with a prediction.
	Stretch             float64    `json:"stretch,omitempty"`
	PredictedCPUSeconds float64    `json:"predicted_cpu_seconds,omitempty"`
	SubmittedAt         time.Time  `json:"submitted_at"`
	StartedAt           *time.Time `json:"started_at"`
	FinishedAt          *time.Time `json:"finished_at"`
	DurationS           float64    `json:"duration_s"`
	InputBytes          int64      `json:"input_bytes"`
	LogDir              string     `json:"log_dir,omitempty"`
	Owner               Owner      `json:"owner"`
	// Attempt counts starts lost to a daemon restart before this one (0 for
	// a task that never had to be retried).
	Attempt int `json:"attempt"`
	// Priority is the task's queue priority.
	Priority int `json:"priority"`
	// Retries counts requeues after an OOM kill or an eviction.
	Retries int `json:"retries,omitempty"`
	// Prediction, Reservation and Allocations come from the predictive
	// scheduler (absent under the fit policy).
	Prediction  *Prediction  `json:"prediction,omitempty"`
	Reservation *Reservation `json:"reservation,omitempty"`
	Allocations []Allocation `json:"allocations,omitempty"`
	// Usage is a running task's measured use at its last sample (the
	// predict policy; absent before the first sample and once ended).
	Usage *Amounts `json:"usage,omitempty"`
	// LogsDropped says what of the task's output the daemon no longer
	// has; nil: nothing was dropped (or the task has not ended yet).
	LogsDropped *LogsDropped `json:"logs_dropped,omitempty"`
}

// LogsDropped is the output of a task the daemon deleted: the first bytes
// of a stream, by rotation (serve --log-max-bytes, --log-keep), and the
// whole log directory, by retention (serve --log-total-bytes).
type LogsDropped struct {
	StdoutBytes int64 `json:"stdout_bytes,omitempty"` // the first bytes of stdout, by rotation
	StderrBytes int64 `json:"stderr_bytes,omitempty"` // the first bytes of stderr, by rotation
	// RemovedAt is when all the task's logs were removed; nil: they were not.
	RemovedAt    *time.Time `json:"removed_at,omitempty"`
	RemovedBytes int64      `json:"removed_bytes,omitempty"` // disk space the removed logs used
	Reason       string     `json:"reason,omitempty"`        // why they were removed: "retention"
	// LogTotalBytes is the cap on all tasks' logs in force at the removal.
	LogTotalBytes int64 `json:"log_total_bytes,omitempty"`
}

// Point is one sample of a task's curve; nil = unavailable.
type Point struct {
	Time       time.Time `json:"time"`
	CPUPct     *float64  `json:"cpu_pct"`
	MemoryMB   *float64  `json:"memory_mb"`
	RSSMB      *float64  `json:"rss_mb"`
	PeakMB     *float64  `json:"peak_mb"`
	IOPS       *float64  `json:"iops"`
	NetInMbps  *float64  `json:"net_in_mbps"`
	NetOutMbps *float64  `json:"net_out_mbps"`
}

// Resources are amounts the scheduler hands out.
type Resources struct {
	CPUCores float64 `json:"cpu_cores"`
	MemoryMB float64 `json:"memory_mb"`
}

// DimUsage is one dimension of the node as the scheduler sees it.
type DimUsage struct {
	Capacity     float64 `json:"capacity"`
	Committed    float64 `json:"committed"`     // hard limits of running tasks
	SoftReserved float64 `json:"soft_reserved"` // soft reservations now
	SoftPeak     float64 `json:"soft_peak"`     // soft reservations' maximum over the horizon
	Used         float64 `json:"used"`          // measured use of running tasks
}

// NodeStatus is the body of GET /v1/node.
type NodeStatus struct {
	Capacity Resources `json:"capacity"`
	// Used is what is reserved now: the hard limits of running tasks
	// (predict policy) or their requests (fit policy).
	Used Resources `json:"used"`
	// Dims, under the predict policy, by dimension: "cpu" (cores),
	// "memory" (MB), "iops", "net" (Mbps).
	Dims     map[string]DimUsage `json:"dims,omitempty"`
	Reserved int                 `json:"reserved,omitempty"` // queued tasks holding a soft reservation
	// ModelVersion is the version of the trained sequence models the
	// predictor serves (<state>/models/models-NNNNNN.bin); 0: none yet.
	ModelVersion int `json:"model_version,omitempty"`
	// Load is the whole node's load (every process, not only tasks) at
	// the daemon's last sampling tick; nil before the first.
	Load       *NodeLoad `json:"load,omitempty"`
	Running    int       `json:"running"`
	Queued     int       `json:"queued"`
	MaxRunning int       `json:"max_running"`
	MaxQueue   int       `json:"max_queue"`
	Policy     string    `json:"policy"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"started_at"`
}

// NodeLoad is the node's load from /proc: each group is nil when the
// kernel does not give it (CPU needs two ticks; pressure needs PSI).
type NodeLoad struct {
	Time   time.Time   `json:"time"`
	CPU    *NodeCPU    `json:"cpu,omitempty"`
	Memory *NodeMemory `json:"memory,omitempty"`
	// Runnable and Blocked are threads runnable now and waiting on IO.
	Runnable *float64 `json:"runnable,omitempty"`
	Blocked  *float64 `json:"blocked,omitempty"`
	// Pressure is PSI by resource ("cpu", "memory", "io"): the share of
	// the last interval in which some or all non-idle tasks stalled.
	Pressure map[string]Pressure `json:"pressure,omitempty"`
}

// NodeCPU is the node's CPUs and how many were busy over the interval.
type NodeCPU struct {
	Cores     float64 `json:"cores"`
	BusyCores float64 `json:"busy_cores"`
}

// NodeMemory is /proc/meminfo's MemTotal and MemAvailable.
type NodeMemory struct {
	TotalMB     float64 `json:"total_mb"`
	AvailableMB float64 `json:"available_mb"`
}

// Pressure is one PSI resource's stall shares (0…1).
type Pressure struct {
	Some float64 `json:"some"`
	Full float64 `json:"full"`
}

// Event is one Server-Sent Event of GET /v1/events ("event: task").
type Event struct {
	Type string `json:"type"` // "task"
	Task Task   `json:"task"`
}

// Error is the body of every 4xx and 5xx reply.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`            // machine-readable, e.g. "limit_exceeded", "not_found"
	Message string `json:"error"`           // one line for humans
	Limit   string `json:"limit,omitempty"` // the input limit that refused the request
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return e.Message
}

// Error codes.
const (
	CodeBadRequest      = "bad_request"
	CodeLimitExceeded   = "limit_exceeded"
	CodeQueueFull       = "queue_full"
	CodeNotFound        = "not_found"
	CodeProgramNotFound = "program_not_found"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeConflict        = "conflict"
	CodeInternal        = "internal"
	CodeUnavailable     = "unavailable"
	CodeNoSpace         = "no_space" // HTTP 507: the state directory is full
)
