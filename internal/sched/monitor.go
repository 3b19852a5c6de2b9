package sched

import (
	"errors"
	"fmt"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// Observe is the monitor's step for one sample of a running task: it
// compares the task's use with its predicted curve and adjusts its limits.
//
//   - Up, at once: each enforced dimension's limit must cover the curve's
//     upper quantile over the next MonitorWindow, the live forecast
//     (Observation.Ahead) and the use now, each plus the ledger's headroom;
//     memory must also cover its observed growth extrapolated LeadTime
//     ahead, and use at GuardFrac of the limit raises it so that use is
//     back under GuardFrac. So memory goes up before the limit is hit.
//   - Down, slowly: only after DownAfter consecutive samples needing less
//     than (1−DownBand) of the limit, by at most DownStep of it.
//   - A raise the ledger cannot grant in full is granted in part; if memory
//     is still short, a lower-priority running task is evicted to make
//     room (Evictor). Measured node memory above PressureFrac of capacity
//     evicts the lowest-priority, youngest task.
//
// It returns whether the limits changed. Errors are for an unknown or
// not-running task, or an Executor that refused a change (then the
// accounting is put back as it was).
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
	grow := 0.0
	if e.observed && o.At.After(e.prevAt) {
		rate := (o.Used[resource.Memory] - e.prevMem) / o.At.Sub(e.prevAt).Seconds()
		grow = max(rate, 0) * s.cfg.LeadTime.Seconds()
	}
	e.used, e.observed, e.prevMem, e.prevAt = o.Used, true, o.Used[resource.Memory], o.At
	if e.evicting || s.cfg.Static {
		return false, nil
	}
	changed, err := s.adjust(e, o, grow, now)
	s.pressure(now)
	return changed, err
}

// adjust computes and applies e's new limits.
func (s *Scheduler) adjust(e *entry, o Observation, grow float64, now time.Time) (bool, error) {
	elapsed := now.Sub(e.start)
	pred := e.curve.Hard(elapsed, s.cfg.MonitorWindow, s.head)
	old := e.limits.Vector()
	// A live forecast may refine the curve within what the run's history
	// ever reached (or what it uses now), never beyond: an unsure short-
	// horizon model must not claim the whole node.
	ahead := o.Ahead.Min(e.peakHi.Max(o.Used))
	want := old
	up, down := false, false
	for d := range want {
		if !s.cfg.Enforce[d] {
			continue
		}
		h := 1 + s.head[d]
		need := max(pred[d], o.Used[d]*h, ahead[d]*h)
		if resource.Dim(d) == resource.Memory {
			// Extrapolated growth, bounded by the larger of the curve's
			// peak and 1.5× use now: one steep sample must not claim the node.
			need = max(need, min(o.Used[d]+grow, max(e.peakHi[d], 1.5*o.Used[d]))*h)
			if o.Used[d] >= s.cfg.GuardFrac*old[d] {
				need = max(need, o.Used[d]*h/s.cfg.GuardFrac)
			}
		}
		switch {
		case need > old[d]*(1+1e-6):
			want[d], up = need, true
			e.downRun[d] = 0
		case need < old[d]*(1-s.cfg.DownBand):
			e.downRun[d]++
			if e.downRun[d] >= s.cfg.DownAfter {
				want[d], down = max(need, old[d]*(1-s.cfg.DownStep)), true
				e.downRun[d] = 0
			}
		default:
			e.downRun[d] = 0
		}
	}
	if !up && !down {
		return false, nil
	}
	want = s.bound(e, want)
	for d := range want {
		if want[d] < old[d] && up && !(want[d] < old[d]*(1-s.cfg.DownBand)) {
			want[d] = old[d] // the floors/caps must not turn a raise into a tiny cut
		}
	}
	short := false
	if up {
		avail := s.capv.Sub(s.committed).Add(old)
		for d := range want {
			if want[d] > old[d] && want[d] > avail[d] {
				want[d] = max(old[d], avail[d]-0.002)
				if resource.Dim(d) == resource.Memory {
					short = true
				}
			}
		}
	}
	if want == old {
		if short {
			s.makeRoom(e, now)
		}
		return false, nil
	}
	lim := task.LimitsOf(want)
	lim.Pids = e.limits.Pids
	if err := s.led.Adjust(e.t.ID, now, lim); err != nil {
		if errors.Is(err, ledger.ErrOverCapacity) {
			return false, nil // rounding at the edge: try again next sample
		}
		return false, fmt.Errorf("sched: %w", err)
	}
	if s.cfg.Executor != nil && !e.loose {
		if err := s.cfg.Executor.Update(e.t.ID, s.enforced(e, lim)); err != nil {
			if rerr := s.led.Adjust(e.t.ID, now, e.limits); rerr != nil {
				s.cfg.Log.Warn("put back accounting after a refused update", "task", e.t.ID, "err", rerr)
			}
			return false, fmt.Errorf("sched: update limits of %q: %w", e.t.ID, err)
		}
	}
	s.committed = s.committed.Sub(old).Add(want)
	e.limits = lim
	softApplied := false
	if soft := e.curve.Window(elapsed, s.cfg.MonitorWindow, false)[resource.Memory]; soft > 0 && !e.loose && !e.throttled {
		e.soft = min(max(soft, e.floorMB), want[resource.Memory])
		if sl, ok := s.cfg.Executor.(SoftLimiter); ok {
			softApplied = sl.SetSoftMemory(e.t.ID, e.soft) == nil
		}
	}
	reason := ReasonAdjustDown
	if up {
		reason = ReasonAdjustUp
	}
	s.stats.Adjusts++
	s.record(e, now, reason, fmt.Sprintf("at +%v: used %s", elapsed.Round(time.Millisecond), fmtUse(o.Used)), softApplied)
	if short {
		s.makeRoom(e, now)
	}
	return true, nil
}

func fmtUse(v resource.Vector) string {
	return fmt.Sprintf("cpu=%.2f memory=%.0fMB", v[resource.CPU], v[resource.Memory])
}

// makeRoom evicts the lowest-priority, youngest running task whose
// priority is below e's, so that e's memory can grow.
func (s *Scheduler) makeRoom(e *entry, now time.Time) {
	if v := s.victim(e.t.Priority, e); v != nil {
		s.evict(v, now, fmt.Sprintf("to make room for %s", e.t.ID))
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
	v := s.victim(int(^uint(0)>>1), nil)
	if v == nil {
		return
	}
	why := fmt.Sprintf("node memory use %.0f of %.0f MB", used, capMB)
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
	s.evict(v, now, why)
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

// victim picks, among running tasks other than not and not already being
// evicted, with priority below below, the lowest priority and then the
// youngest; nil when there is none or when it would be the only task
// running.
func (s *Scheduler) victim(below int, not *entry) *entry {
	var v *entry
	running := 0
	for _, x := range s.tasks {
		if x.state != Running {
			continue
		}
		running++
		if x == not || x.evicting || x.t.Priority >= below {
			continue
		}
		if v == nil || x.t.Priority < v.t.Priority || (x.t.Priority == v.t.Priority && x.start.After(v.start)) {
			v = x
		}
	}
	if running < 2 {
		return nil
	}
	return v
}

// evict asks the executor to kill v; Finish requeues it.
func (s *Scheduler) evict(v *entry, now time.Time, why string) {
	ev, ok := s.cfg.Executor.(Evictor)
	if !ok {
		return
	}
	if err := ev.Evict(v.t.ID); err != nil {
		s.cfg.Log.Warn("evict", "task", v.t.ID, "err", err)
		return
	}
	v.evicting = true
	s.lastPress = now
	s.stats.Evicts++
	s.record(v, now, ReasonEvict, why, false)
}
