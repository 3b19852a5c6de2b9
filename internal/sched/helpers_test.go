package sched

import (
	"fmt"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// mapPredictor answers from a table by signature; unknown → no curve.
type mapPredictor map[string]ledger.Curve

func (m mapPredictor) Predict(f Features) (ledger.Curve, string) {
	c, ok := m[f.Signature]
	if !ok {
		return ledger.Curve{}, ""
	}
	return c, "table"
}

// fakeExec records every call; it can refuse updates and evict. It knows
// each task's cgroup limits (what Start carried, then every Update), so
// that tests can hold observations to what a real cgroup allows: memory
// over the limit is an OOM kill, CPU over a quota is throttled.
type fakeExec struct {
	limits  map[string]task.Limits
	updates map[string][]task.Limits
	soft    map[string]float64
	evicted []string
	refuse  bool
	// gone: ids the executor no longer finds (Evict fails, as the daemon's
	// Control does for a task whose process it has not found again).
	gone map[string]bool
}

func newFakeExec() *fakeExec {
	return &fakeExec{limits: map[string]task.Limits{}, updates: map[string][]task.Limits{}, soft: map[string]float64{}}
}

func (f *fakeExec) Update(id string, l task.Limits) error {
	if f.refuse {
		return fmt.Errorf("refused")
	}
	f.updates[id] = append(f.updates[id], l)
	f.limits[id] = l
	return nil
}

// started notes the limits a Start carried.
func (f *fakeExec) started(st Start) { f.limits[st.ID] = st.Limits }

// real holds use u of task id to what its cgroup allows: CPU over a quota
// is throttled to it; memory over the limit is held at the limit under a
// memory hold (the kernel keeps the task waiting there: v1, the stricter
// of the two), else oom says the kernel would OOM-kill the task.
func (f *fakeExec) real(id string, u resource.Vector) (_ resource.Vector, oom bool) {
	l := f.limits[id]
	if l.CPUCores > 0 {
		u[resource.CPU] = min(u[resource.CPU], l.CPUCores)
	}
	over := l.MemoryMB > 0 && u[resource.Memory] > l.MemoryMB
	if over && l.MemoryHoldMB > l.MemoryMB {
		u[resource.Memory] = l.MemoryMB
		return u, false
	}
	return u, over
}

func (f *fakeExec) SetSoftMemory(id string, mb float64) error {
	f.soft[id] = mb
	return nil
}

func (f *fakeExec) Evict(id string) error {
	if f.gone[id] {
		return fmt.Errorf("evict %s: not found", id)
	}
	f.evicted = append(f.evicted, id)
	return nil
}

// newTest returns a scheduler over a fresh ledger of capacity c with 1 s
// slots, a fake clock at t0, a table predictor and a fake executor.
func newTest(c resource.Vector, pred mapPredictor, mod func(*Config)) (*Scheduler, *fakeClock, *fakeExec, error) {
	led, err := ledger.New(ledger.Config{Capacity: c, SlotWidth: time.Second, Horizon: time.Hour, Start: t0}, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	clk := &fakeClock{now: t0}
	ex := newFakeExec()
	cfg := Config{Ledger: led, Predictor: pred, Executor: ex, Clock: clk, TTL: 10 * time.Minute}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	return s, clk, ex, err
}

func vec(cpu, mem float64) resource.Vector {
	return resource.Vector{resource.CPU: cpu, resource.Memory: mem}
}
