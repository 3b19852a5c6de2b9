package sched

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
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

// commit turns e's due soft reservation into a running allocation if it
// fits: its predicted use over the commit window must fit what running
// tasks leave (measured; for CPU, the larger of their measured and
// predicted use, within the backed-off CPU capacity), and its allocation
// the ledger's hard accounting. A dimension short of its full allocation
// may take what is left if that still covers the predicted use and the
// dimension's minimum — never less: no limit Prescient computes may fail
// a start (a sliver of CPU quota the kernel refuses, a few MB no program
// starts in).
func (s *Scheduler) commit(e *entry, now time.Time) (Start, bool) {
	need := e.curve.Window(0, s.cfg.CommitWindow, false)
	if e.loose {
		// Its declaration, but no more than the node: a request over the
		// node is a guess (fit refuses it at submit), started at the
		// node's size.
		need = need.Max(e.t.Features.Requests).Min(s.capv)
	}
	if !e.loose {
		need = s.squeezed(need)
	}
	if !s.backfillOK(e, now, now.Add(e.curve.Total()), s.squeezed(e.curve.Peak(s.led.Config().SoftQuantile))) {
		return Start{}, false
	}
	want := s.size(e, 0, s.cfg.CommitWindow)
	c := resource.CPU
	if !s.cfg.Static {
		// CPU admits by use: what running tasks use and are predicted to
		// use (cpuNeed, a wide task squeezed), not the weights they hold,
		// which are floored at MinCPU and lag a burst's end (CPU is
		// compressible).
		free := s.capv.Sub(s.usedSum)
		free[c] = s.capv[c]*s.backoff - s.cpuInUse(now)
		if !need.LessEq(free) {
			s.blocked(e, func() string {
				return fmt.Sprintf("needs %s over the commit window, running tasks leave %s (CPU back-off %.2f)", fmtUse(need), fmtUse(free), s.backoff)
			})
			return Start{}, false
		}
	}
	avail := clampZero(s.capv.Sub(s.committed))
	if s.compressible() && s.cfg.Enforce[c] && want[c] > avail[c] {
		// Weights held above use come back first.
		s.reclaimCPU(e, want[c]-avail[c], now)
		avail = clampZero(s.capv.Sub(s.committed))
	}
	for d := range want {
		if want[d] <= avail[d] {
			continue
		}
		a := avail[d] - 0.002 // under the ledger's rounding at the edge
		// A compressible CPU weight may be less than the predicted use
		// (the use fits, checked above: weights only share contention);
		// anything else must cover it.
		weight := resource.Dim(d) == c && s.compressible()
		if (a < need[d] && !weight) || a < s.minimum(resource.Dim(d)) {
			s.blocked(e, func() string {
				return fmt.Sprintf("%s: allocation %.2f, %.2f left beside committed allocations", resource.Dim(d), want[d], avail[d])
			})
			return Start{}, false
		}
		want[d] = a
	}
	lim := task.LimitsOf(want)
	// A predicted task keeps the rest of its curve in the ledger's
	// calendar: the queue is planned beside what it will use, so a task
	// whose peak is to come can start beside one whose peak is over. A
	// task without a prediction (or under fit) is held flat until it ends.
	var rest ledger.Curve
	if !e.loose && !s.cfg.Static {
		rest = s.planSpan(e.curve)
	}
	if err := s.led.CommitPlan(e.t.ID, now, lim, rest); err != nil {
		s.blocked(e, err.Error)
		return Start{}, false
	}
	e.why = ""
	s.unqueueCommitted(e)
	s.vtime = max(s.vtime, e.tag)
	waited := now.Sub(e.enq)
	e.state, e.start, e.limits = Running, now, lim
	s.running[e.t.ID] = e
	e.peakHi = e.curve.Peak(1)
	e.observed, e.used, e.prevAt, e.downRun = false, resource.Vector{}, time.Time{}, [resource.NumDims]int{}
	e.memRate, e.rising, e.lastUp, e.cpuAvg, e.cpuSecs, e.predSecs, e.samples = 0, false, time.Time{}, 0, 0, 0, 0
	e.memNeed, e.cutStep, e.cutCPU, e.lowRun = 0, -1, 0, 0
	e.evicting = false
	s.committed = s.committed.Add(want)
	s.usedSum = s.usedSum.Add(want) // until the first sample, assume it uses what it holds
	e.soft = 0
	if !e.loose && !s.cfg.Static {
		e.soft = e.curve.Window(0, s.cfg.CommitWindow, false)[resource.Memory]
	}
	s.stats.Commits++
	e.enf = s.enforced(e)
	s.record(e, now, ReasonCommit, fmt.Sprintf("model %s, waited %v", e.model, waited.Round(time.Millisecond)), false)
	return Start{ID: e.t.ID, Limits: e.enf, SoftMemoryMB: e.soft, Model: e.model, Waited: waited}, true
}

// blocked logs (debug) why due task e did not start, once per reason:
// dispatch tries a due task at every pass. The reason is formatted only
// when debug logging is on: a refused commit is on dispatch's path.
func (s *Scheduler) blocked(e *entry, reason func() string) {
	if s.cfg.Log == nil || !s.cfg.Log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	why := reason()
	if why == e.why {
		return
	}
	e.why = why
	s.cfg.Log.Debug("due, not started", "task", e.t.ID, "why", why)
}

// minimum is the smallest allocation of dimension d a task may run with.
func (s *Scheduler) minimum(d resource.Dim) float64 {
	switch d {
	case resource.CPU:
		return s.cfg.MinCPU
	case resource.Memory:
		return s.cfg.MinMemoryMB
	}
	return 0
}

// compressible says whether CPU is allocated by predicted use (weights)
// rather than held as a hard limit (quota).
func (s *Scheduler) compressible() bool { return !s.cfg.Static }

// squeeze is the CPU a task predicted to use cpu cores is planned,
// admitted and weighted at (Config.WideStretch): cpu up to one core;
// above, cpu / WideStretch but at least one core. Under fit (Static) CPU
// is held as declared, not squeezed.
func (s *Scheduler) squeeze(cpu float64) float64 {
	if !s.compressible() || cpu <= 1 {
		return cpu
	}
	return max(1, cpu/s.cfg.WideStretch)
}

// squeezed is v with its CPU squeezed.
func (s *Scheduler) squeezed(v resource.Vector) resource.Vector {
	v[resource.CPU] = s.squeeze(v[resource.CPU])
	return v
}

// size is e's allocation for [elapsed, elapsed+window) by its curve:
// the upper quantile plus the ledger's headroom for memory (and the other
// incompressible dimensions), the predicted use (p50) for compressible
// CPU; bounded by bound.
func (s *Scheduler) size(e *entry, elapsed, window time.Duration) resource.Vector {
	v := e.curve.Hard(elapsed, window, s.head)
	v[resource.Memory] = s.memRoom(e.curve.Window(elapsed, window, true)[resource.Memory])
	if s.compressible() {
		v[resource.CPU] = s.squeeze(e.curve.Window(elapsed, window, false)[resource.CPU])
	}
	return s.bound(e, v)
}

// unqueueCommitted removes a just-committed e from its FIFO (its soft
// reservation became the hard one; it is already out of the due heap).
func (s *Scheduler) unqueueCommitted(e *entry) {
	s.dequeue(e)
	e.reserved = false
}

// bound applies floors (the minimums, the memory floor of OOM retries),
// the declared requests of a task without a prediction, the user's caps
// and capacity.
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

// enforced is what e's allocation puts on its cgroup:
//
//	fit (Static)  the declared CPU as quota, the declared memory as limit
//	predict       memory: the allocation as limit (from its curve, or, with
//	              no prediction yet, from its declaration — a guess an OOM
//	              kill corrects: the retry grows past it); CPU: a weight of
//	              its predicted use, a quota only if the user capped it
//
// and always the user's own IO, network and pids caps.
func (s *Scheduler) enforced(e *entry) task.Limits {
	v := e.limits.Vector()
	c := e.t.Cap
	out := task.Limits{IOPS: c.IOPS, NetMbps: c.NetMbps, Pids: c.Pids}
	if s.cfg.Static {
		out.CPUCores, out.MemoryMB = v[resource.CPU], v[resource.Memory]
	} else {
		out.CPUCores, out.CPUShare, out.MemoryMB = c.CPUCores, v[resource.CPU], v[resource.Memory]
	}
	if !s.cfg.Enforce[resource.Memory] {
		out.MemoryMB = c.MemoryMB
	}
	if !s.cfg.Enforce[resource.CPU] {
		out.CPUCores, out.CPUShare = c.CPUCores, 0
	}
	out.MemoryHoldMB = s.holdMB(e, out.MemoryMB)
	return out
}

// holdMB is the memory hold of e under a limit of mb (Config.MemoryHoldFor):
// what its curve's upper peak needs, within its own cap and the node,
// when that is above mb; else 0. A task without a curve, one whose hold
// was lifted, or one whose limits the monitor does not move, has none.
func (s *Scheduler) holdMB(e *entry, mb float64) float64 {
	m := resource.Memory
	if s.cfg.MemoryHoldFor < 0 || s.cfg.Static || !s.cfg.Enforce[m] || e.loose || e.holdOff || mb <= 0 {
		return 0
	}
	h := min(max(s.memRoom(e.peakHi[m]), e.floorMB), s.capv[m])
	if c := e.t.Cap.MemoryMB; c > 0 {
		h = min(h, c)
	}
	if h <= mb*(1+1e-6) {
		return 0
	}
	return h
}

// record logs a change of e's allocation: what its cgroup now has
// (e.enf), what it holds in the ledger, why.
func (s *Scheduler) record(e *entry, now time.Time, reason, detail string, softApplied bool) {
	e.allocs = append(e.allocs, Allocation{At: now, Limits: e.enf, Held: e.limits.Vector(), SoftMemoryMB: e.soft, SoftApplied: softApplied, Reason: reason, Detail: detail})
	if s.cfg.OnAllocation != nil {
		s.cfg.OnAllocation(reason)
	}
	s.cfg.Log.Debug("allocation", "task", e.t.ID, "reason", reason, "held", e.limits.Vector().String(), "soft_mb", e.soft, "detail", detail)
}

// MarkSoftApplied notes that the caller set the soft limit of a Start.
func (s *Scheduler) MarkSoftApplied(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.tasks[id]; e != nil && len(e.allocs) > 0 {
		e.allocs[len(e.allocs)-1].SoftApplied = true
	}
}
