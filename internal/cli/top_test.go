package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

func TestRenderTop(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	started, planned := now.Add(-90*time.Second), now.Add(30*time.Second)
	f := &topFrame{
		Node: &api.NodeStatus{Policy: "predict", Running: 1, MaxRunning: 64, Queued: 2, StartedAt: now.Add(-time.Hour),
			Dims: map[string]api.DimUsage{"cpu": {Capacity: 2, Committed: 1, SoftReserved: 0.5, Used: 0.5}, "memory": {Capacity: 1000, Committed: 500, Used: 250}}},
		Tasks: []api.Task{
			{ID: "01M90WE162Y7FWCQ1K4BH7WX3E", State: api.StateRunning, StartedAt: &started, Spec: api.Spec{Argv: []string{"make", "-j2"}},
				Usage: &api.Amounts{CPUCores: 0.5, MemoryMB: 250},
				Allocations: []api.Allocation{{Time: now.Add(-80 * time.Second), Reason: "commit", Limits: api.Limits{CPUCores: 1, MemoryMB: 400}},
					{Time: now.Add(-5 * time.Second), Reason: "adjust_up", Limits: api.Limits{CPUCores: 1, MemoryMB: 500}}}},
			{ID: "01M90WE1C0VXSTZEHZMK9RQSTH", State: api.StateQueued, Priority: 3, Spec: api.Spec{Argv: []string{"sleep", "5"}},
				Reservation: &api.Reservation{Held: true, Start: &planned, Soft: api.Amounts{CPUCores: 0.5, MemoryMB: 64}},
				Prediction:  &api.Prediction{Model: "history/exact"}},
			{ID: "01M90WE1GEWJ7D4AHHWTYS7976", State: api.StateQueued, Spec: api.Spec{Argv: []string{"true"}}, Reservation: &api.Reservation{Deferred: true}},
		},
	}
	var b strings.Builder
	renderTop(&b, f, now, 120, 0)
	out := b.String()
	for _, want := range []string{
		"policy predict  running 1/64  queued 2  up 1h0m0s  models: none yet",
		"cpu  [██████████▒▒▒▒▒▒▒▒▒▒░░░░░░░░░░          ] used 0.50 held 1.00 soft 0.50 of 2.00 cores",
		"K4BH7WX3E",
		"0.50/1.00",
		"250/500",
		"1m30s  adjust_up 5s ago",
		"make -j2",
		"at 12:00:30 (in 30s)",
		"0.50/64  history/exact  sleep 5",
		"deferred",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("frame lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if len([]rune(l)) > 120 {
			t.Errorf("line longer than the width: %q", l)
		}
	}
	b.Reset()
	renderTop(&b, f, now, 120, 5)
	if n := strings.Count(b.String(), "\n"); n != 4 {
		t.Errorf("a 5-line terminal got %d lines", n)
	}
}
