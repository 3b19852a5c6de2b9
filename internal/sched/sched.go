package sched

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// Errors the Scheduler returns. "Does not fit yet" is never one of them: a
// task that does not fit stays queued.
var (
	// ErrUnknown: no task with this id is queued or running.
	ErrUnknown = errors.New("sched: unknown task")
	// ErrExists: a task with this id is already queued or running.
	ErrExists = errors.New("sched: task exists")
	// ErrNotRunning: the operation needs a running task.
	ErrNotRunning = errors.New("sched: task is not running")
)

// Reasons of Allocation records.
const (
	ReasonCommit     = "commit"      // soft reservation became hard limits
	ReasonRestore    = "restore"     // a running task found after a restart
	ReasonAdjustUp   = "adjust_up"   // a limit raised (ahead of growth or under pressure)
	ReasonAdjustDown = "adjust_down" // an under-used limit lowered
	ReasonReclaim    = "reclaim"     // slack above use taken back for a task that must grow
	ReasonOOMRetry   = "oom_retry"   // OOM-killed: requeued with a larger memory estimate
	ReasonThrottle   = "throttle"    // soft memory limit pressed below use to relieve memory pressure
	ReasonUnthrottle = "unthrottle"  // pressure over: the soft memory limit is back at the prediction
	ReasonEvict      = "evict"       // killed to relieve memory pressure: requeued
	ReasonRelease    = "release"     // ended: everything returned to the pool
	ReasonHoldLifted = "hold_lifted" // held at its memory limit too long with no room: the kernel may OOM-kill it
	ReasonLost       = "lost"        // the run was lost (no exit status): requeued as it was
)

// ModelRequests names the fallback curve: the declared requests.
const ModelRequests = "requests"

// Clock tells the scheduler the time.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Features describe a task to the Predictor.
type Features struct {
	Signature string
	Code      string // hash of the code alone
	InputSize float64
	InputType string
	// Requests are the task's declared needs, the fallback when nothing
	// better is known.
	Requests resource.Vector
}

// Predictor predicts a task's whole-run curve and names the model that
// answered. An invalid curve (no steps) means "nothing known": the
// scheduler then reserves the declared requests for Config.FallbackDuration
// and, having no prediction to enforce, hands the executor only the task's
// own caps (Task.Cap) while accounting at least the requests.
// Implementations must be safe for concurrent use and should be fast: the
// scheduler calls Predict under its lock.
type Predictor interface {
	Predict(f Features) (ledger.Curve, string)
}

// Executor applies a running task's limits. The scheduler calls it under
// its lock, so it must not call back into the Scheduler. An error leaves
// the limits as they were.
type Executor interface {
	Update(id string, l task.Limits) error
}

// SoftLimiter is optionally implemented by an Executor that can set a soft
// memory limit (cgroup v1 memory.soft_limit_in_bytes, v2 memory.high).
// Without it the scheduler records the intended value only.
type SoftLimiter interface {
	SetSoftMemory(id string, mb float64) error
}

// Evictor is optionally implemented by an Executor that can kill a task to
// relieve memory pressure. The task's end is reported through Finish as
// usual; the scheduler then requeues it. Without it, pressure is left to
// the kernel (and the OOM retry).
type Evictor interface {
	Evict(id string) error
}

// Task is what Enqueue is given.
type Task struct {
	ID       string
	Priority int    // higher runs first
	User     uint32 // the owner: users share a priority fairly
	Features Features
	// Cap bounds the hard limits per dimension (the user's own limits); a
	// zero field does not bound.
	Cap task.Limits
}

// Allocation is one change of a task's allocation.
type Allocation struct {
	At time.Time `json:"time"`
	// Limits are what the task's cgroup has; Held what it holds in the
	// ledger (for CPU, its predicted use: CPU is compressible).
	Limits task.Limits     `json:"limits"`
	Held   resource.Vector `json:"held"`
	// SoftMemoryMB is the intended soft memory limit (p50); SoftApplied
	// says whether the executor set it.
	SoftMemoryMB float64 `json:"soft_memory_mb,omitempty"`
	SoftApplied  bool    `json:"soft_applied"`
	Reason       string  `json:"reason"`
	Detail       string  `json:"detail,omitempty"`
}

// Start is a task Dispatch committed: the caller launches it with Limits
// (already masked to the enforced dimensions) and then sets the soft limit.
type Start struct {
	ID           string
	Limits       task.Limits
	SoftMemoryMB float64
	Model        string
	Waited       time.Duration
}

// Observation is one sample of a running task.
type Observation struct {
	At   time.Time
	Used resource.Vector // cores, MiB, IO ops/s, Mbps
	// Ahead, if not zero, is an upper forecast of usage over the next
	// MonitorWindow from a live model (e.g. a predict.Session); the
	// scheduler raises limits to cover it as well as the whole-run curve.
	Ahead resource.Vector
}

// Outcome is how a run ended.
type Outcome struct {
	Succeeded bool // exit 0, nothing killed: what it taught is the truth
	OOMKilled bool
	Cancelled bool // the user cancelled it: never requeued
	// Lost: nothing is known of how the run ended; the caller (which
	// bounds such attempts) asks for a requeue as it was, with Detail.
	Lost   bool
	Detail string
	// Evicted: the run was killed by an eviction this scheduler may not
	// remember (it was ordered before a restart of the daemon): requeued
	// as an eviction is.
	Evicted bool
}

// Result says what Finish did.
type Result struct {
	Requeued   bool
	Reason     string // ReasonOOMRetry or ReasonEvict when requeued
	Retries    int    // OOM retries so far
	EstimateMB float64
	Detail     string
	// View is the task's state after Finish (for an ended task, its last
	// view, allocations included: the scheduler forgets it).
	View View
}

// State is where a task is in the scheduler.
type State uint8

// The states.
const (
	Queued State = iota + 1
	Running
)

func (s State) String() string {
	switch s {
	case Queued:
		return "queued"
	case Running:
		return "running"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// View is a copy of a task's scheduling state.
type View struct {
	ID       string
	State    State
	Priority int
	Model    string
	Curve    ledger.Curve
	// Reserved: a soft reservation is held (queued tasks); ResStart and
	// ResPeak describe it. Deferred: beyond the planning depth, not
	// planned yet.
	Reserved bool
	Deferred bool
	ResStart time.Time
	ResPeak  resource.Vector
	Limits   task.Limits // current hard limits (running)
	Used     resource.Vector
	Retries  int
	FloorMB  float64
	Allocs   []Allocation
}

// Defaults of Config.
const (
	DefaultCommitWindow     = 30 * time.Second
	DefaultMonitorWindow    = 10 * time.Second
	DefaultLeadTime         = 2 * time.Second
	DefaultGuardFrac        = 0.9
	DefaultDownBand         = 0.25
	DefaultDownAfter        = 10
	DefaultDownStep         = 0.25
	DefaultTTL              = 2 * time.Minute
	DefaultRetryLimit       = 16 // doublings: 16 MB to the largest nodes
	DefaultPressureFrac     = 0.95
	DefaultPressureCooldown = 5 * time.Second
	DefaultAgeStep          = time.Minute
	DefaultReplanWindow     = 64
	DefaultPlanDepth        = 512
	DefaultBurstWindow      = 5 * time.Second
	DefaultFallbackDuration = time.Minute
	DefaultMinCPU           = 0.05
	DefaultMinMemoryMB      = 16
	DefaultMinBackoff       = 0.75
	DefaultMemSlackMB       = 64
	DefaultContentionCheck  = 5 * time.Second
	DefaultWideStretch      = 2
	DefaultMemoryHoldFor    = 10 * time.Second
)

// Config configures a Scheduler. Zero fields take the defaults above.
type Config struct {
	Ledger    *ledger.Ledger // required; the scheduler is its only writer
	Predictor Predictor      // required
	Executor  Executor       // nil: limits are recorded, not applied
	Clock     Clock          // nil: SystemClock
	Log       *slog.Logger   // nil: discard

	// CommitWindow: the hard limit at commit covers the upper quantile of
	// the curve over the first CommitWindow (plus the ledger's headroom).
	CommitWindow time.Duration
	// MonitorWindow: on each sample the limits must cover the curve's
	// upper quantile over the next MonitorWindow.
	MonitorWindow time.Duration
	// LeadTime: observed memory growth is extrapolated this far ahead.
	LeadTime time.Duration
	// GuardFrac: memory use at or above this fraction of the limit raises
	// it at once, whatever the prediction says.
	GuardFrac float64
	// DownBand: a memory limit comes down only when what it must cover is
	// less than (1−DownBand) of it. A task with a curve comes down at once
	// when its predicted peak is over and its use agrees (the limit
	// follows the curve); a task without one only after DownAfter such
	// samples in a row, by at most DownStep of the limit at a time.
	DownBand  float64
	DownAfter int
	DownStep  float64
	// MinBackoff: CPU is compressible — a running task holds, in the
	// ledger, the CPU its curve says it uses (p50), not a limit; tasks
	// start while that predicted use fits the ledger's CPU capacity (the
	// caller sizes it: cores × overcommit); each task gets a CPU weight
	// proportional to its predicted use and no quota unless its own cap
	// asks for one. When running tasks get less CPU than their curves
	// predict on a busy node (contention), the CPU capacity admission uses
	// backs off in steps of 5 % down to MinBackoff of it, checked every
	// ContentionCheck; it comes back in the same steps when they do not,
	// and at once when the node's CPU is not busy. A task counts as short
	// of CPU when it is behind its curve's CPU-seconds and runs under the
	// curve now without being idle.
	MinBackoff      float64
	ContentionCheck time.Duration
	// WideStretch: a task predicted to use more than one core at a time
	// (a parallel build, a multi-threaded compressor) can run on fewer
	// cores than it can use, only slower, so under compressible CPU it is
	// planned, admitted and weighted at its predicted use / WideStretch,
	// but at least one core. Otherwise it waits for its whole width while
	// a core idles beside a one-core task (measured on the job mix: a Go
	// build's 1.65 cores waited 20 s for a compressor's last seconds, one
	// core idle). It then starts on the free core and widens as
	// neighbours end: the node stays busy, and the wide task is stretched
	// by at most WideStretch while it shares. A task of at most one core
	// is never squeezed: it cannot use a fraction of a core faster.
	// Default DefaultWideStretch; 1 plans every task at its full width.
	WideStretch float64
	// TTL of soft reservations past their planned start.
	TTL time.Duration
	// RetryLimit bounds OOM retries per task (negative: none); RetryCapMB
	// caps the retry estimate (default: the node's memory capacity). A
	// retry's memory is sized from the killed run: its growth at the kill
	// extrapolated over what its curve says is left of the run, at least
	// double the limit it died at, bounded by RetryCapMB and the task's
	// own cap; so a task is failed for OOM only when no larger limit that
	// fits the node is left to try (or RetryLimit runs out).
	RetryLimit int
	RetryCapMB float64
	// PressureFrac: when measured memory use of running tasks exceeds this
	// fraction of capacity, the lowest-priority (then youngest) running
	// task is throttled — its soft memory limit pressed below its use, so
	// the kernel reclaims from it first and (v2 memory.high) slows its
	// allocations — and, if pressure is still there a PressureCooldown
	// later, evicted and requeued; one action per PressureCooldown. Below
	// PressureFrac − 0.1 the throttled tasks get their soft limits back.
	PressureFrac     float64
	PressureCooldown time.Duration
	// MemoryHoldFor: while a task's memory limit is under what its
	// curve's upper peak needs (the limit follows the curve down, or
	// starts below a later peak), its cgroup holds it at the limit rather
	// than OOM-kill it (task.Limits.MemoryHoldMB): history knew the task
	// may need that much, and a kill would be for the scheduler's timing,
	// not for the task. A held task (use at GuardFrac of its limit) is
	// raised to that need at once, with the node's slack and evictions as
	// for any raise. One the node cannot raise for MemoryHoldFor has its
	// hold lifted: the kernel's OOM killer decides, and an OOM kill is
	// retried larger as usual (no deadlock of held tasks waiting on each
	// other). Default DefaultMemoryHoldFor; negative: no holds.
	MemoryHoldFor time.Duration
	// AgeStep: a queued task's effective priority grows by one per AgeStep
	// of waiting (no starvation under Replan).
	AgeStep time.Duration
	// ReplanWindow: how many queued tasks, in priority order, Replan
	// releases and re-reserves.
	ReplanWindow int
	// PlanDepth: at most this many queued tasks, the first in (aged)
	// priority order, are planned — hold a soft reservation in the
	// calendar (or wait for room to make one); the rest are deferred:
	// queued in O(1) and planned as tasks ahead of them leave. Slurm's
	// backfill bounds its planning the same way (bf_max_job_test): a
	// reservation hours deep behind thousands of tasks whose real ends are
	// not known yet costs an earliest-fit search through all of them and
	// says little. It is also what keeps enqueue fast with a deep queue
	// (docs/benchmarks.md).
	PlanDepth int
	// BurstWindow: a user's tasks of one priority queued within this of
	// each other are a burst, and within a burst the task predicted to
	// run longest goes first (longest processing time first, LPT): the
	// short ones then fill in beside the long ones instead of leaving a
	// long one to run alone at the end. Across bursts, and for tasks
	// without a prediction, the order stays first come, first served.
	// Default DefaultBurstWindow; negative: no reordering.
	BurstWindow time.Duration
	// FallbackDuration: how long a task with no prediction is assumed to run.
	FallbackDuration time.Duration
	// MinCPU and MinMemoryMB floor hard limits.
	MinCPU, MinMemoryMB float64
	// MemSlackMB: a memory limit is at least this much above the use it
	// covers (besides the ledger's relative headroom): room for the page
	// cache the task's IO charges to its cgroup (default 64).
	MemSlackMB float64
	// Enforce says which dimensions' limits reach the Executor (the others
	// are accounted in the ledger only). Zero value: CPU and memory.
	Enforce [resource.NumDims]bool
	// Static fixes a task's limits at commit, as declared-request
	// schedulers do: no live adjustment, no action on memory pressure, and
	// admission by what is committed, not by measured use. With a
	// Predictor that knows nothing, it is the declared-requests policy.
	Static bool
	// OnAllocation, if set, is called with the reason of every allocation
	// change as it is recorded (a metrics counter). It runs under the
	// scheduler's lock: it must be quick and must not call the Scheduler.
	OnAllocation func(reason string)
}

func (c *Config) validate() error {
	if c.Ledger == nil || c.Predictor == nil {
		return errors.New("sched: config needs a Ledger and a Predictor")
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	durs := []struct {
		p *time.Duration
		d time.Duration
	}{{&c.CommitWindow, DefaultCommitWindow}, {&c.MonitorWindow, DefaultMonitorWindow}, {&c.LeadTime, DefaultLeadTime}, {&c.ContentionCheck, DefaultContentionCheck},
		{&c.TTL, DefaultTTL}, {&c.PressureCooldown, DefaultPressureCooldown}, {&c.AgeStep, DefaultAgeStep},
		{&c.FallbackDuration, DefaultFallbackDuration}}
	for _, x := range durs {
		if *x.p == 0 {
			*x.p = x.d
		}
		if *x.p < 0 {
			return fmt.Errorf("sched: negative duration %v", *x.p)
		}
	}
	if c.MemoryHoldFor == 0 {
		c.MemoryHoldFor = DefaultMemoryHoldFor
	}
	fracs := []struct {
		p *float64
		d float64
	}{{&c.GuardFrac, DefaultGuardFrac}, {&c.DownBand, DefaultDownBand}, {&c.DownStep, DefaultDownStep}, {&c.PressureFrac, DefaultPressureFrac}, {&c.MinBackoff, DefaultMinBackoff}}
	for _, x := range fracs {
		if *x.p == 0 {
			*x.p = x.d
		}
		if !(*x.p > 0 && *x.p <= 1) {
			return fmt.Errorf("sched: fraction %v is outside (0, 1]", *x.p)
		}
	}
	if c.DownAfter <= 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.WideStretch == 0 {
		c.WideStretch = DefaultWideStretch
	}
	if !(c.WideStretch >= 1 && c.WideStretch <= 16) {
		return fmt.Errorf("sched: wide stretch %v is outside [1, 16]", c.WideStretch)
	}
	switch {
	case c.RetryLimit == 0:
		c.RetryLimit = DefaultRetryLimit
	case c.RetryLimit < 0:
		c.RetryLimit = 0 // no OOM retries
	}
	if c.RetryCapMB <= 0 {
		c.RetryCapMB = c.Ledger.Capacity()[resource.Memory]
	}
	if c.ReplanWindow <= 0 {
		c.ReplanWindow = DefaultReplanWindow
	}
	if c.PlanDepth <= 0 {
		c.PlanDepth = DefaultPlanDepth
	}
	if c.BurstWindow == 0 {
		c.BurstWindow = DefaultBurstWindow
	}
	if c.MinCPU <= 0 {
		c.MinCPU = DefaultMinCPU
	}
	if c.MinMemoryMB <= 0 {
		c.MinMemoryMB = DefaultMinMemoryMB
	}
	if c.MemSlackMB == 0 {
		c.MemSlackMB = DefaultMemSlackMB
	}
	if c.MemSlackMB < 0 {
		c.MemSlackMB = 0
	}
	if c.Enforce == ([resource.NumDims]bool{}) {
		c.Enforce[resource.CPU], c.Enforce[resource.Memory] = true, true
	}
	return nil
}

// entry is one task the scheduler holds.
type entry struct {
	t       Task
	seq     uint64
	tag     uint64    // fair-share tag: orders users' tasks within a priority
	enq     time.Time // when (re)queued
	aged    time.Time // when its aging began: enq, or earlier when it went ahead in a burst
	state   State
	curve   ledger.Curve
	model   string
	floorMB float64         // memory floor from OOM retries
	loose   bool            // no prediction: enforce only Task.Cap, account ≥ requests
	peakHi  resource.Vector // the curve's upper peak, bounding live forecasts
	sig     string          // signature, for what OOM kills teach
	retries int
	allocs  []Allocation

	// queued:
	qi       int  // index in its priority's FIFO
	deferred bool // beyond the planning depth: no reservation attempted
	reserved bool // holds a soft reservation
	resStart time.Time
	resPeak  resource.Vector
	hidx     int // index in the due heap; -1 when not in it

	// running:
	start    time.Time
	limits   task.Limits // what it holds in the ledger (CPU: predicted use)
	enf      task.Limits // what its cgroup has (enforced)
	soft     float64
	used     resource.Vector
	observed bool
	prevMem  float64
	prevAt   time.Time
	samples  int       // samples observed this run
	memRate  float64   // MB/s of sustained growth (≥ 0)
	memNeed  float64   // the memory limit its last sample called for (0: none yet)
	rising   bool      // memory rose at the last sample
	lastUp   time.Time // last raise of its memory limit
	cpuAvg   float64   // CPU use, smoothed (EWMA)
	cpuSecs  float64   // CPU-seconds used so far (measured)
	predSecs float64   // CPU-seconds its curve predicts so far
	// holdOff: the memory hold was lifted for this run (MemoryHoldFor);
	// heldSince: when the task began pressing a held limit (zero: not).
	holdOff   bool
	heldSince time.Time
	// cutStep and cutCPU: the curve step whose rest was last replanned
	// lower in the ledger (stepLeft), and the CPU it was replanned at;
	// cutStep −1: none.
	cutStep int
	cutCPU  float64
	// lowRun counts its samples in a row under half its curve's CPU
	// median (stepNeed).
	lowRun int
	// why is the last reason a due start was refused (blocked), so
	// that each is logged once.
	why      string
	downRun  [resource.NumDims]int
	evicting bool
	// evictFailed is when the executor last refused to evict it (zero:
	// never); victim skips it for PressureCooldown after.
	evictFailed time.Time
	throttled   bool // soft memory limit pressed down under node pressure
}

// Stats count reservations, for the invariants the tests check.
type Stats struct {
	Reserved  int // soft reservations made
	Released  int // reservations (soft or hard) the scheduler released
	Expired   int // soft reservations the ledger expired
	Commits   int
	Adjusts   int
	Evicts    int
	Throttles int
	Reclaims  int
	Requeues  int
}

// Scheduler is the queue, the dispatcher and the monitor. Make one with
// New. It is safe for concurrent use: mu guards everything below it; every
// method runs synchronously under it.
type Scheduler struct {
	cfg  Config
	led  *ledger.Ledger
	capv resource.Vector
	head resource.Vector // ledger headroom

	mu         sync.Mutex
	seq        uint64
	tasks      map[string]*entry
	running    map[string]*entry // the running tasks of tasks
	keys       []qkey            // keys of the non-empty FIFOs, by priority descending
	fifo       map[qkey]*fifo    // (priority, user) → FIFO of queued entries
	vtime      uint64            // fair share: the tag of the latest started task
	userTag    map[uint32]uint64 // fair share: each user's next tag
	due        dueHeap           // reserved queued entries by reserved start
	committed  resource.Vector   // sum of running hard limits
	usedSum    resource.Vector   // sum of running tasks' measured use (limits until observed)
	inverted   bool              // a task was queued ahead of planned ones: Replan reorders
	planGen    uint64            // ledger generation at the last Replan
	planAt     time.Time         // time of the last Replan
	lastPress  time.Time         // last pressure action
	shadow     shadow            // the blocked head's protected start (EASY backfill)
	stats      Stats
	throttledN int                // running tasks throttled under memory pressure
	backoff    float64            // share of the CPU capacity admission uses (contention back-off)
	lastCont   time.Time          // last contention check
	floors     map[string]float64 // signature → memory floor its OOM kills taught
	planned    int                // queued tasks not deferred (reserved or waiting for room)
	deferredN  int                // queued tasks deferred beyond PlanDepth
}

// shadow protects the first queued task that could not be reserved because
// running tasks hold the capacity it needs (the ledger counts hard
// allocations as open-ended, so it cannot place the task after they end):
// at is when, by the running tasks' predicted ends, enough is free for it,
// and extra what is left over at that time. A later task may be placed
// before at only if it ends by then or fits in extra — Slurm's EASY
// backfill rule, with predicted durations.
type shadow struct {
	e     *entry // nil: no head is blocked
	at    time.Time
	extra resource.Vector
}

// New returns a Scheduler over cfg.Ledger.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Scheduler{
		cfg: cfg, led: cfg.Ledger, capv: cfg.Ledger.Capacity(), head: cfg.Ledger.Config().Headroom,
		tasks: map[string]*entry{}, running: map[string]*entry{}, backoff: 1, floors: map[string]float64{}, fifo: map[qkey]*fifo{}, userTag: map[uint32]uint64{},
	}, nil
}

// Ledger returns the ledger the scheduler writes.
func (s *Scheduler) Ledger() *ledger.Ledger { return s.led }
