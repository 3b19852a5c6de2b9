package sched

import (
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

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
	need := e.curve.Window(0, s.cfg.CommitWindow, false)
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
	s.vtime = max(s.vtime, e.tag)
	waited := now.Sub(e.enq)
	e.state, e.start, e.limits = Running, now, lim
	e.peakHi = e.curve.Peak(1)
	e.observed, e.used, e.prevAt, e.downRun = false, resource.Vector{}, time.Time{}, [resource.NumDims]int{}
	e.evicting = false
	s.committed = s.committed.Add(want)
	s.usedSum = s.usedSum.Add(want) // until the first sample, assume it uses its limits
	e.soft = 0
	if !e.loose {
		e.soft = e.curve.Window(0, s.cfg.CommitWindow, false)[resource.Memory]
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
