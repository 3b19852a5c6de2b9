package sched

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	ReasonOOMRetry   = "oom_retry"   // OOM-killed: requeued with a larger memory estimate
	ReasonThrottle   = "throttle"    // soft memory limit pressed below use to relieve memory pressure
	ReasonUnthrottle = "unthrottle"  // pressure over: the soft memory limit is back at the prediction
	ReasonEvict      = "evict"       // killed to relieve memory pressure: requeued
	ReasonRelease    = "release"     // ended: everything returned to the pool
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
	At     time.Time   `json:"time"`
	Limits task.Limits `json:"limits"`
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
	OOMKilled bool
	Cancelled bool // the user cancelled it: never requeued
	// Lost: nothing is known of how the run ended; the caller (which
	// bounds such attempts) asks for a requeue as it was, with Detail.
	Lost   bool
	Detail string
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
	DefaultRetryLimit       = 3
	DefaultPressureFrac     = 0.95
	DefaultPressureCooldown = 5 * time.Second
	DefaultAgeStep          = time.Minute
	DefaultReplanWindow     = 64
	DefaultPlanDepth        = 512
	DefaultFallbackDuration = time.Minute
	DefaultMinCPU           = 0.05
	DefaultMinMemoryMB      = 16
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
	// DownBand, DownAfter, DownStep: a limit is lowered only after
	// DownAfter consecutive samples needing less than (1−DownBand) of it,
	// and by at most DownStep of it at a time (fast up, slow down).
	DownBand  float64
	DownAfter int
	DownStep  float64
	// TTL of soft reservations past their planned start.
	TTL time.Duration
	// RetryLimit bounds OOM retries per task; RetryCapMB caps the retry
	// estimate (default: the node's memory capacity).
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
	// FallbackDuration: how long a task with no prediction is assumed to run.
	FallbackDuration time.Duration
	// MinCPU and MinMemoryMB floor hard limits.
	MinCPU, MinMemoryMB float64
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
	}{{&c.CommitWindow, DefaultCommitWindow}, {&c.MonitorWindow, DefaultMonitorWindow}, {&c.LeadTime, DefaultLeadTime},
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
	fracs := []struct {
		p *float64
		d float64
	}{{&c.GuardFrac, DefaultGuardFrac}, {&c.DownBand, DefaultDownBand}, {&c.DownStep, DefaultDownStep}, {&c.PressureFrac, DefaultPressureFrac}}
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
	if c.MinCPU <= 0 {
		c.MinCPU = DefaultMinCPU
	}
	if c.MinMemoryMB <= 0 {
		c.MinMemoryMB = DefaultMinMemoryMB
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
	enq     time.Time // when (re)queued
	state   State
	curve   ledger.Curve
	model   string
	floorMB float64         // memory floor from OOM retries
	loose   bool            // no prediction: enforce only Task.Cap, account ≥ requests
	peakHi  resource.Vector // the curve's upper peak, bounding live forecasts
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
	start     time.Time
	limits    task.Limits // hard limits as accounted in the ledger
	soft      float64
	used      resource.Vector
	observed  bool
	prevMem   float64
	prevAt    time.Time
	downRun   [resource.NumDims]int
	evicting  bool
	throttled bool // soft memory limit pressed down under node pressure
	requeueOK bool
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
	prios      []int           // priorities with a non-empty FIFO, descending
	fifo       map[int]*fifo   // priority → FIFO of queued entries
	due        dueHeap         // reserved queued entries by reserved start
	committed  resource.Vector // sum of running hard limits
	usedSum    resource.Vector // sum of running tasks' measured use (limits until observed)
	inverted   bool            // a task was queued above lower-priority ones: Replan reorders
	planGen    uint64          // ledger generation at the last Replan
	planAt     time.Time       // time of the last Replan
	lastPress  time.Time       // last pressure action
	shadow     shadow          // the blocked head's protected start (EASY backfill)
	stats      Stats
	throttledN int // running tasks throttled under memory pressure
	planned    int // queued tasks not deferred (reserved or waiting for room)
	deferredN  int // queued tasks deferred beyond PlanDepth
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
		tasks: map[string]*entry{}, fifo: map[int]*fifo{},
	}, nil
}

// Ledger returns the ledger the scheduler writes.
func (s *Scheduler) Ledger() *ledger.Ledger { return s.led }

// Enqueue predicts t's curve, soft-reserves it at the earliest start at
// which it fits and queues it. A curve that does not fit yet (the calendar
// is full to its horizon, or committed allocations leave no room) leaves
// the task queued without a reservation; Replan tries again.
func (s *Scheduler) Enqueue(t Task) (View, error) {
	if t.ID == "" {
		return View{}, errors.New("sched: enqueue: empty id")
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tasks[t.ID]; ok {
		return View{}, fmt.Errorf("enqueue %q: %w", t.ID, ErrExists)
	}
	e := &entry{t: t, hidx: -1}
	e.curve, e.model = s.predict(t.Features, 0)
	e.loose = e.model == ModelRequests
	s.tasks[t.ID] = e
	s.admit(e, now)
	return s.view(e), nil
}

// predict asks the predictor and makes the answer usable: invalid →
// declared requests; every step clamped to capacity and floored.
func (s *Scheduler) predict(f Features, floorMB float64) (ledger.Curve, string) {
	c, model := s.cfg.Predictor.Predict(f)
	if c.Validate() != nil {
		c, model = ledger.Flat(s.cfg.FallbackDuration, f.Requests, f.Requests), ModelRequests
	}
	return s.shape(c, floorMB), model
}

// shape returns a copy of c clamped to capacity and with memory floored.
func (s *Scheduler) shape(c ledger.Curve, floorMB float64) ledger.Curve {
	out := ledger.Curve{HiQ: c.HiQ, Steps: slices.Clone(c.Steps)}
	for i := range out.Steps {
		st := &out.Steps[i]
		st.P50[resource.Memory] = max(st.P50[resource.Memory], floorMB)
		st.PHi[resource.Memory] = max(st.PHi[resource.Memory], floorMB)
		for d := range st.P50 {
			st.PHi[d] = min(st.PHi[d], s.capv[d])
			st.P50[d] = min(st.P50[d], st.PHi[d])
		}
	}
	return out
}

// queue appends e to its priority's FIFO.
func (s *Scheduler) queue(e *entry, now time.Time) {
	s.seq++
	e.seq, e.enq, e.state = s.seq, now, Queued
	q := s.fifo[e.t.Priority]
	if q == nil {
		q = newFIFO()
		s.fifo[e.t.Priority] = q
	}
	if q.len() == 0 {
		i, _ := slices.BinarySearchFunc(s.prios, e.t.Priority, func(a, b int) int { return b - a })
		s.prios = slices.Insert(s.prios, i, e.t.Priority)
		if i < len(s.prios)-1 {
			s.inverted = true // lower priorities are queued behind it
		}
	}
	q.push(e)
}

// admit queues e deferred and lets fill plan it if it is within the
// planning depth.
func (s *Scheduler) admit(e *entry, now time.Time) {
	e.deferred = true
	s.deferredN++
	s.queue(e, now)
	s.fill(now)
}

// fill plans deferred tasks, best first, while fewer than PlanDepth are
// planned; at depth, a deferred task that comes before the last planned
// one (a higher priority arrived) takes its place, and the displaced task
// is deferred again. Each FIFO's deferred entries are a suffix of it, so
// the candidates are the first deferred and the last planned entry of
// each priority.
func (s *Scheduler) fill(now time.Time) {
	for s.deferredN > 0 {
		var best *entry
		for _, p := range s.prios {
			if e := s.fifo[p].firstDeferred(); e != nil && (best == nil || s.before(e, best, now)) {
				best = e
			}
		}
		if best == nil {
			return
		}
		if s.planned >= s.cfg.PlanDepth {
			var worst *entry
			for _, p := range s.prios {
				if e := s.fifo[p].lastPlanned(); e != nil && (worst == nil || s.before(worst, e, now)) {
					worst = e
				}
			}
			if worst == nil || !s.before(best, worst, now) {
				return
			}
			s.unreserve(worst)
			if s.shadow.e == worst {
				s.shadow = shadow{}
			}
			s.fifo[worst.t.Priority].deferLast(worst)
			s.planned--
			s.deferredN++
		}
		s.fifo[best.t.Priority].undefer(best)
		s.deferredN--
		s.planned++
		s.reserve(best, now)
	}
}

// dequeue takes e out of its FIFO and the planned/deferred counts,
// dropping its priority from prios when the FIFO empties.
func (s *Scheduler) dequeue(e *entry) {
	s.uncount(e)
	q := s.fifo[e.t.Priority]
	q.remove(e)
	if q.len() == 0 {
		if i := slices.Index(s.prios, e.t.Priority); i >= 0 {
			s.prios = slices.Delete(s.prios, i, i+1)
		}
	}
}

// unqueue removes e from its FIFO and the due heap, releasing its soft
// reservation.
func (s *Scheduler) unqueue(e *entry) {
	s.dequeue(e)
	s.unreserve(e)
}

// reserve soft-reserves e's curve from now; false when it does not fit yet.
func (s *Scheduler) reserve(e *entry, now time.Time) bool {
	if e.reserved {
		return true
	}
	r, fit, err := s.led.SoftReserve(e.t.ID, s.planSpan(e.curve), now, s.cfg.TTL)
	if err != nil {
		s.cfg.Log.Warn("soft reserve", "task", e.t.ID, "err", err)
		return false
	}
	if !fit.OK {
		s.cfg.Log.Debug("no room yet", "task", e.t.ID, "fit", fit.String())
		if s.shadow.e == nil && fit.Reason == ledger.ReasonCommitted {
			s.protect(e, now)
		}
		return false
	}
	if !s.backfillOK(e, r.Start, r.End, r.Peak) {
		if s.led.Release(e.t.ID) {
			s.stats.Reserved++
			s.stats.Released++
		}
		return false
	}
	if s.shadow.e == e {
		s.shadow = shadow{}
	}
	s.stats.Reserved++
	e.reserved, e.resStart, e.resPeak = true, r.Start, r.Peak
	heap.Push(&s.due, e)
	return true
}

// planSpan is the part of c the calendar plans: at most half the ledger's
// horizon, so that a task predicted to run longer than the horizon can
// still be placed (and not wait forever); what lies beyond is not
// reserved ahead, and once the task runs its hard allocation is
// open-ended in the ledger anyway.
func (s *Scheduler) planSpan(c ledger.Curve) ledger.Curve {
	limit := s.led.Config().Horizon / 2
	if c.Total() <= limit {
		return c
	}
	out := ledger.Curve{HiQ: c.HiQ}
	var off time.Duration
	for _, st := range c.Steps {
		if off >= limit {
			break
		}
		st.Dur = min(st.Dur, limit-off)
		out.Steps = append(out.Steps, st)
		off += st.Dur
	}
	return out
}

// protect makes e the blocked head: it computes when the running tasks,
// by their predicted ends, leave room for e's soft-sized peak.
func (s *Scheduler) protect(e *entry, now time.Time) {
	need := e.curve.Peak(s.led.Config().SoftQuantile)
	type end struct {
		at  time.Time
		lim resource.Vector
	}
	var ends []end
	for _, x := range s.tasks {
		if x.state == Running {
			at := x.start.Add(x.curve.Total())
			if !at.After(now) {
				at = now.Add(s.led.Config().SlotWidth) // overran its prediction: any moment now
			}
			ends = append(ends, end{at, x.limits.Vector()})
		}
	}
	slices.SortFunc(ends, func(a, b end) int { return a.at.Compare(b.at) })
	free := s.capv.Sub(s.committed)
	for _, x := range ends {
		free = free.Add(x.lim)
		if need.LessEq(free) {
			s.shadow = shadow{e: e, at: x.at, extra: free.Sub(need)}
			return
		}
	}
	s.shadow = shadow{e: e, at: now.Add(s.led.Config().Horizon), extra: resource.Vector{}}
}

// backfillOK reports whether a task planned over [start, end) with peak
// does not delay the protected head.
func (s *Scheduler) backfillOK(e *entry, start, end time.Time, peak resource.Vector) bool {
	h := s.shadow
	if h.e == nil || h.e == e || h.e.state != Queued || !start.Before(h.at) || !end.After(h.at) {
		return true
	}
	return peak.LessEq(h.extra)
}

// unreserve releases e's soft reservation, if it holds one.
func (s *Scheduler) unreserve(e *entry) {
	if !e.reserved {
		return
	}
	if s.led.Release(e.t.ID) {
		s.stats.Released++
	}
	e.reserved = false
	if e.hidx >= 0 {
		heap.Remove(&s.due, e.hidx)
	}
}

// uncount drops a queued e leaving the queue from the planned or
// deferred count.
func (s *Scheduler) uncount(e *entry) {
	if e.deferred {
		e.deferred = false
		s.deferredN--
	} else {
		s.planned--
	}
}

// effPrio is e's priority aged by its wait.
func (s *Scheduler) effPrio(e *entry, now time.Time) int {
	return e.t.Priority + int(now.Sub(e.enq)/s.cfg.AgeStep)
}

// before orders queued entries: higher effective priority first, then FIFO.
func (s *Scheduler) before(a, b *entry, now time.Time) bool {
	pa, pb := s.effPrio(a, now), s.effPrio(b, now)
	if pa != pb {
		return pa > pb
	}
	return a.seq < b.seq
}

// each visits queued entries in priority order (aged; FIFO within) until
// fn returns false: a merge of the per-priority FIFOs, whose own order is
// the aged order since an older entry of a FIFO has aged at least as much.
func (s *Scheduler) each(now time.Time, fn func(*entry) bool) {
	var small [8]int
	cur := small[:0]
	for range s.prios {
		cur = append(cur, 0)
	}
	for {
		var best *entry
		bi := -1
		for i, p := range s.prios {
			e, at := s.fifo[p].next(cur[i])
			cur[i] = at
			if e == nil {
				continue
			}
			if best == nil || s.before(e, best, now) {
				best, bi = e, i
			}
		}
		if best == nil || !fn(best) {
			return
		}
		cur[bi]++
	}
}

// expire handles soft reservations the ledger let lapse.
func (s *Scheduler) expire(now time.Time) {
	for _, r := range s.led.Expire(now) {
		s.stats.Expired++
		if e := s.tasks[r.ID]; e != nil && e.reserved {
			e.reserved = false
			if e.hidx >= 0 {
				heap.Remove(&s.due, e.hidx)
			}
		}
	}
}

// Replan re-places the first ReplanWindow queued tasks in (aged) priority
// order: their soft reservations are released together and made again one
// by one, so capacity that returned moves them earlier and a newly queued
// higher priority goes first. It also retries tasks without a reservation.
// It returns how many tasks it re-placed. It is cheap to call when nothing
// changed: Dispatch calls it (unforced) first, and then it does nothing
// unless the ledger's generation moved, a higher priority was queued, or
// some queued task lacks a reservation and a slot has passed.
func (s *Scheduler) Replan() int {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replan(now, true)
}

func (s *Scheduler) replan(now time.Time, force bool) int {
	s.expire(now)
	gen := s.led.Generation()
	var batch []*entry
	missing := false
	s.each(now, func(e *entry) bool {
		batch = append(batch, e)
		missing = missing || !e.reserved
		return len(batch) < s.cfg.ReplanWindow
	})
	retry := missing && now.Sub(s.planAt) >= s.led.Config().SlotWidth
	if !force && gen == s.planGen && !s.inverted && !retry {
		return 0
	}
	s.planAt = now
	for _, e := range batch {
		s.unreserve(e)
	}
	s.shadow = shadow{}
	for _, e := range batch {
		if e.deferred {
			// In the window, so ahead of every other deferred task of its
			// FIFO (batch is in queue order): the first of them.
			s.fifo[e.t.Priority].undefer(e)
			s.deferredN--
			s.planned++
		}
		s.reserve(e, now)
	}
	s.fill(now) // the window may have planned beyond the depth: rebalance
	s.inverted = false
	s.planGen = s.led.Generation()
	return len(batch)
}

// Schedule is the scheduler loop's step: Replan if anything changed (the
// ledger's generation moved — capacity returned —, a higher priority was
// queued, or a queued task lacks a reservation and a slot has passed), then
// Dispatch. Callers run it whenever they are woken (a submit, an end, the
// ledger's Notify) and on a ticker.
func (s *Scheduler) Schedule(n int) []Start {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replan(now, false)
	return s.dispatch(now, n)
}

// Dispatch is the dispatch decision alone: it starts up to n queued tasks
// (n ≤ 0: no bound) whose soft reservations are due, in priority order,
// that also fit the measured free capacity; each is committed in the
// ledger and returned for the caller to launch. Reservations that lapsed
// are dropped first (Replan renews them).
func (s *Scheduler) Dispatch(n int) []Start {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	return s.dispatch(now, n)
}

func (s *Scheduler) dispatch(now time.Time, n int) []Start {
	slack := s.led.Config().SlotWidth
	var due []*entry
	for len(s.due) > 0 && !s.due[0].resStart.After(now.Add(slack)) {
		due = append(due, heap.Pop(&s.due).(*entry))
	}
	slices.SortFunc(due, func(a, b *entry) int {
		if s.before(a, b, now) {
			return -1
		}
		return 1
	})
	var out []Start
	for _, e := range due {
		if n > 0 && len(out) >= n {
			heap.Push(&s.due, e)
			continue
		}
		st, ok := s.commit(e, now)
		if !ok {
			heap.Push(&s.due, e)
			continue
		}
		out = append(out, st)
	}
	if len(out) > 0 {
		// Our own commits moved the generation; they freed nothing the
		// queue could use (a hard limit covers at least the soft curve).
		s.planGen = s.led.Generation()
		s.fill(now) // the started tasks' places in the plan
	}
	return out
}

// commit turns e's due soft reservation into hard limits if it fits the
// measured free capacity and the ledger's hard accounting.
func (s *Scheduler) commit(e *entry, now time.Time) (Start, bool) {
	need := windowP50(e.curve, 0, s.cfg.CommitWindow)
	if !s.cfg.Static && !need.LessEq(s.capv.Sub(s.usedSum)) {
		return Start{}, false
	}
	if !s.backfillOK(e, now, now.Add(e.curve.Total()), e.curve.Peak(s.led.Config().SoftQuantile)) {
		return Start{}, false
	}
	want := s.bound(e, e.curve.Hard(0, s.cfg.CommitWindow, s.head))
	avail := s.capv.Sub(s.committed)
	for d := range want {
		if want[d] > avail[d] {
			// Take what is left if it still covers the p50 need.
			if a := avail[d] - 0.002; a >= need[d] && a > 0 {
				want[d] = a
			} else {
				return Start{}, false
			}
		}
	}
	lim := task.LimitsOf(want)
	if err := s.led.Commit(e.t.ID, now, lim); err != nil {
		s.cfg.Log.Debug("commit", "task", e.t.ID, "err", err)
		return Start{}, false
	}
	s.unqueueCommitted(e)
	waited := now.Sub(e.enq)
	e.state, e.start, e.limits = Running, now, lim
	e.peakHi = e.curve.Peak(1)
	e.observed, e.used, e.prevAt, e.downRun = false, resource.Vector{}, time.Time{}, [resource.NumDims]int{}
	e.evicting, e.requeueOK = false, false
	s.committed = s.committed.Add(want)
	s.usedSum = s.usedSum.Add(want) // until the first sample, assume it uses its limits
	e.soft = 0
	if !e.loose {
		e.soft = windowP50(e.curve, 0, s.cfg.CommitWindow)[resource.Memory]
	}
	s.stats.Commits++
	s.record(e, now, ReasonCommit, fmt.Sprintf("model %s, waited %v", e.model, waited.Round(time.Millisecond)), false)
	return Start{ID: e.t.ID, Limits: s.enforced(e, lim), SoftMemoryMB: e.soft, Model: e.model, Waited: waited}, true
}

// unqueueCommitted removes a just-committed e from its FIFO (its soft
// reservation became the hard one; it is already out of the due heap).
func (s *Scheduler) unqueueCommitted(e *entry) {
	s.dequeue(e)
	e.reserved = false
}

// bound applies floors, the memory floor, the user's caps and capacity.
func (s *Scheduler) bound(e *entry, v resource.Vector) resource.Vector {
	v[resource.CPU] = max(v[resource.CPU], s.cfg.MinCPU)
	v[resource.Memory] = max(v[resource.Memory], s.cfg.MinMemoryMB, e.floorMB)
	if e.loose {
		v = v.Max(e.t.Features.Requests)
	}
	c := e.t.Cap.Vector()
	for d := range v {
		if c[d] > 0 {
			v[d] = min(v[d], c[d])
		}
		v[d] = min(v[d], s.capv[d])
	}
	return v
}

// enforced masks l to the dimensions the executor applies; a task without
// a prediction gets its own caps only.
func (s *Scheduler) enforced(e *entry, l task.Limits) task.Limits {
	if e.loose {
		return e.t.Cap
	}
	v := l.Vector()
	for d := range v {
		if !s.cfg.Enforce[d] {
			v[d] = 0
		}
	}
	out := task.LimitsOf(v)
	out.Pids = l.Pids
	return out
}

func (s *Scheduler) record(e *entry, now time.Time, reason, detail string, softApplied bool) {
	e.allocs = append(e.allocs, Allocation{At: now, Limits: e.limits, SoftMemoryMB: e.soft, SoftApplied: softApplied, Reason: reason, Detail: detail})
	if s.cfg.OnAllocation != nil {
		s.cfg.OnAllocation(reason)
	}
	s.cfg.Log.Debug("allocation", "task", e.t.ID, "reason", reason, "limits", e.limits.Vector().String(), "soft_mb", e.soft, "detail", detail)
}

// MarkSoftApplied notes that the caller set the soft limit of a Start.
func (s *Scheduler) MarkSoftApplied(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.tasks[id]; e != nil && len(e.allocs) > 0 {
		e.allocs[len(e.allocs)-1].SoftApplied = true
	}
}

// Restore records a task found running after a restart, holding limits
// since start, with curve c (an invalid curve: flat at the limits). It is
// not checked against capacity (see ledger.Restore).
func (s *Scheduler) Restore(t Task, start time.Time, limits task.Limits, c ledger.Curve, model string) error {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tasks[t.ID]; ok {
		return fmt.Errorf("restore %q: %w", t.ID, ErrExists)
	}
	if c.Validate() != nil {
		v := limits.Vector()
		c, model = ledger.Flat(s.cfg.FallbackDuration, v, v), "restored"
	}
	if err := s.led.Restore(t.ID, start, limits); err != nil {
		return fmt.Errorf("sched: %w", err)
	}
	s.stats.Reserved++
	e := &entry{t: t, hidx: -1, state: Running, start: start, limits: limits, curve: s.shape(c, 0), model: model}
	e.peakHi = e.curve.Peak(1)
	s.tasks[t.ID] = e
	v := limits.Vector()
	s.committed = s.committed.Add(v)
	s.usedSum = s.usedSum.Add(v)
	s.record(e, now, ReasonRestore, "", false)
	return nil
}

// Cancel removes a queued task and releases its soft reservation. It
// reports false for a task that is not queued (a running task ends
// through Finish).
func (s *Scheduler) Cancel(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tasks[id]
	if e == nil || e.state != Queued {
		return false
	}
	s.unqueue(e)
	delete(s.tasks, id)
	s.fill(s.cfg.Clock.Now())
	return true
}

// Finish ends a running task's allocation: its hard limits return to the
// pool at once. An evicted task, and an OOM-killed one while retries
// remain, is requeued — the OOM-killed with a memory estimate of
// max(limit×1.2, limit+100 MB), capped at RetryCapMB — and stays known;
// any other ends and is forgotten.
func (s *Scheduler) Finish(id string, o Outcome) (Result, error) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tasks[id]
	if e == nil {
		return Result{}, fmt.Errorf("finish %q: %w", id, ErrUnknown)
	}
	if e.state != Running {
		return Result{}, fmt.Errorf("finish %q: %w", id, ErrNotRunning)
	}
	s.release(e)
	res := Result{Retries: e.retries}
	switch {
	case o.Cancelled:
	case o.Lost:
		res.Requeued, res.Reason = true, ReasonLost
	case e.evicting:
		res.Requeued, res.Reason = true, ReasonEvict
	case o.OOMKilled && e.retries < s.cfg.RetryLimit:
		l := max(e.limits.MemoryMB, e.used[resource.Memory])
		est := min(max(l*1.2, l+100), s.cfg.RetryCapMB)
		e.retries++
		e.floorMB = max(e.floorMB, est)
		res.Requeued, res.Reason, res.Retries = true, ReasonOOMRetry, e.retries
	}
	if !res.Requeued {
		e.limits, e.soft = task.Limits{}, 0
		s.record(e, now, ReasonRelease, "", false)
		delete(s.tasks, id)
		res.View = s.view(e)
		return res, nil
	}
	res.EstimateMB = e.floorMB
	e.curve = s.shape(e.curve, e.floorMB)
	switch res.Reason {
	case ReasonOOMRetry:
		res.Detail = fmt.Sprintf("OOM-killed at a %.0f MB limit; requeued with %.0f MB (retry %d of %d)", e.limits.MemoryMB, e.floorMB, e.retries, s.cfg.RetryLimit)
	case ReasonLost:
		res.Detail = o.Detail
	default:
		res.Detail = "evicted under memory pressure; requeued"
	}
	e.limits = task.Limits{MemoryMB: e.floorMB}
	e.soft = 0
	s.record(e, now, res.Reason, res.Detail, false)
	s.stats.Requeues++
	s.admit(e, now)
	res.View = s.view(e)
	return res, nil
}

// release returns a running e's hard allocation.
func (s *Scheduler) release(e *entry) {
	if s.led.Release(e.t.ID) {
		s.stats.Released++
	}
	v := e.limits.Vector()
	s.committed = clampZero(s.committed.Sub(v))
	s.usedSum = clampZero(s.usedSum.Sub(s.usedOf(e)))
	if e.throttled {
		e.throttled = false
		s.throttledN--
	}
}

func (s *Scheduler) usedOf(e *entry) resource.Vector {
	if e.observed {
		return e.used
	}
	return e.limits.Vector()
}

func clampZero(v resource.Vector) resource.Vector {
	for d := range v {
		if v[d] < 1e-9 {
			v[d] = 0
		}
	}
	return v
}

// Get returns a task's scheduling state.
func (s *Scheduler) Get(id string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tasks[id]
	if e == nil {
		return View{}, false
	}
	return s.view(e), true
}

func (s *Scheduler) view(e *entry) View {
	return View{
		ID: e.t.ID, State: e.state, Priority: e.t.Priority, Model: e.model,
		Curve:    ledger.Curve{HiQ: e.curve.HiQ, Steps: slices.Clone(e.curve.Steps)},
		Reserved: e.reserved, Deferred: e.deferred, ResStart: e.resStart, ResPeak: e.resPeak,
		Limits: e.limits, Used: e.used, Retries: e.retries, FloorMB: e.floorMB,
		Allocs: slices.Clone(e.allocs),
	}
}

// Usage is the node's state as the scheduler sees it.
type Usage struct {
	Capacity  resource.Vector
	Committed resource.Vector // hard limits of running tasks
	SoftNow   resource.Vector // soft reservations in the current slot
	SoftPeak  resource.Vector // soft reservations' maximum over the horizon
	Used      resource.Vector // measured use of running tasks (limits until the first sample)
	Queued    int
	Running   int
	Reserved  int // queued tasks holding a soft reservation
}

// Usage reports capacity, committed, soft-reserved and measured use.
func (s *Scheduler) Usage() Usage {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.led.Snapshot(now)
	u := Usage{Capacity: s.capv, Committed: snap.Committed, SoftNow: snap.SoftNow, SoftPeak: snap.SoftPeak, Used: s.usedSum, Reserved: snap.Soft}
	for _, e := range s.tasks {
		if e.state == Queued {
			u.Queued++
		} else {
			u.Running++
		}
	}
	return u
}

// Counts reports how many tasks are queued and running.
func (s *Scheduler) Counts() (queued, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.planned + s.deferredN, len(s.tasks) - s.planned - s.deferredN
}

// Stats returns the counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// windowP50 is the per-dimension maximum of P50 over the steps overlapping
// [elapsed, elapsed+window); past the curve's end, its last step.
func windowP50(c ledger.Curve, elapsed, window time.Duration) resource.Vector {
	return windowMax(c, elapsed, window, false)
}

// windowMax is the per-dimension maximum of P50 (hi: PHi) over the steps
// overlapping [elapsed, elapsed+window); past the curve's end, its last
// step. It does not allocate and stops at the window's end.
func windowMax(c ledger.Curve, elapsed, window time.Duration, hi bool) resource.Vector {
	var v resource.Vector
	var off time.Duration
	found := false
	for i := range c.Steps {
		st := &c.Steps[i]
		end := off + st.Dur
		if end > elapsed && off < elapsed+window {
			if hi {
				v = v.Max(st.PHi)
			} else {
				v = v.Max(st.P50)
			}
			found = true
		}
		off = end
		if off >= elapsed+window {
			break
		}
	}
	if !found && len(c.Steps) > 0 {
		v = c.Steps[len(c.Steps)-1].P50
		if hi {
			v = c.Steps[len(c.Steps)-1].PHi
		}
	}
	return v
}

// hardWindow is Curve.Hard without allocation and with an early exit.
func hardWindow(c ledger.Curve, elapsed, window time.Duration, head resource.Vector) resource.Vector {
	v := windowMax(c, elapsed, window, true)
	for d := range v {
		v[d] *= 1 + head[d]
	}
	return v
}
