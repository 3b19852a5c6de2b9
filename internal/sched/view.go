package sched

import (
	"slices"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
)

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
