package task

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/prescient-sched/prescient/internal/resource"
)

func TestLimitsVector(t *testing.T) {
	l := Limits{CPUCores: 0.5, MemoryMB: 512, IOPS: 100, NetMbps: 10, Pids: 64}
	v := l.Vector()
	if want := (resource.Vector{0.5, 512, 100, 10}); v != want {
		t.Fatalf("Vector() = %v, want %v", v, want)
	}
	l.Pids = 0
	if got := LimitsOf(v); got != l {
		t.Fatalf("LimitsOf(Vector()) = %+v, want %+v (Pids dropped)", got, l)
	}
}

func TestStatsOf(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	tests := []struct {
		name             string
		in               resource.Summary
		wantPeak, wantMe Stats
	}{
		{name: "nothing available", in: resource.Summary{N: 3}},
		{
			name:     "cpu in percent, the rest as is",
			in:       resource.Summary{N: 2, Avail: resource.All, Peak: resource.Vector{1.5, 300, 20, 4}, Mean: resource.Vector{0.25, 200, 10, 3}},
			wantPeak: Stats{CPUPct: f(150), MemoryMB: f(300), IOPS: f(20), NetMbps: f(4)},
			wantMe:   Stats{CPUPct: f(25), MemoryMB: f(200), IOPS: f(10), NetMbps: f(3)},
		},
		{
			name:     "unavailable is nil, available zero is zero",
			in:       resource.Summary{N: 1, Avail: resource.SetOf(resource.Memory, resource.IO), Peak: resource.Vector{9, 100, 0, 9}, Mean: resource.Vector{9, 100, 0, 9}},
			wantPeak: Stats{MemoryMB: f(100), IOPS: f(0)},
			wantMe:   Stats{MemoryMB: f(100), IOPS: f(0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peak, mean := StatsOf(tt.in)
			if d := cmp.Diff(tt.wantPeak, peak); d != "" {
				t.Errorf("peak (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantMe, mean); d != "" {
				t.Errorf("mean (-want +got):\n%s", d)
			}
		})
	}
}
