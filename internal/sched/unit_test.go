package sched

import (
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
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
	// A task without a prediction gets only its own caps.
	if st[0].Limits != (ledger.Vector{}).Limits() {
		t.Fatalf("loose task limits = %+v, want none", st[0].Limits)
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
