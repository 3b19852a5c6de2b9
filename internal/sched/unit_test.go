package sched

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/task"
)

// TestEvictRequeue: measured memory above PressureFrac evicts the youngest
// lowest-priority task; its end requeues it with a reservation, and it
// starts again once there is room.
func TestEvictRequeue(t *testing.T) {
	s, clk, ex, err := newTest(vec(2, 600), mapPredictor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := s.Enqueue(Task{ID: id, Features: Features{Signature: "unknown", Requests: vec(0.01, 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.Schedule(0)); got != 2 {
		t.Fatalf("started %d, want 2", got)
	}
	clk.Set(t0.Add(time.Second))
	for _, id := range []string{"a", "b"} {
		if _, err := s.Observe(id, Observation{At: clk.Now(), Used: vec(0.5, 300)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(ex.evicted) != 1 {
		t.Fatalf("evicted %v, want one", ex.evicted)
	}
	victim := ex.evicted[0]
	r, err := s.Finish(victim, Outcome{})
	if err != nil || !r.Requeued || r.Reason != ReasonEvict {
		t.Fatalf("finish = %+v, %v", r, err)
	}
	v, _ := s.Get(victim)
	if v.State != Queued || !v.Reserved {
		t.Fatalf("after eviction: %+v", v)
	}
	clk.Set(t0.Add(2 * time.Second))
	st := s.Schedule(0)
	if len(st) != 1 || st[0].ID != victim {
		t.Fatalf("restart = %+v", st)
	}
	// A task without a prediction gets no quota, a weight of its declared
	// CPU (floored at MinCPU) and its declared memory (1 MB) plus room for
	// its page cache (MemSlackMB): a guess that an OOM retry corrects.
	if want := (task.Limits{CPUShare: 0.05, MemoryMB: 65}); st[0].Limits != want {
		t.Fatalf("loose task limits = %+v, want %+v", st[0].Limits, want)
	}
}

// TestEvictedBeforeRestart: a task evicted by the daemon before it
// restarted is restored as running; its end, marked evicted (the
// scheduler that evicted it is gone), requeues it as an eviction, not as
// the task's own end by a signal.
func TestEvictedBeforeRestart(t *testing.T) {
	s, _, _, err := newTest(vec(2, 600), mapPredictor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(Task{ID: "a", Features: Features{Signature: "unknown", Requests: vec(0.1, 64)}}, t0, task.Limits{CPUCores: 0.1, MemoryMB: 64}, ledger.Curve{}, ""); err != nil {
		t.Fatal(err)
	}
	r, err := s.Finish("a", Outcome{Evicted: true})
	if err != nil || !r.Requeued || r.Reason != ReasonEvict {
		t.Fatalf("finish = %+v, %v; want requeued as evicted", r, err)
	}
	if v, _ := s.Get("a"); v.State != Queued {
		t.Fatalf("after the end: %+v", v)
	}
	// Its place in the queue before the restart is not known: it queues
	// as new, aging from now (not from the zero time, which would age it
	// past every priority).
	if e := s.tasks["a"]; e.aged.IsZero() || s.effPrio(e, t0) != 0 {
		t.Fatalf("requeued after a restore: aged %v, effective priority %d", e.aged, s.effPrio(e, t0))
	}
	// One that exited 0 before the kill reached it is done.
	if err := s.Restore(Task{ID: "b", Features: Features{Signature: "unknown", Requests: vec(0.1, 64)}}, t0, task.Limits{CPUCores: 0.1, MemoryMB: 64}, ledger.Curve{}, ""); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Finish("b", Outcome{Evicted: true, Succeeded: true}); err != nil || r.Requeued {
		t.Fatalf("finish of a success = %+v, %v; want it ended", r, err)
	}
}

// TestPlanDepth: beyond PlanDepth tasks queue deferred, without a
// reservation; a higher priority takes the last planned place at once;
// deferred tasks are planned, in order, as planned ones leave.
func TestPlanDepth(t *testing.T) {
	pred := mapPredictor{"s": ledger.Flat(10*time.Second, vec(1, 100), vec(1, 100))}
	s, _, _, err := newTest(vec(2, 1000), pred, func(c *Config) { c.PlanDepth = 2 })
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := s.Enqueue(Task{ID: id, Features: Features{Signature: "s"}}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		out := ""
		for _, id := range []string{"a", "b", "c", "d", "hi"} {
			v, ok := s.Get(id)
			switch {
			case !ok:
				out += "-"
			case v.Deferred && !v.Reserved:
				out += "d"
			case v.Reserved && !v.Deferred:
				out += "R"
			default:
				out += "?"
			}
		}
		return out
	}
	if got := state(); got != "RRdd-" {
		t.Fatalf("after 4 enqueues: %s, want RRdd-", got)
	}
	if _, err := s.Enqueue(Task{ID: "hi", Priority: 5, Features: Features{Signature: "s"}}); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "RdddR" {
		t.Fatalf("after a higher priority: %s, want RdddR (b deferred again)", got)
	}
	s.Cancel("a")
	if got := state(); got != "-RddR" {
		t.Fatalf("after cancelling a: %s, want -RddR", got)
	}
	s.Cancel("hi")
	s.Cancel("b")
	if got := state(); got != "--RR-" {
		t.Fatalf("after cancelling hi and b: %s, want --RR-", got)
	}
}

// TestThrottleThenEvict: under memory pressure the victim (youngest of the
// lowest priority) is first throttled — its soft limit pressed below its
// use — and evicted only if pressure is still there a cooldown later; when
// pressure is over, throttled tasks get their soft limits back.
func TestThrottleThenEvict(t *testing.T) {
	pred := mapPredictor{"s": ledger.Flat(time.Minute, vec(0.2, 300), vec(0.2, 320))}
	for _, relieve := range []bool{false, true} {
		s, clk, ex, err := newTest(vec(2, 1000), pred, func(c *Config) { c.PressureCooldown = 5 * time.Second })
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"old", "young"} {
			clk.Set(t0.Add(time.Duration(i) * time.Second))
			if _, err := s.Enqueue(Task{ID: id, Features: Features{Signature: "s"}}); err != nil {
				t.Fatal(err)
			}
			if st := s.Schedule(0); len(st) != 1 {
				t.Fatalf("start %s: %+v", id, st)
			}
		}
		observe := func(at time.Duration, mb float64) {
			t.Helper()
			clk.Set(t0.Add(at))
			for _, id := range []string{"old", "young"} {
				if _, err := s.Observe(id, Observation{At: clk.Now(), Used: vec(0.2, mb)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		last := func(id string) Allocation {
			v, _ := s.Get(id)
			return v.Allocs[len(v.Allocs)-1]
		}
		observe(2*time.Second, 480) // 960 of 1000 MB > 95 %
		if a := last("young"); a.Reason != ReasonThrottle || ex.soft["young"] != 0.9*480 || !a.SoftApplied {
			t.Fatalf("relieve=%v: young's last allocation %+v, soft %v; want a throttle to 432 MB", relieve, a, ex.soft["young"])
		}
		if len(ex.evicted) != 0 || last("old").Reason == ReasonThrottle {
			t.Fatalf("relieve=%v: evicted %v, old %+v: only the young task is throttled at first", relieve, ex.evicted, last("old"))
		}
		observe(3*time.Second, 480) // within the cooldown: nothing more
		if len(ex.evicted) != 0 {
			t.Fatalf("relieve=%v: evicted %v within the cooldown", relieve, ex.evicted)
		}
		if !relieve {
			observe(8*time.Second, 480)
			if len(ex.evicted) != 1 || ex.evicted[0] != "young" || last("young").Reason != ReasonEvict {
				t.Fatalf("pressure persists: evicted %v, young %+v; want young evicted", ex.evicted, last("young"))
			}
			continue
		}
		observe(8*time.Second, 400) // 800 ≤ 85 %: over
		a := last("young")
		if a.Reason != ReasonUnthrottle || ex.soft["young"] != 300 || len(ex.evicted) != 0 {
			t.Fatalf("pressure over: young %+v, soft %v, evicted %v; want unthrottled to 300 MB", a, ex.soft["young"], ex.evicted)
		}
	}
}

// TestLongerThanHorizon: a task predicted to run longer than the ledger's
// horizon is still planned and started (its reservation covers what the
// calendar can see; once running, its hard allocation is open-ended).
func TestLongerThanHorizon(t *testing.T) {
	pred := mapPredictor{"long": ledger.Flat(3*time.Hour, vec(1, 100), vec(1, 120))} // horizon is 1 h
	s, _, _, err := newTest(vec(2, 1000), pred, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Enqueue(Task{ID: "l", Features: Features{Signature: "long"}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Reserved {
		t.Fatalf("a 3 h curve on a 1 h horizon is not planned: %+v", v)
	}
	if st := s.Schedule(0); len(st) != 1 || st[0].ID != "l" {
		t.Fatalf("not started: %+v", st)
	}
	if v, _ := s.Get("l"); v.Curve.Total() != 3*time.Hour {
		t.Fatalf("the task's own curve was cut: %v", v.Curve.Total())
	}
}

// TestFairShare: at one priority, users take turns. alice queues ten
// tasks, each of which needs the whole node; bob's one task, queued after
// them, runs next — not after alice's backlog — and alice's go on after.
func TestFairShare(t *testing.T) {
	s, clk, _, err := newTest(vec(1, 1000), mapPredictor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const alice, bob = 1000, 1001
	for i := range 10 {
		if _, err := s.Enqueue(Task{ID: fmt.Sprint("a", i), User: alice, Features: Features{Signature: "x", Requests: vec(1, 100)}}); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	run := func(at time.Duration) {
		clk.Set(t0.Add(at))
		st := s.Schedule(0)
		if len(st) != 1 {
			t.Fatalf("at %v started %d tasks, want 1 (the node holds one)", at, len(st))
		}
		order = append(order, st[0].ID)
		clk.Set(t0.Add(at + time.Second))
		if _, err := s.Finish(st[0].ID, Outcome{}); err != nil {
			t.Fatal(err)
		}
	}
	run(0)
	clk.Set(t0.Add(500 * time.Millisecond))
	if _, err := s.Enqueue(Task{ID: "b0", User: bob, Features: Features{Signature: "x", Requests: vec(1, 100)}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		run(time.Duration(2+2*i) * time.Second)
	}
	if want := []string{"a0", "b0", "a1", "a2"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v: bob's task must not wait behind alice's backlog", order, want)
	}
}

// TestEvictSkipsRefused: when the executor cannot evict the chosen victim
// (a task restored after a daemon restart that it has not found again),
// the next victim is evicted at once, and the refused one is not picked
// again within PressureCooldown.
func TestEvictSkipsRefused(t *testing.T) {
	s, clk, ex, err := newTest(vec(2, 900), mapPredictor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ex.gone = map[string]bool{"c": true}
	for i, id := range []string{"a", "b", "c"} {
		if _, err := s.Enqueue(Task{ID: id, Features: Features{Signature: "unknown", Requests: vec(0.01, 1)}}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Duration(i) * time.Millisecond)) // c is the youngest
		if got := len(s.Schedule(0)); got != 1 {
			t.Fatalf("started %d, want 1", got)
		}
	}
	clk.Set(t0.Add(time.Second))
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Observe(id, Observation{At: clk.Now(), Used: vec(0.3, 300)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(ex.evicted) != 1 || ex.evicted[0] != "b" {
		t.Fatalf("evicted %v, want [b]: c (the youngest) cannot be evicted, b is next", ex.evicted)
	}
	if _, err := s.Finish("b", Outcome{}); err != nil {
		t.Fatal(err)
	}
	// Once PressureCooldown has passed, c may be picked again: found by
	// the executor now, it is the youngest and is evicted.
	ex.gone = nil
	clk.Set(t0.Add(time.Second + s.cfg.PressureCooldown))
	for _, id := range []string{"a", "c"} {
		if _, err := s.Observe(id, Observation{At: clk.Now(), Used: vec(0.3, 445)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(ex.evicted) != 2 || ex.evicted[1] != "c" {
		t.Fatalf("evicted %v, want [b c]", ex.evicted)
	}
}
