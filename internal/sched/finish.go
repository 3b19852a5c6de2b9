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
