package sched

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// Observe is the monitor's step for one sample of a running task: it
// compares the task's use with its predicted curve and moves its
// allocation.
//
//   - Memory is a schedule of hard limits. Up, at once: the limit must
//     cover the curve's upper quantile over the next MonitorWindow (so it
//     rises ahead of a predicted rise), the live forecast
//     (Observation.Ahead), the use now and its growth extrapolated
//     LeadTime ahead, each plus the ledger's headroom; use at GuardFrac of
//     the limit raises it whatever the prediction says. Down, at once when
//     the predicted peak is over and measured use agrees (what the limit
//     must still cover is under (1−DownBand) of it); a task without a
//     curve comes down only after DownAfter such samples, by DownStep at
//     most. A limit never goes under what the task uses.
//   - A raise the node cannot grant is first met by taking back the slack
//     other running tasks hold above their use (their limits lowered to
//     use plus headroom, never under it), then granted in part, and if
//     memory is still short a lower-priority task is evicted (Evictor).
//     Measured node memory above PressureFrac of capacity throttles, then
//     evicts, the lowest-priority, youngest task.
//   - CPU is compressible: the task holds its predicted (or, when higher,
//     smoothed measured) use, and its weight follows it; no quota moves.
//
// The cgroup is written, and an Allocation recorded, only when what the
// cgroup has changes. It returns whether it changed. Errors are for an
// unknown or not-running task, or an Executor that refused a change (then
// the accounting is put back as it was).
func (s *Scheduler) Observe(id string, o Observation) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tasks[id]
	if e == nil {
		return false, fmt.Errorf("observe %q: %w", id, ErrUnknown)
	}
	if e.state != Running {
		return false, fmt.Errorf("observe %q: %w", id, ErrNotRunning)
	}
	now := o.At
	s.usedSum = clampZero(s.usedSum.Sub(s.usedOf(e)).Add(o.Used))
	if e.observed && o.At.After(e.prevAt) {
		dt := o.At.Sub(e.prevAt).Seconds()
		// Growth counts once it is sustained (two samples rising in a
		// row), smoothed: one noisy sample must not claim the node.
		if r := (o.Used[resource.Memory] - e.prevMem) / dt; r > 0 && e.rising {
			if e.memRate == 0 {
				e.memRate = r
			}
			e.memRate += 0.5 * (r - e.memRate)
		} else if r <= 0 {
			e.memRate, e.rising = 0, false
		} else {
			e.rising = true
		}
		e.cpuSecs += o.Used[resource.CPU] * dt
		e.predSecs += medianAt(e.curve, o.At.Sub(e.start)) * dt
		// Smoothed over about three samples: enough that one busy
		// sample of a bursty task does not move its weight, short enough
		// that a task whose CPU burst is over gives the CPU back within
		// seconds (at 0.1 a 0.7-core start-up burst still held 0.3 core
		// ten samples later, and the next task waited for it).
		e.cpuAvg += cpuAlpha * (o.Used[resource.CPU] - e.cpuAvg)
	} else {
		e.cpuAvg = o.Used[resource.CPU]
		// The first sample's use stands for the time since the start
		// (stepLeft weighs what the task has done against its curve; a
		// 3 s burst sampled each second would count 2 CPU-seconds).
		if dt := o.At.Sub(e.start).Seconds(); dt > 0 {
			e.cpuSecs += o.Used[resource.CPU] * dt
			e.predSecs += e.curve.Window(0, o.At.Sub(e.start), false)[resource.CPU] * dt
		}
	}
	if o.Used[resource.CPU] < 0.5*medianAt(e.curve, o.At.Sub(e.start)) {
		e.lowRun++
	} else {
		e.lowRun = 0
	}
	e.used, e.observed, e.prevMem, e.prevAt = o.Used, true, o.Used[resource.Memory], o.At
	e.samples++
	if e.evicting || s.cfg.Static {
		return false, nil
	}
	changed, err := s.adjust(e, o, now)
	s.holdCheck(e, o.Used[resource.Memory], now)
	s.replanCPU(e, now)
	s.pressure(now)
	s.contention(now)
	return changed, err
}

// cpuAlpha is the weight of a new sample in a task's smoothed CPU use.
const cpuAlpha = 0.3

// adjust computes and applies e's new allocation.
func (s *Scheduler) adjust(e *entry, o Observation, now time.Time) (bool, error) {
	elapsed := now.Sub(e.start)
	old := e.limits.Vector()
	want := old
	up := false
	heldBefore := e.enf.MemoryHoldMB > 0
	if s.cfg.Enforce[resource.Memory] {
		m := resource.Memory
		use := o.Used[m]
		// While the task follows its curve (it uses no more than the
		// curve's upper quantile over the monitor window), the curve
		// decides: growth it foresees (a runtime starting up, a ramp its
		// history shows) is in that window already. Only a task that
		// leaves its curve (or has none) is sized by the live forecast and
		// by extrapolating its growth. Trusting either over the curve
		// claimed room that a neighbour's predicted peak had been planned
		// into (measured: a task at 41 MB of a predicted 40 raised itself
		// to 311 MB on its start-up growth, and one past its peak kept
		// 600 MB for seconds on a forecast of its own past).
		curveHi := e.curve.Window(elapsed, s.cfg.MonitorWindow, true)[m]
		onCurve := !e.loose && use <= curveHi
		ahead, grow := use, use
		if !onCurve {
			// A live forecast may refine the curve within what the run's
			// history ever reached (or what it uses now), never beyond:
			// an unsure short-horizon model must not claim the whole node.
			ahead = min(o.Ahead[m], max(e.peakHi[m], use))
			// Extrapolated growth, bounded by the larger of the curve's
			// peak and 1.5× use now: one steep sample must not claim the
			// node.
			grow = min(use+e.memRate*s.cfg.LeadTime.Seconds(), max(e.peakHi[m], 1.5*use))
		}
		need := s.memRoom(max(curveHi, use, ahead, grow))
		if use >= s.cfg.GuardFrac*old[m] {
			need = max(need, s.memRoom(use)/s.cfg.GuardFrac)
			// Held at a limit under what its history needs (it grows
			// back sooner than its curve said): all of that, at once.
			need = max(need, e.enf.MemoryHoldMB)
		}
		e.memNeed = need
		switch {
		case need > old[m]*(1+1e-6):
			want[m], up = need, true
			e.downRun[m], e.lastUp = 0, now
		case need < old[m]*(1-s.cfg.DownBand) && !e.loose && now.Sub(e.lastUp) >= s.cfg.MonitorWindow/2:
			// The predicted peak is over and use agrees (and the last
			// raise is not fresh: no see-saw on noisy use).
			want[m] = need
		case need < old[m]*(1-s.cfg.DownBand):
			if e.downRun[m]++; e.downRun[m] >= s.cfg.DownAfter {
				want[m] = max(need, old[m]*(1-s.cfg.DownStep))
				e.downRun[m] = 0
			}
		default:
			e.downRun[m] = 0
		}
	}
	if s.cfg.Enforce[resource.CPU] {
		c := resource.CPU
		cpu := s.cpuNeed(e, now)
		// A weight is relative and coarse: it moves only when what the
		// task uses is off by a factor of two (and a tenth of a core), so
		// bursty use does not rewrite it every sample.
		if d := cpu - old[c]; (cpu > 2*old[c] || cpu < old[c]/2) && (d > 0.1 || d < -0.1) {
			want[c] = cpu
		}
	}
	if want == old {
		return false, nil
	}
	want = s.bound(e, want)
	m := resource.Memory
	want[m] = max(want[m], min(o.Used[m], s.capv[m])) // never under what it uses
	avail := clampZero(s.capv.Sub(s.committed)).Add(old)
	short := false
	if want[m] > old[m] && want[m] > avail[m] {
		// A little over the shortfall: the ledger rounds each limit up
		// to a milli-unit, and a raise that lands exactly on capacity
		// fails there after the slack was taken (measured: every raise
		// of a growing task failed so, and the task was OOM-killed at
		// its old limit while its neighbour took the slack back).
		// A task whose growth reaches its limit within LeadTime needs
		// the memory for what it really holds, not for what a curve says
		// it might: then others keep only what they use (and grow into).
		urgent := o.Used[m]+e.memRate*s.cfg.LeadTime.Seconds() >= old[m]
		avail[m] += s.reclaim(e, want[m]-avail[m]+reclaimPad, urgent, now)
	}
	for d := range want {
		if want[d] > old[d] && want[d] > avail[d] {
			want[d] = max(old[d], avail[d]-0.002)
			if resource.Dim(d) == resource.Memory {
				short = true
			}
		}
	}
	if want == old {
		if short {
			s.makeRoom(e, now)
		}
		return false, nil
	}
	if err := s.apply(e, want, now); err != nil {
		return false, err
	}
	changed := false
	if enf := s.enforced(e); enf != e.enf {
		if s.cfg.Executor != nil {
			if err := s.cfg.Executor.Update(e.t.ID, enf); err != nil {
				if rerr := s.apply(e, old, now); rerr != nil {
					s.cfg.Log.Warn("put back accounting after a refused update", "task", e.t.ID, "err", rerr)
				}
				return false, fmt.Errorf("sched: update limits of %q: %w", e.t.ID, err)
			}
		}
		e.enf, changed = enf, true
	}
	softApplied := false
	// A v2 hold that ended gave memory.high, where the soft limit lives,
	// back to "max": the soft limit is written again.
	resoft := heldBefore && e.enf.MemoryHoldMB == 0
	if soft := e.curve.Window(elapsed, s.cfg.MonitorWindow, false)[m]; soft > 0 && !e.loose && !e.throttled {
		if ns := min(max(soft, e.floorMB), want[m]); ns != e.soft || resoft {
			e.soft = ns
			if sl, ok := s.cfg.Executor.(SoftLimiter); ok {
				softApplied = sl.SetSoftMemory(e.t.ID, e.soft) == nil
			}
		}
	}
	if changed {
		reason := ReasonAdjustDown
		if up || want[resource.CPU] > old[resource.CPU] {
			reason = ReasonAdjustUp
		}
		s.stats.Adjusts++
		s.record(e, now, reason, fmt.Sprintf("at +%v: used %s", elapsed.Round(time.Millisecond), fmtUse(o.Used)), softApplied)
	}
	if short {
		s.makeRoom(e, now)
	}
	return changed, nil
}

// holdCheck lifts e's memory hold once the kernel has held e at its limit
// (its working set at the limit, within heldSlackMB or heldSlackFrac of
// it: a task nearing its limit is raised by adjust, not timed here) for
// MemoryHoldFor without a raise (Config.MemoryHoldFor): the kernel's OOM
// killer then decides.
func (s *Scheduler) holdCheck(e *entry, use float64, now time.Time) {
	if l := e.enf.MemoryMB; e.enf.MemoryHoldMB == 0 || use < l-max(heldSlackMB, heldSlackFrac*l) {
		e.heldSince = time.Time{}
		return
	}
	if e.heldSince.IsZero() {
		e.heldSince = now
		return
	}
	if now.Sub(e.heldSince) >= s.cfg.MemoryHoldFor {
		s.liftHold(e, now, fmt.Sprintf("for %v with no room to raise it", now.Sub(e.heldSince).Round(time.Millisecond)))
	}
}

// A task is held at its limit when its working set is within this of it
// (the kernel reclaims a held cgroup's page cache first).
const (
	heldSlackMB   = 4
	heldSlackFrac = 0.02
)

// pressing reports whether e is held at its memory limit (holdCheck).
func pressing(e *entry) bool { return e.enf.MemoryHoldMB > 0 && !e.heldSince.IsZero() }

// liftHold lifts e's memory hold for the rest of its run; the kernel's OOM
// killer decides what happens at its limit, and an OOM kill is retried
// larger. A refused update leaves the hold on, to be tried again.
func (s *Scheduler) liftHold(e *entry, now time.Time, why string) {
	was := e.enf.MemoryHoldMB
	e.holdOff = true
	enf := s.enforced(e)
	if s.cfg.Executor != nil {
		if err := s.cfg.Executor.Update(e.t.ID, enf); err != nil {
			e.holdOff = false
			s.cfg.Log.Warn("lift memory hold", "task", e.t.ID, "err", err)
			return
		}
	}
	e.enf = enf
	e.heldSince = time.Time{}
	softApplied := false
	if sl, ok := s.cfg.Executor.(SoftLimiter); ok && e.soft > 0 {
		// v2 keeps the soft limit in memory.high, which the hold had.
		softApplied = sl.SetSoftMemory(e.t.ID, e.soft) == nil
	}
	s.record(e, now, ReasonHoldLifted, fmt.Sprintf("held at its %.0f MB limit %s to %.0f MB: the kernel's OOM killer decides",
		e.enf.MemoryMB, why, was), softApplied)
}

// reclaimPad is what reclaim takes over a shortfall, in MB: more than
// the ledger's rounding of two limits (a milli-unit each).
const reclaimPad = 0.01

// apply moves e's ledger allocation to v.
func (s *Scheduler) apply(e *entry, v resource.Vector, now time.Time) error {
	lim := task.LimitsOf(v)
	lim.Pids = e.limits.Pids
	if err := s.led.Adjust(e.t.ID, now, lim); err != nil {
		if errors.Is(err, ledger.ErrOverCapacity) {
			return nil // rounding at the edge: try again next sample
		}
		return fmt.Errorf("sched: %w", err)
	}
	s.committed = clampZero(s.committed.Sub(e.limits.Vector()).Add(v))
	e.limits = lim
	return nil
}

// reclaim takes back up to mb of memory that other running tasks hold
// above what they need, largest slack first, for e, which must grow; it
// returns how much it freed. What a task needs is its use plus headroom
// and its sustained growth LeadTime ahead; unless e is urgent (its own
// growth reaches its limit within LeadTime), also what its curve says it
// will use over the next MonitorWindow and what its last sample called
// for: a task's limit never goes under what it uses, and a prediction
// yields only to memory another task really holds now. A task in its
// first MonitorWindow/2 is left alone: its use is still ramping up.
func (s *Scheduler) reclaim(e *entry, mb float64, urgent bool, now time.Time) float64 {
	m := resource.Memory
	type slack struct {
		x    *entry
		keep float64
	}
	var cands []slack
	for _, x := range s.running {
		if x == e || x.state != Running || x.evicting || !x.observed || now.Sub(x.start) < s.cfg.MonitorWindow/2 {
			continue
		}
		// Its use plus room, and its sustained growth LeadTime ahead: a
		// task that is growing needs what it grows into.
		keep := max(s.memRoom(x.used[m]+x.memRate*s.cfg.LeadTime.Seconds()), s.cfg.MinMemoryMB, x.floorMB)
		if !urgent {
			if !x.loose {
				keep = max(keep, s.memRoom(x.curve.Window(now.Sub(x.start), s.cfg.MonitorWindow, true)[m]))
			}
			// Nor under what its own last sample called for: taking
			// that would only have it take the memory back at its next
			// sample (measured: 13 MB passed back and forth every
			// 200 ms).
			keep = max(keep, x.memNeed)
		}
		if x.limits.MemoryMB-keep > 1 {
			cands = append(cands, slack{x, keep})
		}
	}
	slices.SortFunc(cands, func(a, b slack) int {
		return cmp.Compare(b.x.limits.MemoryMB-b.keep, a.x.limits.MemoryMB-a.keep)
	})
	freed := 0.0
	for _, c := range cands {
		if freed >= mb {
			break
		}
		x := c.x
		old := x.limits.Vector()
		v := old
		v[m] = max(c.keep, old[m]-(mb-freed))
		if !s.lower(x, v, now) {
			continue
		}
		x.soft = min(x.soft, v[m])
		freed += old[m] - v[m]
		s.record(x, now, ReasonReclaim, fmt.Sprintf("%.0f MB of slack above its use (%.0f MB) taken back for %s", old[m]-v[m], x.used[m], e.t.ID), false)
	}
	return freed
}

// lower moves running task x's allocation down to v for a reclaim: in
// the ledger, then in its cgroup; a refused update puts the ledger back.
// It reports whether x now holds v.
func (s *Scheduler) lower(x *entry, v resource.Vector, now time.Time) bool {
	old := x.limits.Vector()
	if err := s.apply(x, v, now); err != nil {
		return false
	}
	if enf := s.enforced(x); enf != x.enf && s.cfg.Executor != nil {
		if err := s.cfg.Executor.Update(x.t.ID, enf); err != nil {
			_ = s.apply(x, old, now)
			return false
		}
		x.enf = enf
	}
	s.stats.Reclaims++
	return true
}

// cpuNeed is the CPU e should hold now. While e follows its curve (its
// last sample used no more than the curve's upper quantile over the next
// MonitorWindow), the curve's predicted use over that window or the last
// sample, whichever is larger: a burst the curve says is over is over (a
// smoothed average lags it by seconds, and the next task waits for a
// core nobody uses). Off its curve, also its smoothed use. Without a
// curve the declared CPU is only a first guess: once the task has shown
// what it uses, its smoothed use is what it holds (CPU is compressible:
// a wrong guess costs a weight, not a kill). A wide task's need is
// squeezed (Config.WideStretch).
func (s *Scheduler) cpuNeed(e *entry, now time.Time) float64 {
	c := resource.CPU
	if e.loose {
		if e.samples < 3 {
			return s.squeeze(max(e.cpuAvg, e.t.Features.Requests[c]))
		}
		return s.squeeze(e.cpuAvg)
	}
	elapsed := now.Sub(e.start)
	ahead := e.curve.Window(elapsed, s.cfg.MonitorWindow, false)[c]
	if cur, end, k := e.stepNeed(elapsed); k >= 0 {
		// The current step by the work left in it; the steps after it
		// within the window as they are.
		ahead = cur
		if w := s.cfg.MonitorWindow - (end - elapsed); w > 0 && k+1 < len(e.curve.Steps) {
			ahead = max(ahead, e.curve.Window(end, w, false)[c])
		}
	}
	cpu := max(ahead, e.used[c])
	if e.used[c] > e.curve.Window(elapsed, s.cfg.MonitorWindow, true)[c] {
		cpu = max(cpu, e.cpuAvg)
	}
	return s.squeeze(cpu)
}

// stepLeft is the CPU a task predicted by c is left to use in the curve
// step k that holds elapsed (ending at offset end), from the CPU-seconds
// it has used (done): what the curve predicts it will have used by the
// step's end, less done, spread over the step's time left, between 0 and
// the step's median. A step is a mean over its length: a memory hold
// whose 3 s start-up burst at one core is over has done its first 10 s
// step's 0.3 core × 10 s, and holds no 0.3 core of the node for the other
// 7 s. A task behind its curve is held at the step's median, not above:
// its measured use speaks for it. k is −1 past the curve's end.
func stepLeft(c ledger.Curve, elapsed time.Duration, done float64) (cpu float64, end time.Duration, k int) {
	pred := 0.0 // CPU-seconds predicted by the end of step k
	for i, st := range c.Steps {
		end += st.Dur
		pred += st.P50[resource.CPU] * st.Dur.Seconds()
		if end > elapsed {
			left := (end - elapsed).Seconds()
			return min(max((pred-done)/left, 0), st.P50[resource.CPU]), end, i
		}
	}
	return 0, end, -1
}

// medianAt is the CPU median of c's step at elapsed (its last step past
// its end).
func medianAt(c ledger.Curve, elapsed time.Duration) float64 {
	return c.Window(elapsed, time.Nanosecond, false)[resource.CPU]
}

// stepNeed is the CPU e needs for the rest of its current curve step
// (see stepLeft), or what it uses now once it has used under half the
// step's median for two samples in a row: its burst is over even if it
// did less work than its history (a memory hold's start-up is as fast as
// the pages it touches, and the history's median may count a slower
// run's).
func (e *entry) stepNeed(elapsed time.Duration) (cpu float64, end time.Duration, k int) {
	cpu, end, k = stepLeft(e.curve, elapsed, e.cpuSecs)
	if k >= 0 && e.lowRun >= 2 {
		cpu = min(cpu, e.used[resource.CPU])
	}
	return cpu, end, k
}

// replanCPU lowers the rest of running task e's current curve step in
// the ledger's calendar to what stepLeft says it needs there, so the
// queue is planned into the room a finished burst leaves (the calendar
// held the step's mean to its end: the next 1-core task was planned after
// a memory hold's 10 s first step, beside an idle core). Only down, by at
// least replanStep, and only for a task that follows its curve.
func (s *Scheduler) replanCPU(e *entry, now time.Time) {
	if e.loose || s.cfg.Static || !s.cfg.Enforce[resource.CPU] {
		return
	}
	c := resource.CPU
	elapsed := now.Sub(e.start)
	cur, end, k := e.stepNeed(elapsed)
	if k < 0 || e.used[c] > cur+replanStep {
		return
	}
	placed := e.curve.Steps[k].P50[c]
	if e.cutStep == k {
		placed = e.cutCPU
	}
	if s.squeeze(cur) > s.squeeze(placed)-replanStep { // what the calendar holds (planSpan)
		return
	}
	st := e.curve.Steps[k]
	if p := st.P50[c]; p > 0 {
		st.PHi[c] *= cur / p
	}
	st.P50[c], st.Dur = cur, end-elapsed
	rest := ledger.Curve{HiQ: e.curve.HiQ, Steps: append([]ledger.Step{st}, e.curve.Steps[k+1:]...)}
	if err := s.led.Replan(e.t.ID, now, s.planSpan(rest)); err != nil {
		s.cfg.Log.Debug("replan", "task", e.t.ID, "err", err)
		return
	}
	e.cutStep, e.cutCPU = k, cur
}

// replanStep is the least CPU (cores) a replan takes back.
const replanStep = 0.05

// cpuInUse is the CPU running tasks use and are predicted to use now:
// the sum of their cpuNeed.
func (s *Scheduler) cpuInUse(now time.Time) float64 {
	sum := 0.0
	for _, x := range s.running {
		if x.state == Running {
			if x.observed {
				sum += s.cpuNeed(x, now)
			} else {
				sum += x.limits.Vector()[resource.CPU] // not sampled yet: what it was given
			}
		}
	}
	return sum
}

// reclaimCPU lowers the CPU that other running tasks hold above their
// need (cpuNeed) by up to cores, largest slack
// first, so that e can start; it returns how much it freed. CPU is
// compressible and what a task holds is its weight, so this takes no CPU
// a task uses: it stops a finished burst from holding the node (a task
// whose curve was 0.3 core for its first 10 s and 0.02 after held 0.3
// until its 2 × hysteresis let it down, and the next 1-core task waited
// 16 s beside an idle core). The weights move at once, not at the next
// sample, because the start needs the room now.
func (s *Scheduler) reclaimCPU(e *entry, cores float64, now time.Time) float64 {
	c := resource.CPU
	type slack struct {
		x    *entry
		keep float64
	}
	var cands []slack
	for _, x := range s.running {
		if x == e || x.state != Running || x.evicting || !x.observed {
			continue
		}
		keep := max(s.cpuNeed(x, now), s.cfg.MinCPU)
		if cp := x.t.Cap.CPUCores; cp > 0 {
			keep = min(keep, cp)
		}
		if x.limits.CPUCores-keep > 0.005 {
			cands = append(cands, slack{x, keep})
		}
	}
	slices.SortFunc(cands, func(a, b slack) int {
		if d := cmp.Compare(b.x.limits.CPUCores-b.keep, a.x.limits.CPUCores-a.keep); d != 0 {
			return d
		}
		return cmp.Compare(a.x.seq, b.x.seq)
	})
	freed := 0.0
	for _, cd := range cands {
		if freed >= cores {
			break
		}
		x := cd.x
		old := x.limits.Vector()
		v := old
		v[c] = max(cd.keep, old[c]-(cores-freed)-reclaimPad)
		if !s.lower(x, v, now) {
			continue
		}
		freed += old[c] - v[c]
		s.record(x, now, ReasonReclaim, fmt.Sprintf("%.2f CPU above its use (%.2f) taken back for %s", old[c]-v[c], x.used[c], e.t.ID), false)
	}
	return freed
}

// contention backs off the CPU capacity admission uses while running
// tasks get less CPU than their curves predict on a busy node, and comes
// back when they do not: an over-packed node stretches every run (and
// costs CPU-seconds in cache and memory-bandwidth contention), which the
// curves, measured on a calmer node, tell apart.
func (s *Scheduler) contention(now time.Time) {
	if !s.compressible() || now.Sub(s.lastCont) < s.cfg.ContentionCheck {
		return
	}
	s.lastCont = now
	n, starved := 0, 0
	c := resource.CPU
	for _, x := range s.running {
		if x.state != Running || x.loose || x.predSecs < 2 {
			continue
		}
		n++
		// Starved: behind its curve's CPU-seconds, and running now under
		// the curve's median but not idle. A task waiting for CPU gets a
		// share of it; one that uses next to nothing is not waiting (a
		// memory hold whose start-up did less work than its history had
		// counted as starved beside two busy tasks, and the back-off kept
		// a core idle for 16 s of the mix).
		// A wide task is short only under its squeezed share: sharing
		// the node, it runs narrower than it can by design.
		p50 := s.squeeze(medianAt(x.curve, now.Sub(x.start)))
		if x.cpuSecs < 0.85*x.predSecs && x.used[c] >= minRunning && x.used[c] < 0.85*p50 {
			starved++
		}
	}
	busy := s.usedSum[c] >= 0.9*s.capv[c]
	switch {
	case n > 0 && busy && float64(starved) > 0.3*float64(n):
		s.backoff = max(s.cfg.MinBackoff, s.backoff-0.05)
	case !busy:
		// Idle CPU is no contention: admission gets the node back at once.
		s.backoff = 1
	case float64(starved) < 0.1*float64(n):
		s.backoff = min(1, s.backoff+0.05)
	}
}

// minRunning is the least CPU (cores) a task waiting for CPU is seen to
// use: under CFS every runnable task gets a share.
const minRunning = 0.1

func fmtUse(v resource.Vector) string {
	return fmt.Sprintf("cpu=%.2f memory=%.0fMB", v[resource.CPU], v[resource.Memory])
}

// makeRoom evicts the lowest-priority, youngest running task whose
// priority is below e's, so that e's memory can grow.
func (s *Scheduler) makeRoom(e *entry, now time.Time) {
	for range len(s.tasks) {
		v := s.victim(e.t.Priority, e, now)
		if v == nil || s.evict(v, now, fmt.Sprintf("to make room for %s", e.t.ID)) {
			return
		}
	}
}

// throttleFrac is the share of its measured memory a throttled task's
// soft limit is pressed to.
const throttleFrac = 0.9

// pressure acts when measured memory use nears capacity, before the kernel
// does: the victim (lowest priority, then youngest) is first throttled and,
// if that is not enough by the next action, evicted. When use has fallen
// well below the threshold, throttled tasks get their soft limits back.
func (s *Scheduler) pressure(now time.Time) {
	used, capMB := s.usedSum[resource.Memory], s.capv[resource.Memory]
	if used <= s.cfg.PressureFrac*capMB {
		if s.throttledN > 0 && used <= (s.cfg.PressureFrac-0.1)*capMB {
			s.unthrottle(now)
		}
		return
	}
	if !s.lastPress.IsZero() && now.Sub(s.lastPress) < s.cfg.PressureCooldown {
		return
	}
	why := fmt.Sprintf("node memory use %.0f of %.0f MB", used, capMB)
	for range len(s.tasks) {
		v := s.victim(int(^uint(0)>>1), nil, now)
		if v == nil {
			return
		}
		if pressing(v) {
			// Held at its limit, it does not grow; evicted, it would
			// start again at the same size to be held again. Its hold
			// decides (holdCheck): raised when room comes within
			// MemoryHoldFor, else OOM-killed and retried larger.
			return
		}
		if sl, ok := s.cfg.Executor.(SoftLimiter); ok && !v.throttled && !v.loose {
			soft := max(throttleFrac*v.used[resource.Memory], s.cfg.MinMemoryMB)
			if err := sl.SetSoftMemory(v.t.ID, soft); err == nil {
				v.throttled, v.soft = true, soft
				s.throttledN++
				s.stats.Throttles++
				s.lastPress = now
				s.record(v, now, ReasonThrottle, why, true)
				return
			}
		}
		if s.evict(v, now, why) {
			return
		}
	}
}

// unthrottle puts every throttled task's soft limit back at its predicted
// p50 (as adjust would set it).
func (s *Scheduler) unthrottle(now time.Time) {
	sl, _ := s.cfg.Executor.(SoftLimiter)
	for _, e := range s.tasks {
		if !e.throttled {
			continue
		}
		e.throttled = false
		s.throttledN--
		if e.state != Running || sl == nil {
			continue
		}
		soft := e.curve.Window(now.Sub(e.start), s.cfg.MonitorWindow, false)[resource.Memory]
		e.soft = min(max(soft, e.floorMB), e.limits.MemoryMB)
		s.record(e, now, ReasonUnthrottle, "memory pressure over", sl.SetSoftMemory(e.t.ID, e.soft) == nil)
	}
}

// victim picks, among running tasks other than not, not already being
// evicted and not refused by the executor within PressureCooldown, with
// priority below below, the lowest priority and then the youngest; nil
// when there is none or when it would be the only task running.
func (s *Scheduler) victim(below int, not *entry, now time.Time) *entry {
	var v *entry
	running := 0
	for _, x := range s.running {
		if x.state != Running {
			continue
		}
		running++
		if x == not || x.evicting || x.t.Priority >= below ||
			!x.evictFailed.IsZero() && now.Sub(x.evictFailed) < s.cfg.PressureCooldown {
			continue
		}
		if v == nil || x.t.Priority < v.t.Priority || x.t.Priority == v.t.Priority && younger(x, v) {
			v = x
		}
	}
	if running < 2 {
		return nil
	}
	return v
}

// younger reports whether x started after y; of two started at the same
// instant, the one queued later (the scheduler's map order must not
// choose).
func younger(x, y *entry) bool {
	if !x.start.Equal(y.start) {
		return x.start.After(y.start)
	}
	return x.seq > y.seq
}

// evict asks the executor to kill v; Finish requeues it. It reports
// whether the executor took the kill. One it refused (a task restored
// after a daemon restart whose process the executor has not found again,
// or one that ended a moment ago) is not picked again for
// PressureCooldown, so the next victim is tried instead of the same one
// at every sample.
func (s *Scheduler) evict(v *entry, now time.Time, why string) bool {
	ev, ok := s.cfg.Executor.(Evictor)
	if !ok {
		return true // nothing can be evicted: do not look for another
	}
	if err := ev.Evict(v.t.ID); err != nil {
		s.cfg.Log.Warn("evict", "task", v.t.ID, "err", err)
		v.evictFailed = now
		return false
	}
	v.evicting = true
	s.lastPress = now
	s.stats.Evicts++
	s.record(v, now, ReasonEvict, why, false)
	return true
}

// memRoom is the memory limit that leaves room for x MB of use: x plus the
// ledger's headroom, and at least MemSlackMB more — room for the page
// cache a task's reads and writes charge to its cgroup, which a limit
// pressed against the working set would force back (dirty pages
// synchronously, stalling the task on writeback).
func (s *Scheduler) memRoom(x float64) float64 {
	if x <= 0 {
		return 0
	}
	return max(x*(1+s.head[resource.Memory]), x+s.cfg.MemSlackMB)
}
