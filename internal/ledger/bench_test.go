package ledger

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// benchCapacity is a large node: 64 cores, 256 GiB, 50k IO ops/s, 10 Gbit/s.
var benchCapacity = resource.Vector{resource.CPU: 64, resource.Memory: 256 << 10, resource.IO: 50000, resource.Net: 10000}

// benchCurves returns n predicted curves of 8 steps, 10 s to 5 min long,
// 0.25-4 cores and 128 MB-8 GB, with p95 1-1.5× p50.
func benchCurves(rng *rand.Rand, n int) []Curve {
	out := make([]Curve, n)
	for i := range out {
		total := 10*time.Second + time.Duration(rng.Int64N(int64(290*time.Second)))
		c := Curve{Steps: make([]Step, 8)}
		cpu := 0.25 + rng.Float64()*3.75
		mem := 128 + rng.Float64()*8000
		for k := range c.Steps {
			f := 0.3 + 0.7*rng.Float64()
			p50 := resource.Vector{resource.CPU: cpu * f, resource.Memory: mem * f, resource.IO: rng.Float64() * 500, resource.Net: rng.Float64() * 100}
			hi := 1 + rng.Float64()*0.5
			c.Steps[k] = Step{Dur: total / 8, P50: p50, PHi: resource.Vector{p50[0] * hi, p50[1] * hi, p50[2] * hi, p50[3] * hi}}
		}
		out[i] = c
	}
	return out
}

// benchLedger returns a default-config ledger (5 s slots, 24 h horizon)
// holding n soft reservations, all asked for as soon as possible.
func benchLedger(b *testing.B, n int, rng *rand.Rand) (*Ledger, []string) {
	b.Helper()
	l, err := New(Config{Capacity: benchCapacity, Start: t0, DefaultTTL: 48 * time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 0, n)
	for i, c := range benchCurves(rng, n) {
		id := fmt.Sprintf("q%d", i)
		_, fit, err := l.SoftReserve(id, c, t0, 0)
		if err != nil || !fit.OK {
			b.Fatalf("prefill %d: %v %v", i, fit, err)
		}
		ids = append(ids, id)
	}
	return l, ids
}

// BenchmarkSoftReserve10k: enqueue with 10,000 reservations in the
// calendar. Each op reserves one new curve at the earliest fit and releases
// the oldest reservation, so the calendar stays at 10,000.
func BenchmarkSoftReserve10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	l, ids := benchLedger(b, 10000, rng)
	curves := benchCurves(rng, 4096)
	names := make([]string, 1<<16)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := names[i%len(names)]
		if i >= len(names) {
			l.Release(id) // the name's previous holder, in case it is still live
		}
		_, fit, err := l.SoftReserve(id, curves[i%len(curves)], t0, 0)
		if err != nil {
			b.Fatal(err)
		}
		if fit.OK {
			ids = append(ids, id)
		}
		l.Release(ids[0])
		ids = ids[1:]
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reserves/s")
}

// BenchmarkEarliestFit10k: the dispatch-time query "when would this curve
// fit?" against 10,000 reservations; reports p50 and p99 latency.
func BenchmarkEarliestFit10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	l, _ := benchLedger(b, 10000, rng)
	curves := benchCurves(rng, 4096)
	lat := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		st := time.Now()
		if _, err := l.EarliestFit(curves[i%len(curves)], at); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(st))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkRelease: releasing one soft reservation out of 10,000+.
func BenchmarkRelease(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	l, _ := benchLedger(b, 10000, rng)
	curves := benchCurves(rng, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	batch := make([]string, 0, len(curves))
	for done := 0; done < b.N; {
		b.StopTimer()
		batch = batch[:0]
		for i := 0; i < len(curves) && done+len(batch) < b.N; i++ {
			id := fmt.Sprintf("r%d-%d", done, i)
			if _, fit, _ := l.SoftReserve(id, curves[i], t0, 0); fit.OK {
				batch = append(batch, id)
			}
		}
		b.StartTimer()
		for _, id := range batch {
			if !l.Release(id) {
				b.Fatal("nothing released")
			}
		}
		done += max(len(batch), 1)
	}
}
