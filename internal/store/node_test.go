package store

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
)

func nodeAt(tm time.Time, i int, avail profile.NodeSet) profile.NodeSample {
	f := float64(i)
	return profile.NodeSample{
		Time: tm, Avail: avail, Cores: 2, CPUBusy: 0.5 + f/64, MemTotalMB: 24000, MemAvailableMB: 20000 - f,
		Runnable: 3 + f, Blocked: f / 4,
		CPUPressure:    profile.Pressure{Some: f / 1024, Full: 0},
		MemoryPressure: profile.Pressure{Some: f / 2048, Full: f / 4096},
		IOPressure:     profile.Pressure{Some: 0.25, Full: 0.125},
	}
}

func TestNodeRoundTrip(t *testing.T) {
	all := profile.NodeCPU | profile.NodeMemory | profile.NodeProcs | profile.NodeCPUPressure | profile.NodeMemoryPressure | profile.NodeIOPressure
	tests := []struct {
		name  string
		avail []profile.NodeSet
	}{
		{"all groups", []profile.NodeSet{all, all, all}},
		{"first sample without rates", []profile.NodeSet{profile.NodeMemory | profile.NodeProcs, all, all}},
		{"no pressure", []profile.NodeSet{profile.NodeCPU | profile.NodeMemory | profile.NodeProcs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestSamples(t, SamplesConfig{})
			var want []profile.NodeSample
			for i, a := range tt.avail {
				smp := nodeAt(t0.Add(time.Duration(i)*time.Second), i, a)
				if err := s.AppendNode(smp); err != nil {
					t.Fatal(err)
				}
				w := profile.NodeSample{Time: smp.Time.UTC(), Avail: a}
				for _, c := range nodeColumns {
					if a.Has(c.group) {
						c.set(&w, c.get(&smp))
					}
				}
				want = append(want, w)
			}
			// A task's series beside them are not node samples.
			if err := s.Append("task1", "sig1", sampleAt(t0, 1, resource.All)); err != nil {
				t.Fatal(err)
			}
			got, err := s.Node(t0, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("node samples (-want +got):\n%s", d)
			}
			got, err = s.Node(t0.Add(time.Second), t0.Add(time.Second))
			if err != nil || len(got) != min(1, len(tt.avail)-1) {
				t.Fatalf("range of one second: %d samples, %v", len(got), err)
			}
			curve, err := s.Curve("task1")
			if err != nil || len(curve) != 1 {
				t.Fatalf("task curve beside node series: %v, %v", curve, err)
			}
		})
	}
}

func TestAppendNodeRejects(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	bad := nodeAt(t0, 1, profile.NodeCPU)
	bad.CPUBusy = math.NaN()
	for _, smp := range []profile.NodeSample{{Avail: profile.NodeCPU}, bad} {
		if err := s.AppendNode(smp); !errors.Is(err, ErrInvalid) {
			t.Errorf("AppendNode(%+v) = %v, want ErrInvalid", smp, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendNode(nodeAt(t0, 1, profile.NodeCPU)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
