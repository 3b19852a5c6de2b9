package sched

import (
	"fmt"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

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
	e := &entry{t: t, sig: t.Features.Signature, hidx: -1, state: Running, start: start, limits: limits, curve: s.shape(c, 0), model: model}
	e.peakHi = e.curve.Peak(1)
	e.enf = s.enforced(e)
	s.tasks[t.ID] = e
	s.running[t.ID] = e
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

// Finish ends a running task's allocation: what it holds returns to the
// pool at once. An evicted task, a lost run (Outcome.Lost) and an
// OOM-killed one while a larger limit is left to try are requeued and
// stay known — the OOM-killed with a memory estimate from the killed run
// (retrySize) — any other ends and is forgotten. What an OOM kill teaches
// stays with the signature: its next tasks start at least that big, until
// one of them succeeds.
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
	case (e.evicting || o.Evicted) && !o.Succeeded:
		// (A task that exited 0 before the kill reached it is done: it
		// must not run twice.)
		res.Requeued, res.Reason = true, ReasonEvict
	case o.OOMKilled:
		est, why, ok := s.retrySize(e, now)
		s.floors[e.sig] = max(s.floors[e.sig], est)
		if ok && e.retries < s.cfg.RetryLimit {
			e.retries++
			e.floorMB = max(e.floorMB, est)
			res.Requeued, res.Reason, res.Retries = true, ReasonOOMRetry, e.retries
			res.Detail = fmt.Sprintf("OOM-killed at a %.0f MB limit; retry %d with %.0f MB: %s", e.limits.MemoryMB, e.retries, est, why)
		} else {
			res.Detail = fmt.Sprintf("OOM-killed at a %.0f MB limit: %s", e.limits.MemoryMB, why)
			if ok {
				res.Detail = fmt.Sprintf("OOM-killed at a %.0f MB limit after %d retries (the most allowed)", e.limits.MemoryMB, e.retries)
			}
		}
	case o.Succeeded:
		delete(s.floors, e.sig) // its history now knows the need
	}
	if !res.Requeued {
		e.limits, e.enf, e.soft = task.Limits{}, task.Limits{}, 0
		s.record(e, now, ReasonRelease, res.Detail, false)
		delete(s.tasks, id)
		res.View = s.view(e)
		return res, nil
	}
	res.EstimateMB = e.floorMB
	e.curve = s.shape(e.curve, e.floorMB)
	switch res.Reason {
	case ReasonLost:
		res.Detail = o.Detail
	case ReasonEvict:
		res.Detail = "evicted under memory pressure; requeued"
	}
	e.limits = task.Limits{MemoryMB: e.floorMB}
	e.enf, e.soft = task.Limits{}, 0
	s.record(e, now, res.Reason, res.Detail, false)
	s.stats.Requeues++
	s.admit(e, now, true)
	if s.inverted {
		// It went back ahead of planned tasks: plan it in its place now,
		// so its view says when it will start (requeues are rare).
		s.replan(now, true)
	}
	res.View = s.view(e)
	return res, nil
}

// retrySize sizes the memory of an OOM-killed task's next run from how
// the killed run grew: its growth rate at the kill, extrapolated over what
// its curve says was left of the run (a task without a curve: as long
// again as it ran), with the ledger's headroom — and at least twice the
// limit it died at, which is all that is known when it did not grow
// (a single big allocation). Bounded by the node and the task's own cap;
// ok is false when the bound leaves nothing larger to try. why says how
// the size was chosen, for the task's allocation log.
func (s *Scheduler) retrySize(e *entry, now time.Time) (est float64, why string, ok bool) {
	m := resource.Memory
	l := max(e.limits.MemoryMB, e.used[m], s.cfg.MinMemoryMB)
	elapsed := now.Sub(e.start)
	left := e.curve.Total() - elapsed
	if e.loose || left <= 0 {
		left = max(elapsed, time.Second)
	}
	grown := s.memRoom(l + e.memRate*left.Seconds())
	est, why = 2*l, "double the limit it died at"
	if grown > est {
		est = grown
		why = fmt.Sprintf("it grew %.0f MB/s at the kill, over the %v its run has left", e.memRate, left.Round(time.Second))
	}
	bound, boundName := min(s.cfg.RetryCapMB, s.capv[m]), "the node's memory"
	if c := e.t.Cap.MemoryMB; c > 0 && c < bound {
		bound, boundName = c, "its own memory cap"
	}
	if est > bound {
		est, why = bound, why+fmt.Sprintf(", bounded by %s (%.0f MB)", boundName, bound)
	}
	if est < l*1.05 { // nothing meaningfully larger fits
		return l, fmt.Sprintf("it needs more than %s (%.0f MB) holds", boundName, bound), false
	}
	return est, why, true
}

// release returns a running e's hard allocation.
func (s *Scheduler) release(e *entry) {
	delete(s.running, e.t.ID)
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
