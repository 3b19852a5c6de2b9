package predict

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// contended makes a run of a CPU-bound task that wants want cores and does
// work core-seconds on a node of 2 cores where others keep busy cores
// busy: it gets its fair share, so it runs longer and at a lower rate.
func contended(rng *rand.Rand, want, work, busy float64, start time.Time) Run {
	const cores = 2.0
	rate := want
	if want+busy > cores {
		rate = max(cores*want/(want+busy), 0.05)
	}
	n := int(math.Round(work / rate))
	ss := make([]resource.Sample, n)
	ld := make([]Load, n)
	for i := range ss {
		ss[i] = resource.Sample{Time: start.Add(time.Duration(i) * time.Second), CPU: rate * (1 + 0.02*rng.NormFloat64()), MemoryMB: 100, Avail: resource.All}
		ld[i] = Load{CPU: busy + ss[i].CPU, Cores: cores, Memory: 0.3, Runnable: 1 + busy}
	}
	return Run{Start: start, Samples: ss, Load: ld}
}

// TestLoadStretchesDuration: on runs whose duration depends on the node's
// load, the whole-run sequence model with the load input predicts the
// duration better than without it, and better than the history median.
func TestLoadStretchesDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	type sig struct{ want, work float64 }
	var sigs []sig
	for range 40 {
		sigs = append(sigs, sig{0.6 + 0.4*rng.Float64(), 30 + 100*rng.Float64()})
	}
	busyOf := func() float64 {
		if rng.IntN(2) == 0 {
			return 0.1
		}
		return 1.9
	}
	t0 := time.Unix(1e9, 0)
	var train, test []Run
	for i, s := range sigs {
		for k := range 8 {
			r := contended(rng, s.want, s.work, busyOf(), t0.Add(time.Duration(k)*time.Hour))
			r.Signature = string(rune('A' + i))
			if k < 6 {
				train = append(train, r)
			} else {
				test = append(test, r)
			}
		}
	}
	errOf := map[bool]map[string]float64{}
	for _, noLoad := range []bool{false, true} {
		e, err := NewEngine(Config{NoLoad: noLoad, Scoring: Scoring{First: 1, Tail: 1}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range train {
			e.AddRun(r)
		}
		if _, err := e.Train(context.Background(), TrainConfig{Seq: SeqConfig{Seed: 1, Epochs: 1}}); err != nil {
			t.Fatal(err)
		}
		errOf[noLoad] = map[string]float64{}
		for _, r := range test {
			now := r.Load[0]
			now.CPU -= r.Samples[0].CPU // before it starts: the others only
			ps, err := e.WholeCandidates(r.Features, r.Start, now)
			if err != nil {
				t.Fatal(err)
			}
			for name, p := range ps {
				errOf[noLoad][name] += math.Abs(p.Duration.Seconds()-float64(len(r.Samples))) / float64(len(r.Samples)) / float64(len(test))
			}
		}
	}
	t.Logf("duration error with load %v, without %v", errOf[false], errOf[true])
	with, without, hist := errOf[false][ModelSeq], errOf[true][ModelSeq], errOf[false][ModelHistory]
	if !(with < 0.8*without) || !(with < 0.8*hist) {
		t.Fatalf("duration error with the load %.3f, without %.3f, history %.3f: want the load input to cut it by 20 %%", with, without, hist)
	}
}

// TestWholeSelectionAndMargins: the whole-run candidate each signature is
// served by is the one that scores better on its runs, and the conformal
// margin covers what its runs needed.
func TestWholeSelectionAndMargins(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	e, err := NewEngine(Config{Scoring: Scoring{First: 1, Tail: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1e9, 0)
	// "flat": identical runs, where the history statistic is exact.
	for k := range 5 {
		e.AddRun(Run{Features: Features{Signature: "flat"}, Start: t0.Add(time.Duration(k) * time.Hour), Samples: samples(60, rng, 10)})
	}
	p, err := e.Whole(Features{Signature: "flat"}, t0.Add(10*time.Hour), Load{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != ModelHistory || p.Source != SourceExact || p.UpperQ != 0.95 {
		t.Fatalf("before training: model %s source %s q %v", p.Model, p.Source, p.UpperQ)
	}
	st := e.sigs["flat"]
	if st.scored[candHistory] != 4 || len(st.conf[candHistory][resource.Memory]) != 4 {
		t.Fatalf("scored %v, margins kept %d", st.scored, len(st.conf[candHistory][resource.Memory]))
	}
	// Every run needed at most the history's max: margin ≤ 1 on memory
	// (constant), the upper point never below the median.
	for i, u := range p.Whole[resource.Memory].Upper {
		if u < p.Whole[resource.Memory].P50[i] || u > 101 {
			t.Fatalf("memory upper[%d] = %v (p50 %v)", i, u, p.Whole[resource.Memory].P50[i])
		}
	}
	if p.Duration != 60*time.Second {
		t.Fatalf("duration %v, want 60s", p.Duration)
	}
	if _, err := e.Whole(Features{Signature: "none"}, t0.Add(10*time.Hour), Load{}); err != nil {
		t.Fatal(err) // the prior answers
	}
	empty, _ := NewEngine(Config{}, nil)
	if _, err := empty.Whole(Features{Signature: "none"}, t0, Load{}); !errors.Is(err, ErrNoData) {
		t.Fatalf("empty engine: %v", err)
	}
	// A session starts even with nothing known: the short horizon learns
	// from the run itself.
	s, err := empty.Start(Features{Signature: "none"}, t0, Load{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range samples(30, rng, 10) {
		s.Observe(x)
	}
	if a := s.Next(resource.Memory); !(a >= 100) {
		t.Fatalf("allocation %v for a 100 MB run", a)
	}
	s.Close()
}

func TestStateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	e, _ := NewEngine(Config{}, nil)
	t0 := time.Unix(1e9, 0)
	for k := range 3 {
		e.AddRun(Run{Features: Features{Signature: "s", Code: "c"}, Start: t0.Add(time.Duration(k) * time.Hour), Samples: samples(80, rng, 10)})
	}
	s, _ := e.Start(Features{Signature: "s"}, t0.Add(5*time.Hour), Load{})
	for _, x := range samples(40, rng, 10) {
		s.Observe(x)
	}
	s.Close()
	b := e.MarshalState()
	f, _ := NewEngine(Config{}, nil)
	if err := f.LoadState(b); err != nil {
		t.Fatal(err)
	}
	if b2 := f.MarshalState(); string(b2) != string(b) {
		t.Fatal("state round trip changed it")
	}
	for _, bad := range [][]byte{nil, []byte("PRSS\x02\x00"), b[:len(b)-1], append(b[:len(b):len(b)], 1)} {
		if err := f.LoadState(bad); !errors.Is(err, ErrModel) {
			t.Fatalf("LoadState(%d bytes) = %v", len(bad), err)
		}
	}
}

func FuzzLoadState(f *testing.F) {
	rng := rand.New(rand.NewPCG(10, 10))
	e, _ := NewEngine(Config{}, nil)
	for k := range 2 {
		e.AddRun(Run{Features: Features{Signature: "s"}, Start: time.Unix(int64(k)*3600, 0), Samples: samples(30, rng, 10)})
	}
	f.Add(e.MarshalState())
	f.Add([]byte("PRSS\x01\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, _ := NewEngine(Config{}, nil)
		if err := g.LoadState(b); err != nil && !errors.Is(err, ErrModel) {
			t.Fatalf("error not ErrModel: %v", err)
		}
	})
}
