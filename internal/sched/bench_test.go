package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
)

// benchCapacity is a large node: 64 cores, 256 GiB, 50k IO ops/s, 10 Gbit/s
// (the ledger's benchmark node).
var benchCapacity = resource.Vector{64, 256 << 10, 50000, 10000}

// benchCurves are the ledger benchmark's: 8 steps, 10 s to 5 min,
// 0.25-4 cores, 128 MB-8 GB, p95 1-1.5× p50.
func benchCurves(rng *rand.Rand, n int) []ledger.Curve {
	out := make([]ledger.Curve, n)
	for i := range out {
		total := 10*time.Second + time.Duration(rng.Int64N(int64(290*time.Second)))
		c := ledger.Curve{Steps: make([]ledger.Step, 8)}
		cpu := 0.25 + rng.Float64()*3.75
		mem := 128 + rng.Float64()*8000
		for k := range c.Steps {
			f := 0.3 + 0.7*rng.Float64()
			p50 := resource.Vector{cpu * f, mem * f, rng.Float64() * 500, rng.Float64() * 100}
			hi := 1 + rng.Float64()*0.5
			c.Steps[k] = ledger.Step{Dur: total / 8, P50: p50, PHi: resource.Vector{p50[0] * hi, p50[1] * hi, p50[2] * hi, p50[3] * hi}}
		}
		out[i] = c
	}
	return out
}

// benchScheduler queues queued tasks on the bench node; depth is the
// PlanDepth (0: the default).
func benchScheduler(b testing.TB, rng *rand.Rand, queued, depth int) (*Scheduler, *fakeClock, mapPredictor) {
	b.Helper()
	led, err := ledger.New(ledger.Config{Capacity: benchCapacity, Start: t0, DefaultTTL: 48 * time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	pred := mapPredictor{}
	for i, c := range benchCurves(rng, 4096) {
		pred[fmt.Sprint("sig", i)] = c
	}
	clk := &fakeClock{now: t0}
	s, err := New(Config{Ledger: led, Predictor: pred, Executor: newFakeExec(), Clock: clk, TTL: 48 * time.Hour, PlanDepth: depth})
	if err != nil {
		b.Fatal(err)
	}
	for i := range queued {
		if _, err := s.Enqueue(Task{ID: fmt.Sprint("q", i), Features: Features{Signature: fmt.Sprint("sig", i%4096)}}); err != nil {
			b.Fatal(err)
		}
	}
	return s, clk, pred
}

// BenchmarkEnqueue10k: predict + soft reserve + queue with 10,000 queued.
// Each op enqueues one task and cancels the oldest, so the queue stays at
// 10,000. At the default planning depth the new task queues deferred and
// the cancel plans the first deferred task — one soft reserve per op, in a
// calendar 512 tasks deep; "unbounded" plans every task (a soft reserve
// 10,000 tasks deep per op).
func BenchmarkEnqueue10k(b *testing.B) {
	for _, c := range []struct {
		name  string
		depth int
	}{{"depth=512", 0}, {"unbounded", 1 << 30}} {
		b.Run(c.name, func(b *testing.B) { benchEnqueue(b, c.depth) })
	}
}

func benchEnqueue(b *testing.B, depth int) {
	rng := rand.New(rand.NewPCG(1, 2))
	s, _, _ := benchScheduler(b, rng, 10000, depth)
	ids := make([]string, 0, 1<<20)
	for i := range 10000 {
		ids = append(ids, fmt.Sprint("q", i))
	}
	names := make([]string, 1<<16)
	for i := range names {
		names[i] = fmt.Sprint("n", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := names[i%len(names)]
		if _, err := s.Enqueue(Task{ID: id, Features: Features{Signature: fmt.Sprint("sig", i%4096)}}); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
		s.Cancel(ids[0])
		ids = ids[1:]
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enqueues/s")
}

// BenchmarkDispatch10k: one dispatch decision with 10,000 reservations in
// the calendar, a second later each time; every task started is finished
// and replaced, so the calendar stays at 10,000. Reports the p99 latency.
func BenchmarkDispatch10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	s, clk, _ := benchScheduler(b, rng, 10000, 1<<30) // every task planned
	now := t0
	var lat []time.Duration
	next := 10000
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Second)
		clk.Set(now)
		t := time.Now()
		started := s.Dispatch(0)
		lat = append(lat, time.Since(t))
		for _, st := range started {
			if _, err := s.Finish(st.ID, Outcome{}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Enqueue(Task{ID: fmt.Sprint("q", next), Features: Features{Signature: fmt.Sprint("sig", next%4096)}}); err != nil {
				b.Fatal(err)
			}
			next++
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkReplan10k: one forced Replan (ReplanWindow = 64 tasks released
// and re-reserved in priority order) with 10,000 reservations.
func BenchmarkReplan10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	s, clk, _ := benchScheduler(b, rng, 10000, 1<<30) // every task planned
	now := t0
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Second)
		clk.Set(now)
		s.Replan()
	}
}

// BenchmarkMonitor: one monitor pass (Observe) over 32 running tasks,
// usage wandering around the prediction so that some samples adjust.
func BenchmarkMonitor(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	s, clk, _ := benchScheduler(b, rng, 0, 0)
	for i := range 32 {
		if _, err := s.Enqueue(Task{ID: fmt.Sprint("r", i), Features: Features{Signature: fmt.Sprint("sig", i)}}); err != nil {
			b.Fatal(err)
		}
	}
	var ids []string
	for _, st := range s.Dispatch(0) {
		ids = append(ids, st.ID)
	}
	if len(ids) == 0 {
		b.Fatal("nothing started")
	}
	use := make([]resource.Vector, len(ids))
	for i, id := range ids {
		v, _ := s.Get(id)
		use[i] = v.Limits.Vector()
	}
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(100 * time.Millisecond)
		clk.Set(now)
		for i, id := range ids {
			f := 0.5 + rng.Float64()*0.4
			if _, err := s.Observe(id, Observation{At: now, Used: resource.Vector{use[i][0] * f, use[i][1] * f}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ids)), "ns/task")
	b.ReportMetric(float64(len(ids)), "tasks")
}
