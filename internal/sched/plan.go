package sched

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
)

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
	e := &entry{t: t, sig: t.Features.Signature, hidx: -1}
	// What OOM kills of the signature taught: start at least that big.
	e.floorMB = s.floors[e.sig]
	e.curve, e.model = s.predict(t.Features, e.floorMB)
	e.loose = e.model == ModelRequests
	s.tasks[t.ID] = e
	s.admit(e, now, false)
	return s.view(e), nil
}

// SetFloor teaches the scheduler that tasks of signature sig need at least
// mb of memory (an OOM kill showed it, e.g. before a restart), until one
// of them succeeds.
func (s *Scheduler) SetFloor(sig string, mb float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floors[sig] = max(s.floors[sig], mb)
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

// qkey names one FIFO: the queued tasks of one user at one priority.
type qkey struct {
	prio int
	user uint32
}

func keyOf(e *entry) qkey { return qkey{e.t.Priority, e.t.User} }

// queue appends e to its user's FIFO at its priority, with its fair-share
// tag: start-time fair queuing (SFQ) with one unit per task — a task's
// tag is the larger of the tag of the latest task started (vtime) and its
// user's previous tag + 1. Among equal (aged) priorities the lowest tag
// goes first, so users take turns: a user who queued 2,000 tasks holds
// tags vtime…vtime+1999, and another user's task arriving then gets vtime
// and goes next, not behind the 2,000 (Slurm's fair share makes the same
// promise with decayed usage).
//
// A requeued task (evicted, OOM-killed with a larger size to try, lost)
// keeps its tag and aging and goes back to its place among the tasks
// queued after it: it was started in its turn once, and a long task sent
// to the back of a burst runs alone at the end (measured: an OOM-killed
// 82 s job retried behind the 17 tasks queued after it waited 3¾ min
// and ended the mix a minute after everything else).
func (s *Scheduler) queue(e *entry, now time.Time, requeue bool) {
	s.seq++
	e.seq, e.enq, e.state = s.seq, now, Queued
	if requeue && e.aged.IsZero() {
		requeue = false // restored after a restart: its place is not known
	}
	if !requeue {
		e.aged = now
		e.tag = max(s.vtime, s.userTag[e.t.User])
		s.userTag[e.t.User] = e.tag + 1
	}
	k := keyOf(e)
	q := s.fifo[k]
	if q == nil {
		q = newFIFO()
		s.fifo[k] = q
	}
	if q.len() == 0 {
		i, _ := slices.BinarySearchFunc(s.keys, k, cmpKey)
		s.keys = slices.Insert(s.keys, i, k)
	}
	placed := false
	if requeue {
		if i := q.after(e.tag); i >= 0 {
			s.insertAt(q, e, i, now)
			placed = true
		}
	} else {
		placed = s.burst(q, e, now)
	}
	// Ahead of what is planned already (a higher priority, or another
	// user's turn)? Then Replan reorders.
	if !s.inverted {
		for _, x := range s.keys {
			if l := s.fifo[x].lastPlanned(); l != nil && l != e && s.before(e, l, now) {
				s.inverted = true
				break
			}
		}
	}
	if !placed {
		q.push(e)
	}
}

// burst puts e, just tagged, ahead of the tasks at the tail of its FIFO
// that were queued within BurstWindow before it and are predicted to run
// shorter (LPT within a burst; Config.BurstWindow), at most ReplanWindow
// of them. It reports whether it did (else the caller appends e).
//
// The FIFO's invariants hold: e takes the place (tag and aging start) of
// the first task it passes and each passed task the next place, so tags
// and aging stay in FIFO order and the merge in each stays right; a
// passed task loses at most BurstWindow of aging. Passing a planned task
// makes e planned (the queue is replanned at the next Schedule, in the new
// order); past PlanDepth the worst planned task is deferred.
func (s *Scheduler) burst(q *fifo, e *entry, now time.Time) bool {
	if s.cfg.BurstWindow < 0 || e.loose {
		return false
	}
	d := e.curve.Total()
	from := now.Add(-s.cfg.BurstWindow)
	at, n := -1, 0
	for i := len(q.items) - 1; i >= q.head && n < s.cfg.ReplanWindow; i-- {
		x := q.items[i]
		if x == nil {
			continue
		}
		if x.loose || x.enq.Before(from) || x.aged.Before(from) || x.curve.Total() >= d {
			// (An entry aged from before the window is a requeued one,
			// back in its old place: not part of this burst.)
			break
		}
		at, n = i, n+1
	}
	if at < 0 {
		return false
	}
	// The places' (tag, aging start) pairs stay in order and move
	// together: e takes the first passed task's, each passed task the
	// next one's, the last e's own. Every pair was made when some task
	// was queued, so pairs of one user order alike by tag and by aging,
	// and a requeued task, which keeps its pair, goes back in order.
	type place struct {
		tag  uint64
		aged time.Time
	}
	var (
		passed []*entry
		places []place
	)
	for i := at; i < len(q.items); i++ {
		if x := q.items[i]; x != nil {
			passed = append(passed, x)
			places = append(places, place{x.tag, x.aged})
		}
	}
	places = append(places, place{e.tag, e.aged})
	e.tag, e.aged = places[0].tag, places[0].aged
	for i, x := range passed {
		x.tag, x.aged = places[i+1].tag, places[i+1].aged
	}
	s.insertAt(q, e, at, now)
	return true
}

// insertAt puts e, queued deferred, into q at index i, ahead of the live
// entry there. Ahead of a planned entry it is planned itself, and the
// queue is replanned at the next Schedule in the new order; past
// PlanDepth the worst planned task is deferred.
func (s *Scheduler) insertAt(q *fifo, e *entry, i int, now time.Time) {
	if !q.items[i].deferred && e.deferred {
		e.deferred = false
		s.deferredN--
		s.planned++
		s.inverted = true
	}
	q.insert(e, i)
	for s.planned > s.cfg.PlanDepth && s.deferWorst(now) {
	}
	if !e.deferred {
		s.reserve(e, now)
	}
}

// deferWorst defers the last planned task that comes last in the queue's
// order, releasing its reservation; false when none is planned.
func (s *Scheduler) deferWorst(now time.Time) bool {
	var worst *entry
	for _, k := range s.keys {
		if e := s.fifo[k].lastPlanned(); e != nil && (worst == nil || s.before(worst, e, now)) {
			worst = e
		}
	}
	if worst == nil {
		return false
	}
	s.unreserve(worst)
	if s.shadow.e == worst {
		s.shadow = shadow{}
	}
	s.fifo[keyOf(worst)].deferLast(worst)
	s.planned--
	s.deferredN++
	return true
}

// cmpKey orders FIFO keys: priority descending, then user.
func cmpKey(a, b qkey) int {
	if a.prio != b.prio {
		return b.prio - a.prio
	}
	return int(a.user) - int(b.user)
}

// admit queues e deferred and lets fill plan it if it is within the
// planning depth.
func (s *Scheduler) admit(e *entry, now time.Time, requeue bool) {
	e.deferred = true
	s.deferredN++
	s.queue(e, now, requeue)
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
		for _, k := range s.keys {
			if e := s.fifo[k].firstDeferred(); e != nil && (best == nil || s.before(e, best, now)) {
				best = e
			}
		}
		if best == nil {
			return
		}
		if s.planned >= s.cfg.PlanDepth {
			var worst *entry
			for _, k := range s.keys {
				if e := s.fifo[k].lastPlanned(); e != nil && (worst == nil || s.before(worst, e, now)) {
					worst = e
				}
			}
			if worst == nil || !s.before(best, worst, now) {
				return
			}
			s.deferWorst(now)
		}
		s.fifo[keyOf(best)].undefer(best)
		s.deferredN--
		s.planned++
		s.reserve(best, now)
	}
}

// dequeue takes e out of its FIFO and the planned/deferred counts,
// dropping its key from keys when the FIFO empties.
func (s *Scheduler) dequeue(e *entry) {
	s.uncount(e)
	k := keyOf(e)
	q := s.fifo[k]
	q.remove(e)
	if q.len() == 0 {
		if i := slices.Index(s.keys, k); i >= 0 {
			s.keys = slices.Delete(s.keys, i, i+1)
		}
		delete(s.fifo, k)
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
// open-ended in the ledger anyway. A wide task's CPU is planned squeezed
// (Config.WideStretch).
func (s *Scheduler) planSpan(c ledger.Curve) ledger.Curve {
	limit := s.led.Config().Horizon / 2
	if c.Total() <= limit && !slices.ContainsFunc(c.Steps, func(st ledger.Step) bool {
		return s.squeeze(st.PHi[resource.CPU]) != st.PHi[resource.CPU]
	}) {
		return c // most curves: nothing to cut or squeeze, no copy
	}
	out := ledger.Curve{HiQ: c.HiQ, Steps: make([]ledger.Step, 0, len(c.Steps))}
	var off time.Duration
	for _, st := range c.Steps {
		if off >= limit {
			break
		}
		st.Dur = min(st.Dur, limit-off)
		st.P50, st.PHi = s.squeezed(st.P50), s.squeezed(st.PHi)
		out.Steps = append(out.Steps, st)
		off += st.Dur
	}
	return out
}

// protect makes e the blocked head: it computes when the running tasks,
// by their predicted ends, leave room for e's soft-sized peak.
func (s *Scheduler) protect(e *entry, now time.Time) {
	need := s.squeezed(e.curve.Peak(s.led.Config().SoftQuantile))
	type end struct {
		at  time.Time
		lim resource.Vector
	}
	var ends []end
	for _, x := range s.running {
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
	return e.t.Priority + int(now.Sub(e.aged)/s.cfg.AgeStep)
}

// before orders queued entries: higher effective (aged) priority first,
// then the lower fair-share tag (users take turns), then FIFO.
func (s *Scheduler) before(a, b *entry, now time.Time) bool {
	pa, pb := s.effPrio(a, now), s.effPrio(b, now)
	if pa != pb {
		return pa > pb
	}
	if a.tag != b.tag {
		return a.tag < b.tag
	}
	return a.seq < b.seq
}

// each visits queued entries in order (before) until fn returns false: a
// merge of the per-(priority, user) FIFOs, each already in that order — an
// older entry of a FIFO has aged at least as much and has a lower tag.
func (s *Scheduler) each(now time.Time, fn func(*entry) bool) {
	var small [8]int
	cur := small[:0]
	for range s.keys {
		cur = append(cur, 0)
	}
	for {
		var best *entry
		bi := -1
		for i, k := range s.keys {
			e, at := s.fifo[k].next(cur[i])
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
			s.fifo[keyOf(e)].undefer(e)
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
