package core

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// The adapter for internal/ledger: one node's calendar of the predicted
// curves of the pods on it, for the scheduler plugin. The ledger counts CPU
// in cores and memory in MiB; this file speaks cores and bytes.
//
// A pod with a prediction holds its curve, anchored at its start, as a
// ledger soft reservation for its whole predicted life: two pods whose
// peaks do not overlap fit beside each other. A pod without one holds its
// requests flat and open-ended, as a ledger hard allocation. The ledger of
// a node is made when the first curve arrives and dropped when the last one
// leaves (its calendar costs ~160 KB at the defaults; a node holding only
// flat pods needs none).

// Errors of the calendar.
var (
	// ErrReserved: the pod already holds a reservation on this node.
	ErrReserved = errors.New("core: pod already reserved")
	// ErrNotReserved: the pod holds nothing on this node.
	ErrNotReserved = errors.New("core: pod not reserved")
	// ErrBadCurve: a curve that cannot be planned (no steps, bad step,
	// negative or non-finite amounts).
	ErrBadCurve = errors.New("core: invalid curve")
)

// Defaults of CalendarConfig.
const (
	DefaultSlot    = 10 * time.Second
	DefaultHorizon = 2 * time.Hour
)

// Usage is an amount of CPU (cores) and memory (bytes).
type Usage struct {
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
}

// Add returns u + v.
func (u Usage) Add(v Usage) Usage { return Usage{u.CPU + v.CPU, u.Memory + v.Memory} }

// Sub returns u - v.
func (u Usage) Sub(v Usage) Usage { return Usage{u.CPU - v.CPU, u.Memory - v.Memory} }

// Max returns the per-dimension maximum of u and v.
func (u Usage) Max(v Usage) Usage { return Usage{max(u.CPU, v.CPU), max(u.Memory, v.Memory)} }

// LessEq reports whether u ≤ v in both dimensions.
func (u Usage) LessEq(v Usage) bool { return u.CPU <= v.CPU && u.Memory <= v.Memory }

func (u Usage) String() string {
	return fmt.Sprintf("cpu %.3f cores, memory %.1f MiB", u.CPU, u.Memory/bytesPerMiB)
}

func (u Usage) vector() resource.Vector {
	return resource.Vector{resource.CPU: u.CPU, resource.Memory: u.Memory / bytesPerMiB}
}

func usageOf(v resource.Vector) Usage {
	return Usage{CPU: v[resource.CPU], Memory: v[resource.Memory] * bytesPerMiB}
}

func limitsOf(u Usage) task.Limits { return task.LimitsOf(u.vector()) }

// PodCurve is a pod's predicted use, per container, step i covering
// [i·Step, (i+1)·Step) since the pod's start.
type PodCurve struct {
	Step       time.Duration
	Containers []ContainerCurve
}

// ContainerCurve is one container's predicted use: Hold is what a calendar
// reserves (the scheduler plugin puts the median CPU and the upper memory
// there: CPU is compressible, memory is not), Upper the upper quantile of
// both. A container's curve ends when it is predicted to end.
type ContainerCurve struct {
	Name        string
	Hold, Upper []Usage
}

// CalendarConfig configures the calendars of one scheduler. The zero value
// of each field means its default.
type CalendarConfig struct {
	// Slot is the calendar's time resolution: two peaks share a node only
	// when a slot boundary lies between them. Default DefaultSlot.
	Slot time.Duration
	// Horizon is how far ahead a calendar looks (rounded up to a power of
	// two of slots); a longer curve is cut there, its tail held flat at
	// its peak. Default DefaultHorizon.
	Horizon time.Duration
	// StartSlack is how much later than planned a pod may start (sandbox,
	// image, init containers): its curve is widened by it so that a late
	// start still lies inside what was reserved. Default one slot;
	// negative: none.
	StartSlack time.Duration
	// Log receives the calendars' debug messages; nil discards.
	Log *slog.Logger
}

func (c *CalendarConfig) validate() error {
	if c.Slot == 0 {
		c.Slot = DefaultSlot
	}
	if c.Horizon == 0 {
		c.Horizon = DefaultHorizon
	}
	switch {
	case c.StartSlack == 0:
		c.StartSlack = c.Slot
	case c.StartSlack < 0:
		c.StartSlack = 0
	}
	switch {
	case c.Slot < time.Millisecond:
		return fmt.Errorf("calendar slot %v is below 1ms", c.Slot)
	case c.Horizon < 4*c.Slot || c.Horizon/c.Slot > 1<<16:
		return fmt.Errorf("calendar horizon %v must hold 4 to 65536 slots of %v", c.Horizon, c.Slot)
	case c.StartSlack > c.Horizon/2:
		return fmt.Errorf("start slack %v is over half the horizon", c.StartSlack)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// span is the longest curve a calendar holds: two slots short of the
// horizon, so that a curve starting anywhere in the window's first slot
// still ends inside it.
func (c *CalendarConfig) span() time.Duration { return c.Horizon - 2*c.Slot }

// Plan is a PodCurve prepared for the calendars of one CalendarConfig:
// widened by the start slack, in slot-wide steps, cut at the horizon. It
// is immutable and shared by the calendars of every node the pod is
// checked against.
type Plan struct {
	slot       time.Duration
	curve      ledger.Curve // slot-wide steps; P50 = hold, PHi = upper: the sum of the containers'
	containers []ContainerSteps
	peak       Usage // hold, max over steps
	last       Usage // upper of the last step: held flat if the pod outlives the curve
	flat       bool  // no prediction: the requests, held open-ended once committed
	// Made by seal, once per plan, because a plan is tried against the
	// calendars of hundreds of nodes per scheduling cycle:
	shape          *ledger.Shape // curve sized for the calendars' ledgers; nil: size it per call
	peakCPU, peakM time.Duration // PeakTimes
}

// seal computes what every calendar would otherwise compute anew from the
// finished plan, and returns it.
func (p *Plan) seal() *Plan {
	p.shape, _ = ledger.NewShape(p.curve, ledger.DefaultSoftQuantile) // the curve is valid; nil only falls back
	var off time.Duration
	var bc, bm float64 = -1, -1
	for _, s := range p.curve.Steps {
		if v := s.P50[resource.CPU]; v > bc {
			bc, p.peakCPU = v, off
		}
		if v := s.P50[resource.Memory]; v > bm {
			bm, p.peakM = v, off
		}
		off += s.Dur
	}
	return p
}

// Total is the plan's length.
func (p *Plan) Total() time.Duration { return p.curve.Total() }

// Peak is the largest amount the plan holds, per dimension.
func (p *Plan) Peak() Usage { return p.peak }

// Flat reports whether the plan is a pod's requests (no prediction).
func (p *Plan) Flat() bool { return p.flat }

// Steps returns the slot width and the amount held in each slot-wide step.
func (p *Plan) Steps() (time.Duration, []Usage) {
	out := make([]Usage, len(p.curve.Steps))
	for i, s := range p.curve.Steps {
		out[i] = usageOf(s.P50)
	}
	return p.slot, out
}

// ContainerSteps is one container's share of a plan: what it holds in
// each slot-wide step (shorter than the plan when it ends earlier).
type ContainerSteps struct {
	Name string
	Hold []Usage
}

// Containers returns the containers' shares of the plan (nil for a flat
// plan). The slices are the plan's own: do not modify them.
func (p *Plan) Containers() []ContainerSteps { return p.containers }

// PeakTimes returns the offsets from the start at which the plan holds
// most CPU and most memory (the first such step of each).
func (p *Plan) PeakTimes() (cpu, mem time.Duration) { return p.peakCPU, p.peakM }

// NewPlan prepares c for the calendars of cfg (defaults filled in): each
// container's curve widened by the start slack (at calendar time t a pod
// that started d ≤ slack late uses what its curve says at t-d, so each
// instant holds the max over the preceding slack), coarsened to slots
// (each slot takes the max of the steps it overlaps) and cut at the span
// (the tail folds into the last slot); the pod's curve is their sum.
func (cfg CalendarConfig) NewPlan(c PodCurve) (*Plan, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if c.Step <= 0 || len(c.Containers) == 0 {
		return nil, fmt.Errorf("%d containers, step %v: %w", len(c.Containers), c.Step, ErrBadCurve)
	}
	maxSteps := int(cfg.span() / cfg.Slot)
	p := &Plan{slot: cfg.Slot}
	var hold, upper []Usage // the pod's, per slot
	for _, cc := range c.Containers {
		n := len(cc.Hold)
		if n == 0 || len(cc.Upper) != n {
			return nil, fmt.Errorf("container %s: %d hold and %d upper steps: %w", cc.Name, n, len(cc.Upper), ErrBadCurve)
		}
		for i := range n {
			if !validUsage(cc.Hold[i]) || !validUsage(cc.Upper[i]) {
				return nil, fmt.Errorf("container %s step %d: %v / %v: %w", cc.Name, i, cc.Hold[i], cc.Upper[i], ErrBadCurve)
			}
		}
		h, u := coarsen(cc.Hold, c.Step, cfg.StartSlack, cfg.Slot, maxSteps), coarsen(cc.Upper, c.Step, cfg.StartSlack, cfg.Slot, maxSteps)
		for len(hold) < len(h) {
			hold, upper = append(hold, Usage{}), append(upper, Usage{})
		}
		for k := range h {
			hold[k] = hold[k].Add(h[k])
			upper[k] = upper[k].Add(u[k].Max(h[k]))
		}
		p.containers = append(p.containers, ContainerSteps{Name: cc.Name, Hold: h})
	}
	p.curve.Steps = make([]ledger.Step, len(hold))
	for k := range hold {
		p.curve.Steps[k] = ledger.Step{Dur: cfg.Slot, P50: hold[k].vector(), PHi: upper[k].vector()}
		p.peak = p.peak.Max(hold[k])
	}
	p.last = upper[len(upper)-1]
	if err := p.curve.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCurve, err)
	}
	return p.seal(), nil
}

// coarsen widens vs (steps of step) by slack and takes the max over each
// slot, cutting at maxSlots (the tail folds into the last slot).
func coarsen(vs []Usage, step, slack, slot time.Duration, maxSlots int) []Usage {
	n := len(vs)
	ks := int(math.Ceil(float64(slack) / float64(step)))
	total := time.Duration(n+ks) * step
	slots := min(int(math.Ceil(float64(total)/float64(slot))), maxSlots)
	out := make([]Usage, slots)
	for i := range n + ks {
		var u Usage // vs widened: max over [i-ks, i]
		for j := max(0, i-ks); j <= min(i, n-1); j++ {
			u = u.Max(vs[j])
		}
		// Step i covers [i·step, (i+1)·step): every slot it touches.
		from := int(time.Duration(i) * step / slot)
		to := int((time.Duration(i+1)*step - 1) / slot)
		for k := from; k <= to; k++ {
			out[min(k, slots-1)] = out[min(k, slots-1)].Max(u)
		}
	}
	return out
}

// FlatPlan is the plan of a pod without a prediction: its requests, for as
// long as a calendar looks ahead; committed, they are held open-ended.
func (cfg CalendarConfig) FlatPlan(requests Usage) (*Plan, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !validUsage(requests) {
		return nil, fmt.Errorf("requests %v: %w", requests, ErrBadCurve)
	}
	v := requests.vector()
	p := &Plan{slot: cfg.Slot, curve: ledger.Flat(cfg.span()-cfg.Slot, v, v), peak: requests, last: requests, flat: true}
	return p.seal(), nil
}

// Since returns what is left of p after elapsed (the slot holding elapsed
// kept whole), or nil when nothing is.
func (p *Plan) Since(elapsed time.Duration) *Plan {
	if elapsed <= 0 || p.flat {
		return p
	}
	k := int(elapsed / p.slot)
	if k >= len(p.curve.Steps) {
		return nil
	}
	q := &Plan{slot: p.slot, curve: ledger.Curve{Steps: p.curve.Steps[k:]}, last: p.last}
	for _, c := range p.containers {
		q.containers = append(q.containers, ContainerSteps{Name: c.Name, Hold: c.Hold[min(k, len(c.Hold)):]})
	}
	for _, s := range q.curve.Steps {
		q.peak = q.peak.Max(usageOf(s.P50))
	}
	return q.seal()
}

func validUsage(u Usage) bool {
	ok := func(x float64) bool { return x >= 0 && x < 1e15 && !math.IsInf(x, 0) }
	return ok(u.CPU) && ok(u.Memory)
}

// Fit says whether a plan fits a node now.
type Fit struct {
	OK bool
	// Collides: the plan does not fit now only because its curve
	// collides with the node's; it may fit later (EarliestFit says when).
	Collides bool
	// Reason says why not: the dimension, when and by how much.
	Reason string
}

// HoldKind is what a pod holds on a node.
type HoldKind string

// The kinds of hold.
const (
	HoldCurve HoldKind = "curve" // its predicted curve (ledger soft reservation)
	HoldFlat  HoldKind = "flat"  // its requests, open-ended (ledger hard allocation)
)

// Hold is one pod's hold on a node's calendar.
type Hold struct {
	ID        string    `json:"id"`
	Kind      HoldKind  `json:"kind"`
	Committed bool      `json:"committed"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end,omitzero"` // curves: start + the plan's total
	Peak      Usage     `json:"peak"`
}

type hold struct {
	Hold
	plan *Plan // curves and uncommitted flat plans
}

// Calendar is one node's calendar. Safe for concurrent use: one mutex
// guards all of its state. It never reads the clock: every time is passed
// in.
type Calendar struct {
	cfg CalendarConfig

	mu       sync.Mutex
	capacity Usage            // guarded by mu
	led      *ledger.Ledger   // guarded by mu; nil while nothing soft is held
	holds    map[string]*hold // guarded by mu
	hard     Usage            // guarded by mu: sum of the flat committed holds
	soft     int              // guarded by mu: holds that are soft in the ledger
	advanced time.Time        // guarded by mu: when the ledger last moved its window
}

// NewCalendar returns an empty calendar for a node whose pods may use
// capacity in total.
func (cfg CalendarConfig) NewCalendar(capacity Usage) (*Calendar, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !validUsage(capacity) {
		return nil, fmt.Errorf("capacity %v: %w", capacity, ErrBadCurve)
	}
	return &Calendar{cfg: cfg, capacity: capacity, holds: make(map[string]*hold)}, nil
}

// Capacity returns the node's capacity.
func (c *Calendar) Capacity() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.capacity
}

// ensure makes the ledger, restoring the flat holds into it. Caller holds mu.
func (c *Calendar) ensure(now time.Time) error {
	if c.led != nil {
		return nil
	}
	capv := c.capacity.vector()
	// The ledger refuses a zero capacity; a node with none fits nothing.
	capv[resource.CPU] = max(capv[resource.CPU], 1e-3)
	capv[resource.Memory] = max(capv[resource.Memory], 1e-3)
	led, err := ledger.New(ledger.Config{
		Capacity: capv, SlotWidth: c.cfg.Slot, Horizon: c.cfg.Horizon,
		Tombstones: 64, Start: now,
	}, nil)
	if err != nil {
		return fmt.Errorf("node calendar: %w", err)
	}
	for id, h := range c.holds {
		if h.Kind == HoldFlat && h.Committed {
			if err := led.Restore(id, h.Start, limitsOf(h.Peak)); err != nil {
				return fmt.Errorf("node calendar: %w", err)
			}
		}
	}
	c.led, c.advanced = led, now
	return nil
}

// drop forgets the ledger when it holds nothing soft. Caller holds mu.
func (c *Calendar) drop() {
	if c.soft == 0 {
		c.led = nil
	}
}

// advance moves the ledger's window to now once a slot has passed and
// turns curves that ran out into flat holds. Caller holds mu.
func (c *Calendar) advance(now time.Time) {
	if c.led == nil || now.Sub(c.advanced) < c.cfg.Slot {
		return
	}
	c.advanced = now
	for _, r := range c.led.Expire(now) {
		h := c.holds[r.ID]
		if h == nil {
			continue
		}
		c.soft--
		if !h.Committed {
			// Never bound (an Unreserve that did not come): gone.
			delete(c.holds, r.ID)
			c.cfg.Log.Debug("uncommitted reservation lapsed", "pod", r.ID)
			continue
		}
		// The pod outlived its curve: it holds its last upper, flat.
		h.Kind, h.End, h.Peak, h.plan = HoldFlat, time.Time{}, h.plan.last, nil
		c.hard = c.hard.Add(h.Peak)
		if err := c.led.Restore(r.ID, now, limitsOf(h.Peak)); err != nil {
			c.cfg.Log.Warn("curve ran out: cannot hold it flat", "pod", r.ID, "err", err)
		}
		c.cfg.Log.Debug("curve ran out: held flat", "pod", r.ID, "usage", h.Peak.String())
	}
	c.drop()
}

// Fits reports whether p, started now, fits beside everything the node
// holds at every instant of its curve. It does not search for a later
// start (EarliestFit does): a scheduler asks this of every node it tries.
func (c *Calendar) Fits(p *Plan, now time.Time) Fit {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(now)
	return c.fits(p, now)
}

func (c *Calendar) fits(p *Plan, now time.Time) Fit {
	if c.led == nil {
		free := c.capacity.Sub(c.hard)
		if p.peak.LessEq(free) {
			return Fit{OK: true}
		}
		return Fit{Reason: fmt.Sprintf("needs %v at its peak, %v free beside flat holds", p.peak, free)}
	}
	var f ledger.Fit
	var err error
	if p.shape != nil {
		f, err = c.led.FitsAtShape(p.shape, now)
	} else {
		f, err = c.led.FitsAt(p.curve, now)
	}
	switch {
	case err != nil:
		return Fit{Reason: err.Error()}
	case f.OK:
		return Fit{OK: true}
	case f.Reason == ledger.ReasonBusy:
		return Fit{Collides: true, Reason: CollidesReason}
	}
	return Fit{Reason: f.String()}
}

// CollidesReason is the Reason of a Fit that Collides: one text for every
// such node, so a pod's "0/N nodes are available" event counts them as
// one reason (and none is formatted per node).
const CollidesReason = "its curve collides with the node's now; it may fit later"

// EarliestFit is the earliest start ≥ now at which p fits beside
// everything the node holds, if it fits within the horizon at all.
func (c *Calendar) EarliestFit(p *Plan, now time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(now)
	if c.led == nil {
		return now, p.peak.LessEq(c.capacity.Sub(c.hard))
	}
	var f ledger.Fit
	var err error
	if p.shape != nil {
		f, err = c.led.EarliestFitShape(p.shape, now)
	} else {
		f, err = c.led.EarliestFit(p.curve, now)
	}
	if err != nil || !f.OK {
		return time.Time{}, false
	}
	return f.Start, true
}

// Reserve places p for pod id, started now, as a soft reservation held
// until Commit (or Release). When p does not fit, nothing is held and the
// Fit says why. ErrReserved when id holds something already.
func (c *Calendar) Reserve(id string, p *Plan, now time.Time) (Fit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.holds[id]; ok {
		return Fit{}, fmt.Errorf("reserve %s: %w", id, ErrReserved)
	}
	c.advance(now)
	if f := c.fits(p, now); !f.OK {
		return f, nil
	}
	if err := c.ensure(now); err != nil {
		return Fit{}, err
	}
	// A curve lasts its plan and two slots; a flat plan lasts until
	// committed (or lapses after the span, if Unreserve never comes).
	ttl := p.Total() + 2*c.cfg.Slot
	_, f, err := c.led.SoftReserve(id, p.curve, now, ttl)
	if err != nil {
		c.drop()
		return Fit{}, fmt.Errorf("reserve %s: %w", id, err)
	}
	if !f.OK || !f.Start.Equal(now) {
		c.led.Release(id)
		c.drop()
		return Fit{Reason: f.String()}, nil
	}
	kind := HoldCurve
	if p.flat {
		kind = HoldFlat
	}
	c.holds[id] = &hold{Hold: Hold{ID: id, Kind: kind, Start: now, End: now.Add(p.Total()), Peak: p.peak}, plan: p}
	c.soft++
	return Fit{OK: true}, nil
}

// Commit confirms pod id's reservation (the pod is being bound): a curve
// stays in the calendar for its whole predicted life, after which a pod
// still running holds its last upper flat; a flat plan becomes a hard
// allocation of its requests, open-ended. Committing twice is a no-op.
func (c *Calendar) Commit(id string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.holds[id]
	if !ok {
		return fmt.Errorf("commit %s: %w", id, ErrNotReserved)
	}
	if h.Committed {
		return nil
	}
	if h.Kind == HoldFlat {
		if err := c.led.Commit(id, now, limitsOf(h.Peak)); err != nil {
			return fmt.Errorf("commit %s: %w", id, err)
		}
		h.End, h.plan = time.Time{}, nil
		c.hard = c.hard.Add(h.Peak)
		c.soft--
		c.drop()
	}
	h.Committed = true
	return nil
}

// Adopt records a pod found on the node that this calendar did not place
// (placed before a restart, or by another scheduler). With a plan and its
// start, what is left of the curve is held from now on — in the calendar
// when it fits, flat at its peak when the node is already overbooked;
// without one (p nil) its requests are held flat. Adopting is never
// refused: the pod runs whatever the calendar thinks. ErrReserved when id
// holds something already.
func (c *Calendar) Adopt(id string, p *Plan, start time.Time, requests Usage, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.holds[id]; ok {
		return fmt.Errorf("adopt %s: %w", id, ErrReserved)
	}
	c.advance(now)
	return c.adopt(id, p, start, requests, now, true)
}

// adopt places what is left of p (started at start) at now, or holds
// requests (raised to the curve's rest) flat. Caller holds mu.
func (c *Calendar) adopt(id string, p *Plan, start time.Time, requests Usage, now time.Time, committed bool) error {
	if p != nil && !p.flat {
		rest := p.Since(now.Sub(start))
		if rest == nil {
			requests = requests.Max(p.last)
		} else {
			if c.fits(rest, now).OK {
				if err := c.ensure(now); err != nil {
					return err
				}
				_, f, err := c.led.SoftReserve(id, rest.curve, now, rest.Total()+2*c.cfg.Slot)
				if err == nil && f.OK && f.Start.Equal(now) {
					c.holds[id] = &hold{Hold: Hold{ID: id, Kind: HoldCurve, Committed: committed, Start: now, End: now.Add(rest.Total()), Peak: rest.peak}, plan: rest}
					c.soft++
					return nil
				}
				c.led.Release(id)
				c.drop()
			}
			requests = requests.Max(rest.peak)
		}
	}
	c.holds[id] = &hold{Hold: Hold{ID: id, Kind: HoldFlat, Committed: true, Start: start, Peak: requests}}
	c.hard = c.hard.Add(requests)
	if c.led != nil {
		if err := c.led.Restore(id, now, limitsOf(requests)); err != nil {
			return fmt.Errorf("adopt %s: %w", id, err)
		}
	}
	return nil
}

// Adjust changes what a flat hold holds (the pod was resized); growing is
// never refused (the kubelet admitted it). Curves are left alone: they
// already say how the pod's use moves. ErrNotReserved when id holds
// nothing.
func (c *Calendar) Adjust(id string, requests Usage, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.holds[id]
	if !ok {
		return fmt.Errorf("adjust %s: %w", id, ErrNotReserved)
	}
	if h.Kind != HoldFlat || !h.Committed || h.Peak == requests {
		return nil
	}
	c.hard = c.hard.Sub(h.Peak).Add(requests)
	h.Peak = requests
	if c.led != nil {
		c.led.Release(id)
		if err := c.led.Restore(id, now, limitsOf(requests)); err != nil {
			return fmt.Errorf("adjust %s: %w", id, err)
		}
	}
	return nil
}

// Release gives back whatever pod id holds, at once. Idempotent; it
// reports whether anything was held.
func (c *Calendar) Release(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.holds[id]
	if !ok {
		return false
	}
	delete(c.holds, id)
	if h.Kind == HoldFlat && h.Committed {
		c.hard = c.hard.Sub(h.Peak)
	} else {
		c.soft--
	}
	if c.led != nil {
		c.led.Release(id)
	}
	c.drop()
	return true
}

// Get returns pod id's hold.
func (c *Calendar) Get(id string) (Hold, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.holds[id]
	if !ok {
		return Hold{}, false
	}
	return h.Hold, true
}

// Len is the number of holds.
func (c *Calendar) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.holds)
}

// IDs returns the ids of every hold.
func (c *Calendar) IDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.holds))
	for id := range c.holds {
		ids = append(ids, id)
	}
	return ids
}

// Free returns what is neither held flat nor by a curve at instant at
// (negative when overbooked).
func (c *Calendar) Free(at time.Time) Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.free(at)
}

func (c *Calendar) free(at time.Time) Usage {
	if c.led == nil {
		return c.capacity.Sub(c.hard)
	}
	// The ledger's capacity may have been raised from zero by ensure.
	return usageOf(c.led.Free(at)).Sub(usageOf(c.led.Capacity()).Sub(c.capacity))
}

// Room returns the node's capacity and what is free at a and at b, read
// together (the scheduler plugin's Score asks this of every feasible node).
func (c *Calendar) Room(a, b time.Time) (capacity, freeA, freeB Usage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.capacity, c.free(a), c.free(b)
}

// CalendarView is a calendar's state at one instant, for debugging.
type CalendarView struct {
	Capacity Usage  `json:"capacity"`
	Flat     Usage  `json:"flat"`    // sum of the flat holds
	FreeNow  Usage  `json:"freeNow"` // capacity − flat − curves now
	Holds    []Hold `json:"holds"`
}

// View returns the calendar's state at now.
func (c *Calendar) View(now time.Time) CalendarView {
	c.mu.Lock()
	c.advance(now)
	v := CalendarView{Capacity: c.capacity, Flat: c.hard}
	for _, h := range c.holds {
		v.Holds = append(v.Holds, h.Hold)
	}
	c.mu.Unlock()
	v.FreeNow = c.Free(now)
	return v
}

// SetCapacity changes the node's capacity (its allocatable changed). The
// curves are placed again where they are; one that no longer fits is held
// flat at what is left of its peak.
func (c *Calendar) SetCapacity(capacity Usage, now time.Time) error {
	if !validUsage(capacity) {
		return fmt.Errorf("capacity %v: %w", capacity, ErrBadCurve)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if capacity == c.capacity {
		return nil
	}
	c.capacity = capacity
	if c.led == nil {
		return nil
	}
	holds := c.holds
	c.led, c.holds, c.hard, c.soft = nil, make(map[string]*hold, len(holds)), Usage{}, 0
	for id, h := range holds {
		if h.Kind == HoldFlat && h.Committed {
			c.holds[id] = h
			c.hard = c.hard.Add(h.Peak)
		}
	}
	var errs []error
	for id, h := range holds {
		switch {
		case h.Kind == HoldCurve:
			errs = append(errs, c.adopt(id, h.plan, h.Start, Usage{}, now, h.Committed))
		case !h.Committed: // a flat plan being bound: hold its requests flat
			errs = append(errs, c.adopt(id, nil, h.Start, h.Peak, now, true))
		}
	}
	return errors.Join(errs...)
}
