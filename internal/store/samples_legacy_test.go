package store

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/prescient-sched/prescient/internal/resource"
)

// testdata/tsdb-cpu-pct is a sample store written by the code from before
// CPU was counted in cores: CPU in percent under dim="cpu". Task
// "old-block" (three samples from t0, the first without rates) was
// compacted into a persisted block; "old-head" (two samples at t0+5h) is
// in the write-ahead log. Its CPU values were 50, 137.5, 37.125 % and
// 200, 0.5 %.
const legacyFixture = "testdata/tsdb-cpu-pct"

// openLegacy opens a copy of the fixture (the TSDB writes to its dir).
func openLegacy(t *testing.T) *Samples {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tsdb")
	if err := os.CopyFS(dir, os.DirFS(legacyFixture)); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	return openTestSamples(t, SamplesConfig{Dir: dir})
}

func TestSamplesReadLegacyPercentCPU(t *testing.T) {
	s := openLegacy(t)
	t1 := t0.Add(5 * time.Hour)
	all := resource.All
	cpuMem := resource.SetOf(resource.CPU, resource.Memory)
	want := map[string][]resource.Sample{
		"old-block": {
			{Time: t0, MemoryMB: 100, RSSMB: 90, PeakMB: 120, Avail: resource.SetOf(resource.Memory)},
			{Time: t0.Add(time.Second), CPU: 1.375, MemoryMB: 101, RSSMB: 90, PeakMB: 120, IOPS: 1, NetInMbps: 1, NetOutMbps: 0.5, Avail: all},
			{Time: t0.Add(2 * time.Second), CPU: 0.37125, MemoryMB: 102, RSSMB: 90, PeakMB: 120, IOPS: 2, NetInMbps: 1, NetOutMbps: 0.5, Avail: all},
		},
		"old-head": {
			{Time: t1, CPU: 2, MemoryMB: 64, RSSMB: 60, PeakMB: 64, Avail: cpuMem},
			{Time: t1.Add(time.Second), CPU: 0.005, MemoryMB: 64, RSSMB: 60, PeakMB: 64, Avail: cpuMem},
		},
	}
	for id, w := range want {
		got, err := s.Curve(id)
		if err != nil {
			t.Fatalf("Curve(%s): %v", id, err)
		}
		if d := cmp.Diff(w, got); d != "" {
			t.Errorf("Curve(%s) (-want +got):\n%s", id, d)
		}
	}
	runs, err := s.Runs("sig-old")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, runs); d != "" {
		t.Errorf("Runs (-want +got):\n%s", d)
	}

	// A task recorded in percent and continued in cores (a daemon
	// upgraded while it ran) reads as one curve in cores.
	more := []resource.Sample{
		{Time: t1.Add(2 * time.Second), CPU: 0.75, MemoryMB: 64, RSSMB: 60, PeakMB: 64, Avail: cpuMem},
		{Time: t1.Add(3 * time.Second), CPU: 1.5, MemoryMB: 64, RSSMB: 60, PeakMB: 64, Avail: cpuMem},
	}
	if err := s.Append("old-head", "sig-old", more...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Curve("old-head")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(append(want["old-head"], more...), got); d != "" {
		t.Errorf("Curve after appending in cores (-want +got):\n%s", d)
	}
	if vals := dimLabels(t, s); !slices.Contains(vals, "cpu") || !slices.Contains(vals, "cpu_cores") {
		t.Errorf("dim labels %v, want both the legacy cpu and cpu_cores", vals)
	}
}

func TestSamplesWriteCPUInCores(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	if err := s.Append("a", "sig", sampleAt(t0, 1, allDims)); err != nil {
		t.Fatal(err)
	}
	want := []string{"cpu_cores", "io", "mem", "net_in", "net_out", "peak", "rss"}
	if got := dimLabels(t, s); !slices.Equal(got, want) {
		t.Errorf("dim labels %v, want %v (no legacy percent cpu series)", got, want)
	}
}

// dimLabels returns the sorted values of the dim label in s.
func dimLabels(t *testing.T, s *Samples) []string {
	t.Helper()
	q, err := s.db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	vals, _, err := q.LabelValues(context.Background(), labelDim, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(vals)
	return vals
}
