package ledger

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// Errors the Ledger returns. "Does not fit" is never one of them: that is a
// Fit value.
var (
	// ErrReleased: the reservation was released (or expired, see
	// ErrExpired) and cannot be used any more.
	ErrReleased = errors.New("ledger: reservation released")
	// ErrExpired: the soft reservation's TTL ran out. Errors wrapping it
	// also wrap ErrReleased.
	ErrExpired = errors.New("ledger: reservation expired")
	// ErrUnknown: no reservation with this id was ever made (or its
	// tombstone has been forgotten, see Config.Tombstones).
	ErrUnknown = errors.New("ledger: unknown reservation")
	// ErrExists: a live reservation with this id already exists.
	ErrExists = errors.New("ledger: reservation exists")
	// ErrCommitted: the operation needs a soft reservation and this one
	// is a hard allocation.
	ErrCommitted = errors.New("ledger: reservation is committed")
	// ErrNotCommitted: the operation needs a hard allocation and this one
	// is a soft reservation.
	ErrNotCommitted = errors.New("ledger: reservation is not committed")
	// ErrOverCapacity: the hard allocations would exceed capacity.
	ErrOverCapacity = errors.New("ledger: over capacity")
	// ErrUnplanned: Replan of a hard allocation held flat (Commit, not
	// CommitPlan).
	ErrUnplanned = errors.New("ledger: allocation is held flat, without a plan")
)

// Defaults Config.validate fills in.
const (
	DefaultSlotWidth    = 5 * time.Second
	DefaultHorizon      = 24 * time.Hour
	DefaultSoftQuantile = 0.5
	DefaultTTL          = 5 * time.Minute
	DefaultTombstones   = 1 << 16
	maxSlots            = 1 << 22
)

// DefaultHeadroom is the fraction added to PHi when sizing hard limits.
var DefaultHeadroom = resource.Vector{resource.CPU: 0.1, resource.Memory: 0.1, resource.IO: 0.1, resource.Net: 0.1}

// Config configures a Ledger. The zero value of each field but Capacity
// means its default.
type Config struct {
	// Capacity is what tasks may use in total (see NodeConfig.Capacity).
	// CPU and Memory must be positive; a zero IO or Net capacity means
	// nothing may reserve any of it.
	Capacity resource.Vector
	// SlotWidth is the calendar's time resolution: a reservation occupies
	// every slot its curve touches. Default DefaultSlotWidth.
	SlotWidth time.Duration
	// Horizon is how far ahead the calendar plans; it is rounded up to a
	// power-of-two number of slots (at most 4 Mi). A curve longer than the
	// horizon never fits. Default DefaultHorizon.
	Horizon time.Duration
	// SoftQuantile is the quantile soft reservations are sized at, in
	// [0.5, 1): 0.5 reserves P50, a curve's HiQ or more reserves PHi,
	// values between interpolate. Default DefaultSoftQuantile.
	SoftQuantile float64
	// Headroom is the fraction over PHi that HardLimits adds; the zero
	// Vector means DefaultHeadroom. No dimension may be negative.
	Headroom resource.Vector
	// DefaultTTL is used when SoftReserve gets ttl ≤ 0. Default DefaultTTL.
	DefaultTTL time.Duration
	// Tombstones is how many released ids the ledger remembers so that
	// using them is ErrReleased rather than ErrUnknown. Default
	// DefaultTombstones.
	Tombstones int
	// Start is the calendar's first instant, normally the clock's now when
	// the ledger is made. Zero means the first time any method is given.
	Start time.Time
}

func (c *Config) validate() error {
	if err := validAmounts(c.Capacity); err != nil {
		return fmt.Errorf("capacity: %w", err)
	}
	if c.Capacity[resource.CPU] <= 0 || c.Capacity[resource.Memory] <= 0 {
		return fmt.Errorf("capacity %v: cpu and memory must be positive", c.Capacity)
	}
	if c.SlotWidth == 0 {
		c.SlotWidth = DefaultSlotWidth
	}
	if c.SlotWidth < time.Millisecond {
		return fmt.Errorf("slot width %v is below 1ms", c.SlotWidth)
	}
	if c.Horizon == 0 {
		c.Horizon = DefaultHorizon
	}
	if c.Horizon < c.SlotWidth || c.Horizon/c.SlotWidth > maxSlots {
		return fmt.Errorf("horizon %v must hold 1 to %d slots of %v", c.Horizon, maxSlots, c.SlotWidth)
	}
	if c.SoftQuantile == 0 {
		c.SoftQuantile = DefaultSoftQuantile
	}
	if !(c.SoftQuantile >= 0.5 && c.SoftQuantile < 1) {
		return fmt.Errorf("soft quantile %v is outside [0.5, 1)", c.SoftQuantile)
	}
	if c.Headroom == (resource.Vector{}) {
		c.Headroom = DefaultHeadroom
	}
	if err := validAmounts(c.Headroom); err != nil {
		return fmt.Errorf("headroom: %w", err)
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.DefaultTTL < 0 {
		return fmt.Errorf("default ttl %v is negative", c.DefaultTTL)
	}
	if c.Tombstones == 0 {
		c.Tombstones = DefaultTombstones
	}
	if c.Tombstones < 0 {
		return fmt.Errorf("tombstones %d is negative", c.Tombstones)
	}
	return nil
}

// Kind is what a reservation currently is.
type Kind uint8

// The kinds of reservation.
const (
	Soft Kind = iota + 1 // a planned curve at a planned start
	Hard                 // committed limits, open-ended: held flat, or planned by the rest of its curve (CommitPlan)
)

func (k Kind) String() string {
	switch k {
	case Soft:
		return "soft"
	case Hard:
		return "hard"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Reservation is a copy of one reservation's state.
type Reservation struct {
	ID   string
	Kind Kind
	// Earliest is the start SoftReserve was asked not to precede.
	Earliest time.Time
	// Start is the planned start (soft) or when the hard allocation was
	// committed or restored (hard).
	Start time.Time
	// End is Start plus the curve's total (soft); zero for hard
	// allocations, which last until released.
	End time.Time
	// Expires is when a soft reservation lapses unless committed.
	Expires time.Time
	// Peak is the per-dimension maximum the calendar holds for it: the
	// sized curve's peak (soft) or the limits (hard).
	Peak resource.Vector
	// Limits are the hard limits as committed or adjusted (Pids kept).
	Limits task.Limits
}

// Reason says why a curve does not fit.
type Reason uint8

// The reasons. ReasonCapacity is permanent on this node; the others may
// change as allocations are released or time passes.
const (
	ReasonNone      Reason = iota // it fits
	ReasonCapacity                // a step needs more than the node's capacity
	ReasonCommitted               // a step needs more than capacity minus the hard allocations
	ReasonHorizon                 // no room before the calendar's horizon ends (or the curve is longer than it)
	ReasonBusy                    // FitsAtShape: a step collides at the asked start with what the calendar holds
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "fits"
	case ReasonCapacity:
		return "exceeds capacity"
	case ReasonCommitted:
		return "exceeds capacity left by committed allocations"
	case ReasonHorizon:
		return "no room within the horizon"
	case ReasonBusy:
		return "collides with the calendar"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Fit is the answer to "when does this curve fit?".
type Fit struct {
	OK     bool
	Start  time.Time    // the earliest start ≥ the asked earliest at which it fits
	End    time.Time    // Start + the curve's total
	Reason Reason       // ReasonNone when OK
	Dim    resource.Dim // the blocking dimension for ReasonCapacity/ReasonCommitted
	Detail string       // human-readable, for logs and `show`
}

func (f Fit) String() string {
	if f.OK {
		return fmt.Sprintf("fits at %s", f.Start.Format(time.RFC3339Nano))
	}
	return f.Reason.String() + ": " + f.Detail
}

// Snapshot is the ledger's state at one instant, per dimension.
type Snapshot struct {
	At        time.Time
	Capacity  resource.Vector
	Committed resource.Vector // sum of hard allocations
	SoftNow   resource.Vector // soft reservations' usage in the slot holding At
	SoftPeak  resource.Vector // per-dimension maximum of soft usage over the horizon
	// Free is Capacity - Committed - SoftNow; negative when hard
	// allocations grew over soft plans or were restored over capacity.
	Free       resource.Vector
	Soft, Hard int // counts of reservations
	HorizonEnd time.Time
	Generation uint64
}

// shape is a curve prepared for the calendar: offsets and durations in ns,
// each step sized at the soft quantile in milli-units.
type shape struct {
	offs, durs []int64
	sized      []qvec
	total      int64
	peak       qvec // per-dimension max over steps
	least      qvec // per-dimension min over steps
}

// in is what sh, placed at start, holds in absolute slot slot: the max of
// the steps that touch it (as place counts it).
func (sh *shape) in(start, slot, w int64) qvec {
	var v qvec
	for k := range sh.offs {
		a := start + sh.offs[k]
		if floorDiv(a, w) <= slot && slot <= floorDiv(a+sh.durs[k]-1, w) {
			v = v.max(sh.sized[k])
		}
	}
	return v
}

type res struct {
	id       string
	kind     Kind
	earliest int64
	start    int64
	ttl      time.Duration
	expires  int64
	hidx     int // index in the expiry heap; -1 when not in it
	sh       shape
	hard     qvec
	limits   task.Limits
	// A hard allocation with a plan (CommitPlan) holds no flat vector
	// beside the calendar: the rest of its curve is in the calendar
	// instead. plan is that curve, sized, from pbase; placed is what the
	// calendar holds for it from pstart: the plan from the last commit or
	// adjust on, its first slot raised to the limits held then.
	planned bool
	plan    shape
	pbase   int64
	placed  shape
	pstart  int64
}

type tombstone uint8

const (
	tombReleased tombstone = iota + 1
	tombExpired
)

// Ledger is the node's capacity calendar. Make one with New.
type Ledger struct {
	log      *slog.Logger
	cfg      Config
	capq     qvec
	width    int64
	notify   chan struct{}
	gen      atomic.Uint64
	mu       sync.Mutex
	cal      *calendar       // guarded by mu
	started  bool            // guarded by mu: the window's origin is set
	hard     qvec            // guarded by mu: sum of hard allocations
	flat     qvec            // guarded by mu: sum of the hard allocations held flat (no plan)
	nextEnd  int64           // guarded by mu: earliest end of a placed plan (math.MaxInt64: none)
	res      map[string]*res // guarded by mu
	exp      expHeap         // guarded by mu: soft reservations by expiry
	tomb     map[string]tombstone
	tombQ    []string // guarded by mu: ring of tomb keys, oldest at tombHead
	tombHead int      // guarded by mu
}

// New returns an empty ledger. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Ledger, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ledger config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := int64(cfg.Horizon / cfg.SlotWidth)
	if cfg.Horizon%cfg.SlotWidth != 0 {
		n++
	}
	slots := 1 << bits.Len64(uint64(n-1))
	l := &Ledger{
		log:     log,
		cfg:     cfg,
		capq:    supply(cfg.Capacity),
		width:   int64(cfg.SlotWidth),
		notify:  make(chan struct{}, 1),
		cal:     newCalendar(int64(cfg.SlotWidth), slots),
		res:     make(map[string]*res),
		tomb:    make(map[string]tombstone),
		nextEnd: math.MaxInt64,
	}
	if !cfg.Start.IsZero() {
		// The slices are new, hence zero: only the origin moves. (Clearing
		// them again was a sixth of the scheduler plugin's Reserve, which
		// makes a node's ledger when its first curve arrives.)
		l.cal.origin = l.cal.slotOf(cfg.Start.UnixNano())
		l.started = true
	}
	return l, nil
}

// Capacity returns the configured capacity.
func (l *Ledger) Capacity() resource.Vector { return l.cfg.Capacity }

// Config returns the configuration with defaults filled in.
func (l *Ledger) Config() Config { return l.cfg }

// Generation increases whenever capacity may have returned to the pool
// (release, expiry, resize, commit, lowered limits). The scheduler
// re-evaluates its queue when it changes.
func (l *Ledger) Generation() uint64 { return l.gen.Load() }

// Notify returns a channel that receives (without blocking the ledger, at
// most one pending value) whenever Generation increases.
func (l *Ledger) Notify() <-chan struct{} { return l.notify }

func (l *Ledger) reclaimed() {
	l.gen.Add(1)
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// HardLimits sizes hard limits for a task that has run for elapsed, from
// its curve: PHi over the next window plus the configured headroom (see
// Curve.Hard).
func (l *Ledger) HardLimits(c Curve, elapsed, window time.Duration) task.Limits {
	return task.LimitsOf(c.Hard(elapsed, window, l.cfg.Headroom))
}

// prepare sizes c at the soft quantile.
func (l *Ledger) prepare(c Curve) (shape, error) { return prepare(c, l.cfg.SoftQuantile) }

func prepare(c Curve, q float64) (shape, error) {
	if err := c.Validate(); err != nil {
		return shape{}, fmt.Errorf("invalid curve: %w", err)
	}
	sh := shape{
		offs:  make([]int64, len(c.Steps)),
		durs:  make([]int64, len(c.Steps)),
		sized: make([]qvec, len(c.Steps)),
	}
	hq := c.hiQ()
	for i, s := range c.Steps {
		sh.offs[i] = sh.total
		sh.durs[i] = int64(s.Dur)
		sh.total += int64(s.Dur)
		sh.sized[i] = demand(s.At(q, hq))
		sh.peak = sh.peak.max(sh.sized[i])
		if i == 0 {
			sh.least = sh.sized[i]
		}
		sh.least = sh.least.min(sh.sized[i])
	}
	return sh, nil
}

// Shape is a curve validated and sized at a soft quantile once, for
// EarliestFitShape on any number of ledgers of that quantile. Immutable:
// safe to share between goroutines. The scheduler plugin tries one pod's
// curve against hundreds of node calendars per scheduling cycle, and
// sizing it anew for each was a fifth of the cost of its Filter.
type Shape struct {
	sh       shape
	quantile float64
	curve    Curve
}

// NewShape prepares c for ledgers whose Config.SoftQuantile is quantile
// (0: DefaultSoftQuantile).
func NewShape(c Curve, quantile float64) (*Shape, error) {
	if quantile == 0 {
		quantile = DefaultSoftQuantile
	}
	sh, err := prepare(c, quantile)
	if err != nil {
		return nil, err
	}
	return &Shape{sh: sh, quantile: quantile, curve: c}, nil
}

// toNs converts t, with the zero Time meaning "the window's start".
func (l *Ledger) toNs(t time.Time) int64 {
	if t.IsZero() {
		return l.cal.origin * l.width
	}
	return t.UnixNano()
}

// begin sets the window's origin from the first time the ledger sees.
func (l *Ledger) begin(t time.Time) {
	if !l.started && !t.IsZero() {
		l.cal.reset(l.cal.slotOf(t.UnixNano()))
		l.started = true
	}
}

// advance moves the calendar's window to start at now; the past is dropped.
func (l *Ledger) advance(now time.Time) {
	l.begin(now)
	if now.IsZero() {
		return
	}
	if l.cal.advance(l.cal.slotOf(now.UnixNano())) {
		for _, r := range l.res {
			switch {
			case r.kind == Soft:
				l.place(r.start, &r.sh, 1)
			case r.planned:
				l.place(r.pstart, &r.placed, 1)
			}
		}
	}
	if ns := now.UnixNano(); ns >= l.nextEnd {
		l.nextEnd = math.MaxInt64
		for _, r := range l.res {
			if !r.planned {
				continue
			}
			if end := r.pstart + r.placed.total; end <= ns {
				// Running past its predicted end: no plan says when it
				// will let go, so it is held flat until released.
				l.unplan(r)
			} else {
				l.nextEnd = min(l.nextEnd, end)
			}
		}
	}
}

// unplan takes hard allocation r's plan out of the calendar: it is held
// flat again.
func (l *Ledger) unplan(r *res) {
	if !r.planned {
		return
	}
	l.place(r.pstart, &r.placed, -1)
	r.planned, r.plan, r.placed = false, shape{}, shape{}
	l.flat = l.flat.add(r.hard)
}

// replace (re)places hard allocation r's plan from now: the rest of the
// plan, its first slot raised to r's limits, cut at the calendar's end.
func (l *Ledger) replace(r *res, now int64) {
	if r.planned {
		l.place(r.pstart, &r.placed, -1)
	}
	r.placed, r.pstart = l.rest(&r.plan, r.pbase, now, r.hard), now
	l.place(r.pstart, &r.placed, 1)
	l.nextEnd = min(l.nextEnd, r.pstart+r.placed.total)
}

// rest is the part of plan (offset 0 at base) from now on, as a shape
// starting at now, with what lies within one slot width of now raised to
// q (the limits held now, which the calendar must cover while they are
// held) and nothing past the calendar's end.
func (l *Ledger) rest(plan *shape, base, now int64, q qvec) shape {
	w := l.width
	limit := l.cal.end()*w - now
	var out shape
	push := func(off, dur int64, v qvec) {
		if dur <= 0 || off >= limit {
			return
		}
		dur = min(dur, limit-off)
		if n := len(out.offs); n > 0 && out.sized[n-1] == v && out.offs[n-1]+out.durs[n-1] == off {
			out.durs[n-1] += dur
		} else {
			out.offs = append(out.offs, off)
			out.durs = append(out.durs, dur)
			out.sized = append(out.sized, v)
		}
		out.total = off + dur
	}
	cover := func(off, dur int64, v qvec) {
		if off < w {
			in := min(dur, w-off)
			push(off, in, v.max(q))
			off, dur = off+in, dur-in
		}
		push(off, dur, v)
	}
	for k := range plan.offs {
		a := base + plan.offs[k]
		b := a + plan.durs[k]
		if b <= now {
			continue
		}
		a = max(a, now)
		cover(a-now, b-a, plan.sized[k])
	}
	if out.total < w {
		push(out.total, w-out.total, q)
	}
	for i, v := range out.sized {
		out.peak = out.peak.max(v)
		if i == 0 {
			out.least = v
		}
		out.least = out.least.min(v)
	}
	return out
}

// place adds (sign 1) or removes (sign -1) shape sh started at start: each
// slot gets the maximum of the steps that touch it, so a slot shared by two
// steps is not counted twice.
func (l *Ledger) place(start int64, sh *shape, sign int64) {
	l.cal.batch()
	defer l.cal.flush()
	w := l.width
	var (
		have     bool
		runFrom  int64
		runTo    int64
		runV     qvec
		flushRun = func() {
			if have {
				v := runV
				if sign < 0 {
					v = v.neg()
				}
				l.cal.add(runFrom, runTo, v)
			}
		}
	)
	for k := range sh.offs {
		a := start + sh.offs[k]
		from, to := floorDiv(a, w), floorDiv(a+sh.durs[k]-1, w)
		v := sh.sized[k]
		if have && runTo == from {
			if runFrom == runTo {
				runV = runV.max(v)
			} else {
				runTo--
				flushRun()
				runFrom, runTo, runV = from, from, runV.max(v)
			}
			if to > from {
				flushRun()
				runFrom, runTo, runV = from+1, to, v
			}
			continue
		}
		flushRun()
		have, runFrom, runTo, runV = true, from, to, v
	}
	flushRun()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// bounds is what is left of the capacity beside the hard allocations,
// and whether every step of sh fits under it at all (if not, the Fit says
// which step and dimension). The per-step checks only find the step to
// name: a peak under the bound needs none of them. Caller holds mu.
func (l *Ledger) bounds(sh *shape) (qvec, Fit, bool) {
	left := l.capq.sub(l.flat)
	if sh.peak.firstOver(l.capq) >= 0 {
		for k := range sh.sized {
			if d := sh.sized[k].firstOver(l.capq); d >= 0 {
				return left, Fit{Reason: ReasonCapacity, Dim: d, Detail: fmt.Sprintf("step %d needs %s %g, capacity is %g",
					k, d, sh.sized[k].vector()[d], l.capq.vector()[d])}, false
			}
		}
	}
	if sh.peak.firstOver(left) >= 0 {
		for k := range sh.sized {
			if d := sh.sized[k].firstOver(left); d >= 0 {
				return left, Fit{Reason: ReasonCommitted, Dim: d, Detail: fmt.Sprintf("step %d needs %s %g, %g left beside committed allocations",
					k, d, sh.sized[k].vector()[d], max(left.vector()[d], 0))}, false
			}
		}
	}
	return left, Fit{}, true
}

// fitsAt answers whether sh fits started at s (ns), without looking for a
// later start: at most a range check or two on the calendar when the
// node is lightly used or plainly full, a check per step only in between.
// A scheduler's filter asks this of every node it tries, where the full
// search's walk over a busy calendar would be spent on nodes it does not
// choose. Caller holds mu.
func (l *Ledger) fitsAt(sh *shape, s int64) Fit {
	left, f, ok := l.bounds(sh)
	if !ok {
		return f
	}
	w := l.width
	s = max(s, l.cal.origin*w)
	end := l.cal.end() * w
	if s+sh.total > end {
		return Fit{Reason: ReasonHorizon, Detail: fmt.Sprintf("curve started at %s ends after the horizon, at %s",
			time.Unix(0, s).UTC().Format(time.RFC3339), time.Unix(0, end).UTC().Format(time.RFC3339))}
	}
	ok1 := Fit{OK: true, Start: time.Unix(0, s), End: time.Unix(0, s+sh.total)}
	first, last := floorDiv(s, w), floorDiv(s+sh.total-1, w)
	// The peak beside the busiest slot of the window, then of the span.
	if l.cal.mx[1].add(sh.peak).firstOver(left) < 0 || l.cal.lastOver(first, last, left.sub(sh.peak)) < 0 {
		return ok1
	}
	// The reason is not formatted: a scheduler's filter meets many such
	// nodes for a pod and keeps none of the details (EarliestFitShape
	// says when it would fit).
	busy := Fit{Reason: ReasonBusy, Detail: "a step collides with what the calendar holds at that time"}
	// A slot over capacity − hard − the smallest step collides with
	// whichever step covers it.
	if l.cal.lastOver(first, last, left.sub(sh.least)) >= 0 {
		return busy
	}
	for k := range sh.sized {
		a := s + sh.offs[k]
		if l.cal.lastOver(floorDiv(a, w), floorDiv(a+sh.durs[k]-1, w), left.sub(sh.sized[k])) >= 0 {
			return busy
		}
	}
	return ok1
}

// search finds the earliest start ≥ from at which sh fits. Caller holds mu.
//
// From a candidate start s it checks each step's slot window against the
// threshold capacity − flat hard allocations − step (planned ones are in
// the calendar); on a conflict in step k at last
// offending slot t, no start before (t+1)·width − off_k can avoid t, so the
// search jumps there. Starts only ever move forward, and the first start
// with no conflict is the earliest.
func (l *Ledger) search(sh *shape, from int64) Fit {
	left, f, ok := l.bounds(sh)
	if !ok {
		return f
	}
	w := l.width
	end := l.cal.end() * w
	if sh.total > end-l.cal.origin*w {
		return Fit{Reason: ReasonHorizon, Detail: fmt.Sprintf("curve lasts %v, longer than the %v horizon",
			time.Duration(sh.total), time.Duration(end-l.cal.origin*w))}
	}
	// Two necessary conditions let the search leap over a busy calendar
	// with firstRun, which walks it free/busy stretch by stretch:
	//  - the most constrained step (largest share of what is left) needs a
	//    run of ⌈dur/width⌉ slots under capacity − hard − that step; under
	//    so tight a threshold most of a busy calendar is pruned in bulk;
	//  - a slot over loose (capacity − hard − the smallest step, per
	//    dimension) is over for every step, so the curve starts a run of
	//    at least ⌈total/width⌉ slots under loose.
	// Only then are the steps checked exactly.
	loose := left.sub(sh.least)
	minSpan := (sh.total + w - 1) / w
	ks, worst := 0, -1.0
	for k, v := range sh.sized {
		for d := range v {
			if left[d] > 0 {
				if f := float64(v[d]) / float64(left[d]); f > worst {
					ks, worst = k, f
				}
			}
		}
	}
	ksThr, ksSpan := left.sub(sh.sized[ks]), (sh.durs[ks]+w-1)/w
	s := max(from, l.cal.origin*w)
	// A curve whose peak fits beside the busiest slot of the whole window
	// fits at once: O(1) for a lightly used node, which is most of the
	// nodes the scheduler plugin tries for a pod.
	if s <= end-sh.total && l.cal.mx[1].add(sh.peak).firstOver(left) < 0 {
		return Fit{OK: true, Start: time.Unix(0, s), End: time.Unix(0, s+sh.total)}
	}
	k0 := 0 // the step that failed last: check it first
	n := len(sh.sized)
	noRoom := func() Fit { // formatted only when needed: most searches succeed
		return Fit{Reason: ReasonHorizon, Detail: fmt.Sprintf("no room before the horizon ends at %s",
			time.Unix(0, end).UTC().Format(time.RFC3339))}
	}
outer:
	for {
		if s > end-sh.total {
			return noRoom()
		}
		a := l.cal.firstRun(floorDiv(s+sh.offs[ks], w), ksSpan, ksThr)
		if a < 0 {
			return noRoom()
		}
		s = max(s, a*w-sh.offs[ks])
		if s > end-sh.total {
			return noRoom()
		}
		if a = l.cal.firstRun(floorDiv(s, w), minSpan, loose); a < 0 {
			return noRoom()
		}
		s = max(s, a*w)
		if s > end-sh.total {
			return noRoom()
		}
		if t := l.cal.lastOver(floorDiv(s, w), floorDiv(s+sh.total-1, w), loose); t >= 0 {
			s = (t + 1) * w
			continue
		}
		for i := range n {
			k := (k0 + i) % n
			a := s + sh.offs[k]
			t := l.cal.lastOver(floorDiv(a, w), floorDiv(a+sh.durs[k]-1, w), left.sub(sh.sized[k]))
			if t >= 0 {
				s = (t+1)*w - sh.offs[k]
				k0 = k
				continue outer
			}
		}
		return Fit{OK: true, Start: time.Unix(0, s), End: time.Unix(0, s+sh.total)}
	}
}

// EarliestFit answers, without reserving anything, when curve c would fit
// beside everything in the calendar, sized as SoftReserve would size it.
func (l *Ledger) EarliestFit(c Curve, earliest time.Time) (Fit, error) {
	sh, err := l.prepare(c)
	if err != nil {
		return Fit{}, err
	}
	return l.earliestFit(&sh, earliest), nil
}

// EarliestFitShape is EarliestFit for a curve prepared once by NewShape. A
// shape sized at another quantile than the ledger's is sized anew.
func (l *Ledger) EarliestFitShape(s *Shape, earliest time.Time) (Fit, error) {
	if s.quantile != l.cfg.SoftQuantile {
		return l.EarliestFit(s.curve, earliest)
	}
	return l.earliestFit(&s.sh, earliest), nil
}

// FitsAtShape answers whether the prepared curve, started at t (zero: the
// window's start), fits beside everything in the calendar, sized as
// SoftReserve would size it, without reserving anything or looking for a
// later start (EarliestFitShape does that). When it does not fit, the Fit
// says why: ReasonBusy when it would collide with what the calendar holds
// (and may fit later). It is the cheap question to ask of many ledgers.
func (l *Ledger) FitsAtShape(s *Shape, t time.Time) (Fit, error) {
	if s.quantile != l.cfg.SoftQuantile {
		return l.FitsAt(s.curve, t)
	}
	return l.fitsAtLocked(&s.sh, t), nil
}

// FitsAt is FitsAtShape for a curve not prepared: it is sized here.
func (l *Ledger) FitsAt(c Curve, t time.Time) (Fit, error) {
	sh, err := l.prepare(c)
	if err != nil {
		return Fit{}, err
	}
	return l.fitsAtLocked(&sh, t), nil
}

func (l *Ledger) fitsAtLocked(sh *shape, t time.Time) Fit {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.begin(t)
	return l.fitsAt(sh, l.toNs(t))
}

func (l *Ledger) earliestFit(sh *shape, earliest time.Time) Fit {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.begin(earliest)
	return l.search(sh, l.toNs(earliest))
}

// SoftReserve places curve c, sized at the soft quantile, at the earliest
// start ≥ earliest (zero: as soon as possible) at which it fits, and holds it
// there until ttl after that start (ttl ≤ 0: Config.DefaultTTL) unless
// committed, resized or released first. When it does not fit, nothing is
// reserved and the Fit says why. An id released before may be reserved
// again (a requeued task). Errors are for an invalid curve or a live id.
func (l *Ledger) SoftReserve(id string, c Curve, earliest time.Time, ttl time.Duration) (Reservation, Fit, error) {
	if id == "" {
		return Reservation{}, Fit{}, errors.New("soft reserve: empty id")
	}
	sh, err := l.prepare(c)
	if err != nil {
		return Reservation{}, Fit{}, fmt.Errorf("soft reserve %q: %w", id, err)
	}
	if ttl <= 0 {
		ttl = l.cfg.DefaultTTL
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.res[id]; ok {
		return Reservation{}, Fit{}, fmt.Errorf("soft reserve %q: %w", id, ErrExists)
	}
	l.begin(earliest)
	en := l.toNs(earliest)
	fit := l.search(&sh, en)
	if !fit.OK {
		return Reservation{}, fit, nil
	}
	r := &res{id: id, kind: Soft, earliest: en, ttl: ttl, sh: sh}
	l.put(r, fit.Start.UnixNano())
	l.res[id] = r // a live reservation shadows an old tombstone of a requeued id
	heap.Push(&l.exp, r)
	return l.view(r), fit, nil
}

// put places r's shape at start and sets its expiry.
func (l *Ledger) put(r *res, start int64) {
	r.start = start
	r.expires = start + int64(r.ttl)
	l.place(start, &r.sh, 1)
}

// Resize replaces a soft reservation's curve (a new prediction) and moves
// it to the earliest start ≥ its original earliest at which the new curve
// fits, renewing its TTL from there. If the new curve does not fit, the
// reservation is left as it was and the Fit says why.
func (l *Ledger) Resize(id string, c Curve) (Reservation, Fit, error) {
	sh, err := l.prepare(c)
	if err != nil {
		return Reservation{}, Fit{}, fmt.Errorf("resize %q: %w", id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.lookup(id)
	if err != nil {
		return Reservation{}, Fit{}, fmt.Errorf("resize: %w", err)
	}
	if r.kind != Soft {
		return l.view(r), Fit{}, fmt.Errorf("resize %q: %w", id, ErrCommitted)
	}
	l.place(r.start, &r.sh, -1)
	fit := l.search(&sh, r.earliest)
	if !fit.OK {
		l.place(r.start, &r.sh, 1)
		return l.view(r), fit, nil
	}
	r.sh = sh
	l.put(r, fit.Start.UnixNano())
	heap.Fix(&l.exp, r.hidx)
	l.reclaimed()
	return l.view(r), fit, nil
}

// lookup finds a live reservation or says why there is none.
func (l *Ledger) lookup(id string) (*res, error) {
	if r, ok := l.res[id]; ok {
		return r, nil
	}
	switch l.tomb[id] {
	case tombReleased:
		return nil, fmt.Errorf("reservation %q: %w", id, ErrReleased)
	case tombExpired:
		return nil, fmt.Errorf("reservation %q: %w (%w)", id, ErrReleased, ErrExpired)
	}
	return nil, fmt.Errorf("reservation %q: %w", id, ErrUnknown)
}

// checkHard reports whether the hard allocations may change by giving up old
// and taking q: every dimension that grows must stay within capacity.
func (l *Ledger) checkHard(id string, old, q qvec) error {
	after := l.hard.sub(old).add(q)
	for d := range q {
		if q[d] > old[d] && after[d] > l.capq[d] {
			return fmt.Errorf("reservation %q: %s %g would bring committed to %g of %g: %w",
				id, resource.Dim(d), q.vector()[d], after.vector()[d], l.capq.vector()[d], ErrOverCapacity)
		}
	}
	return nil
}

// Commit turns soft reservation id into a hard allocation of limits held
// flat from now until Adjust or Release; its soft curve leaves the calendar.
// A zero limit in a dimension means "not limited" to the executor and is
// accounted as zero here. It fails with ErrOverCapacity, changing nothing,
// when the hard allocations would exceed capacity; with ErrReleased (and
// ErrExpired) after release or expiry.
func (l *Ledger) Commit(id string, now time.Time, limits task.Limits) error {
	return l.commit(id, now, limits, nil)
}

// CommitPlan is Commit for a task whose curve is known: rest is its
// predicted curve from now on (offset 0 = now), which the calendar holds,
// sized at the soft quantile like a soft reservation, instead of a flat
// hold until release. So a task whose peak is over leaves room in the
// calendar for one whose peak is to come, and the queue is planned beside
// what running tasks will use rather than beside their peaks.
//
// The limits are what the task holds now: the hard accounting (what
// Commit and Adjust check against capacity) stays exact, and the calendar
// covers at least the limits over the slot in which they were set (Adjust
// moves that cover). A task still running when its plan ends is held
// flat from then on, as Commit would hold it. An empty rest is Commit.
func (l *Ledger) CommitPlan(id string, now time.Time, limits task.Limits, rest Curve) error {
	if len(rest.Steps) == 0 {
		return l.commit(id, now, limits, nil)
	}
	sh, err := l.prepare(rest)
	if err != nil {
		return fmt.Errorf("commit %q: plan: %w", id, err)
	}
	return l.commit(id, now, limits, &sh)
}

// kindAt moves the window to now and returns live reservation id, which
// op needs to be of kind k (ErrCommitted or ErrNotCommitted if not).
// Caller holds mu.
func (l *Ledger) kindAt(op, id string, k Kind, now time.Time) (*res, error) {
	l.advance(now)
	r, err := l.lookup(id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if r.kind != k {
		wrong := ErrNotCommitted
		if k == Soft {
			wrong = ErrCommitted
		}
		return nil, fmt.Errorf("%s %q: %w", op, id, wrong)
	}
	return r, nil
}

func (l *Ledger) commit(id string, now time.Time, limits task.Limits, plan *shape) error {
	if err := limits.Validate(); err != nil {
		return fmt.Errorf("commit %q: %w", id, err)
	}
	q := demand(limits.Vector())
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.kindAt("commit", id, Soft, now)
	if err != nil {
		return err
	}
	if err := l.checkHard(id, qvec{}, q); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	l.place(r.start, &r.sh, -1)
	heap.Remove(&l.exp, r.hidx)
	r.kind, r.start, r.hard, r.limits, r.sh = Hard, l.toNs(now), q, limits, shape{}
	l.hard = l.hard.add(q)
	if plan != nil {
		r.plan, r.pbase = *plan, r.start
		l.replace(r, r.start)
		r.planned = true
	} else {
		l.flat = l.flat.add(q)
	}
	l.reclaimed()
	l.log.Debug("commit", "task", id, "limits", limits.Vector().String(), "planned", plan != nil)
	return nil
}

// Adjust changes hard allocation id's limits from now on. Dimensions that
// grow must fit (else ErrOverCapacity, changing nothing); shrinking always
// succeeds and returns capacity at once.
func (l *Ledger) Adjust(id string, now time.Time, limits task.Limits) error {
	if err := limits.Validate(); err != nil {
		return fmt.Errorf("adjust %q: %w", id, err)
	}
	q := demand(limits.Vector())
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.kindAt("adjust", id, Hard, now)
	if err != nil {
		return err
	}
	if err := l.checkHard(id, r.hard, q); err != nil {
		return fmt.Errorf("adjust: %w", err)
	}
	shrunk := r.hard.firstOver(q) >= 0
	l.hard = l.hard.sub(r.hard).add(q)
	if !r.planned {
		l.flat = l.flat.sub(r.hard).add(q)
	}
	r.hard, r.limits = q, limits
	if r.planned {
		l.replace(r, l.toNs(now))
	}
	if shrunk {
		l.reclaimed()
	}
	l.log.Debug("adjust", "task", id, "limits", limits.Vector().String())
	return nil
}

// Replan replaces the plan of hard allocation id (committed by CommitPlan)
// from now on with rest, offset 0 at now: what the task is now predicted
// to use for the rest of its run. As with Adjust, the slot at now still
// holds its limits. The scheduler lowers a running task's current curve
// step by the work it has already done there: a step is a mean over its
// length, and a burst that is over leaves the rest of it free. A lower
// plan returns capacity at once (Notify). ErrNotCommitted for a soft
// reservation, ErrUnplanned for an allocation held flat.
func (l *Ledger) Replan(id string, now time.Time, rest Curve) error {
	sh, err := l.prepare(rest)
	if err != nil {
		return fmt.Errorf("replan %q: %w", id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.kindAt("replan", id, Hard, now)
	if err != nil {
		return err
	}
	if !r.planned {
		return fmt.Errorf("replan %q: %w", id, ErrUnplanned)
	}
	n := l.toNs(now)
	r.plan, r.pbase = sh, n
	l.replace(r, n)
	l.reclaimed()
	l.log.Debug("replan", "task", id, "total", rest.Total())
	return nil
}

// Release gives back whatever id holds, soft or hard, at once. It is
// idempotent and safe for an id never reserved; it reports whether it
// released anything.
func (l *Ledger) Release(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.res[id]
	if !ok {
		return false
	}
	l.drop(r, tombReleased)
	l.reclaimed()
	l.log.Debug("release", "task", id, "kind", r.kind.String())
	return true
}

// drop removes live reservation r and leaves a tombstone.
func (l *Ledger) drop(r *res, why tombstone) {
	switch r.kind {
	case Soft:
		l.place(r.start, &r.sh, -1)
		if r.hidx >= 0 {
			heap.Remove(&l.exp, r.hidx)
		}
	case Hard:
		l.unplan(r)
		l.hard = l.hard.sub(r.hard)
		l.flat = l.flat.sub(r.hard)
	}
	delete(l.res, r.id)
	l.bury(r.id, why)
}

func (l *Ledger) bury(id string, why tombstone) {
	if l.cfg.Tombstones == 0 {
		return
	}
	if _, ok := l.tomb[id]; !ok {
		if len(l.tombQ) < l.cfg.Tombstones {
			l.tombQ = append(l.tombQ, id)
		} else {
			old := l.tombQ[l.tombHead]
			if _, live := l.res[old]; !live {
				delete(l.tomb, old)
			}
			l.tombQ[l.tombHead] = id
			l.tombHead = (l.tombHead + 1) % len(l.tombQ)
		}
	}
	l.tomb[id] = why
}

// Restore records a hard allocation that survived a daemon restart: limits
// held since start. It is not checked against capacity — the task is
// running whatever the ledger thinks — so a Snapshot may show Free below
// zero until something is released. It fails only for an invalid
// argument or a live id.
func (l *Ledger) Restore(id string, start time.Time, limits task.Limits) error {
	if id == "" {
		return errors.New("restore: empty id")
	}
	if err := limits.Validate(); err != nil {
		return fmt.Errorf("restore %q: %w", id, err)
	}
	q := demand(limits.Vector())
	l.mu.Lock()
	defer l.mu.Unlock()
	l.begin(start)
	if _, ok := l.res[id]; ok {
		return fmt.Errorf("restore %q: %w", id, ErrExists)
	}
	r := &res{id: id, kind: Hard, start: l.toNs(start), earliest: l.toNs(start), hidx: -1, hard: q, limits: limits}
	l.res[id] = r
	l.hard = l.hard.add(q)
	l.flat = l.flat.add(q)
	return nil
}

// Expire releases the soft reservations whose TTL has run out by now and
// returns them (as they were), earliest expiry first.
func (l *Ledger) Expire(now time.Time) []Reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(now)
	nowNs := l.toNs(now)
	var out []Reservation
	for len(l.exp) > 0 && l.exp[0].expires <= nowNs {
		r := l.exp[0]
		out = append(out, l.view(r))
		l.drop(r, tombExpired)
		l.log.Debug("expire", "task", r.id)
	}
	if len(out) > 0 {
		l.reclaimed()
	}
	return out
}

// Get returns reservation id.
func (l *Ledger) Get(id string) (Reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.lookup(id)
	if err != nil {
		return Reservation{}, err
	}
	return l.view(r), nil
}

// Free returns what is planned for nobody at instant at: capacity − the
// hard allocations held flat − the calendar in at's slot (soft
// reservations and the plans of running tasks, which cover their limits
// in the slot they were set in). Instants before the calendar's window
// count as its first slot; beyond the horizon only flat allocations
// count. Negative when overbooked.
func (l *Ledger) Free(at time.Time) resource.Vector {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.capq.sub(l.flat).sub(l.softAt(at)).vector()
}

func (l *Ledger) softAt(at time.Time) qvec {
	s := max(l.cal.slotOf(l.toNs(at)), l.cal.origin)
	return l.cal.at(s)
}

// Snapshot moves the calendar to now and reports it.
func (l *Ledger) Snapshot(now time.Time) Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(now)
	soft := l.softAt(now)
	// The calendar holds the plans of running tasks too: what is soft is
	// the rest.
	slot := max(l.cal.slotOf(l.toNs(now)), l.cal.origin)
	for _, r := range l.res {
		if r.planned {
			soft = soft.sub(r.placed.in(r.pstart, slot, l.width))
		}
	}
	s := Snapshot{
		At:         now,
		Capacity:   l.cfg.Capacity,
		Committed:  l.hard.vector(),
		SoftNow:    soft.vector(),
		SoftPeak:   l.cal.peak().vector(),
		Free:       l.capq.sub(l.hard).sub(soft).vector(),
		HorizonEnd: time.Unix(0, l.cal.end()*l.width),
		Generation: l.gen.Load(),
	}
	for _, r := range l.res {
		if r.kind == Soft {
			s.Soft++
		} else {
			s.Hard++
		}
	}
	return s
}

func (l *Ledger) view(r *res) Reservation {
	v := Reservation{ID: r.id, Kind: r.kind, Earliest: time.Unix(0, r.earliest), Start: time.Unix(0, r.start), Limits: r.limits}
	if r.kind == Soft {
		v.End = time.Unix(0, r.start+r.sh.total)
		v.Expires = time.Unix(0, r.expires)
		v.Peak = r.sh.peak.vector()
	} else {
		v.Peak = r.hard.vector()
	}
	return v
}

// expHeap orders soft reservations by expiry (then id, for determinism).
type expHeap []*res

func (h expHeap) Len() int { return len(h) }
func (h expHeap) Less(i, j int) bool {
	if h[i].expires != h[j].expires {
		return h[i].expires < h[j].expires
	}
	return h[i].id < h[j].id
}
func (h expHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *expHeap) Push(x any) {
	r := x.(*res)
	r.hidx = len(*h)
	*h = append(*h, r)
}
func (h *expHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	r.hidx = -1
	return r
}
