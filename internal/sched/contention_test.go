package sched

import (
	"strings"
	"testing"
	"time"
)

// TestContentionBackoff: admission backs off the CPU it counts when tasks
// are short of CPU on a busy node — behind their curves' CPU-seconds and
// running under their curves now, but not idle — and gets it back at once
// when the node's CPU is not busy. An idle task behind its curve (a memory
// hold whose start-up did less work than its history) is not short of CPU.
func TestContentionBackoff(t *testing.T) {
	curve := func(s string) []string { return strings.Split(s, "|") }
	pred := mapPredictor{}
	for sig, c := range map[string]string{
		"busy":  "60s cpu=0.75 mem=100",
		"busy2": "60s cpu=0.75 mem=100",
		"hold":  "10s cpu=0.4 mem=1000 | 50s cpu=0.02 mem=1000",
		"big":   "60s cpu=0.9 mem=100",
		"mid":   "60s cpu=0.6 mem=100",
		"low":   "60s cpu=0.5 mem=100",
	} {
		cv, err := parseCurve(curve(c))
		if err != nil {
			t.Fatal(err)
		}
		pred[sig] = cv
	}
	run := func(t *testing.T, sigs []string, use func(id string, at time.Duration) float64, until time.Duration) *Scheduler {
		t.Helper()
		s, clk, ex, err := newTest(vec(2, 4000), pred, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, sig := range sigs {
			if _, err := s.Enqueue(Task{ID: sig, Features: Features{Signature: sig}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, st := range s.Schedule(0) {
			ex.started(st)
		}
		if n := len(s.running); n != len(sigs) {
			t.Fatalf("%d of %d tasks started", n, len(sigs))
		}
		for at := time.Second; at <= until; at += time.Second {
			clk.Set(t0.Add(at))
			for _, sig := range sigs {
				if _, err := s.Observe(sig, Observation{At: t0.Add(at), Used: vec(use(sig, at), 500)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return s
	}
	t.Run("idle hold is not starved", func(t *testing.T) {
		s := run(t, []string{"busy", "busy2", "hold"}, func(id string, at time.Duration) float64 {
			switch {
			case id != "hold":
				return 0.95 // over its curve: the node is busy
			case at <= 2*time.Second:
				return 0.1 // its start-up: 0.2 of the 4 CPU-seconds its curve has
			}
			return 0
		}, 20*time.Second)
		if s.backoff != 1 {
			t.Fatalf("backoff %v beside an idle hold and two tasks at their curves, want 1", s.backoff)
		}
	})
	t.Run("starved on a busy node backs off, an idle node comes back", func(t *testing.T) {
		busy := true
		use := func(id string, at time.Duration) float64 {
			if busy {
				return 0.67 // three tasks share two cores: big runs under its 0.9
			}
			return 0.3
		}
		s := run(t, []string{"big", "mid", "low"}, use, 20*time.Second)
		if s.backoff >= 1 {
			t.Fatalf("backoff %v with big starved on a busy node, want < 1", s.backoff)
		}
		busy = false
		clk := s.cfg.Clock.(*fakeClock)
		at := clk.Now().Add(6 * time.Second) // the next check: one, at one instant
		clk.Set(at)
		for _, id := range []string{"big", "mid", "low"} {
			if _, err := s.Observe(id, Observation{At: at, Used: vec(use(id, 0), 500)}); err != nil {
				t.Fatal(err)
			}
		}
		if s.backoff != 1 {
			t.Fatalf("backoff %v on a node with idle CPU, want 1 at once", s.backoff)
		}
	})
}
