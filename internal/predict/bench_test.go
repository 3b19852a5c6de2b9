package predict

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/rnn"
	"github.com/prescient-sched/prescient/internal/trace"
)

// benchEngine returns an engine with one signature of history and a
// sequence model (untrained weights: the same cost as trained ones) in
// every dimension.
func benchEngine(b *testing.B) *Engine {
	e, err := NewEngine(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	e.AddRun(Run{Features: Features{Signature: "s", Code: "c"}, Start: time.Unix(0, 0), Samples: samples(600, rng, 10)})
	for d := range resource.NumDims {
		m, err := rnn.New(rnn.Config{Inputs: seqInputs, Hidden: defaultSeqHidden, Outputs: SeqHorizons * len(seqQuantiles), Seed: int64(d), Quantiles: seqQuantiles})
		if err != nil {
			b.Fatal(err)
		}
		installSeq(e, d, NewSeq(m))
	}
	return e
}

// BenchmarkPredict is one short-horizon prediction (10 steps, all four
// dimensions, four candidates each) on a live session.
func BenchmarkPredict(b *testing.B) {
	e := benchEngine(b)
	s, err := e.Start(Features{Signature: "s"}, time.Time{}, Load{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, x := range samples(100, rng, 10) {
		s.Observe(x)
	}
	out := make([]Point, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for d := range resource.NumDims {
			s.Forecast(d, out)
		}
	}
}

// BenchmarkObserve is the online update for one sample (all dimensions).
func BenchmarkObserve(b *testing.B) {
	e := benchEngine(b)
	s, err := e.Start(Features{Signature: "s"}, time.Time{}, Load{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	xs := samples(4096, rng, 10)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		s.Observe(xs[i%len(xs)])
		i++
	}
}

// BenchmarkModelState reports the learned state per 1,000 signatures: the
// persisted sequence models (shared by all) plus each signature's selector
// costs. The run history the engine caches is the store's data, reported
// separately as cacheB/1000sig.
func BenchmarkModelState(b *testing.B) {
	for b.Loop() {
		e := benchEngine(b)
		rng := rand.New(rand.NewPCG(4, 4))
		for i := range 1000 {
			f := Features{Signature: string(rune('A'+i%26)) + string(rune(i)), Code: "c"}
			e.AddRun(Run{Features: f, Start: time.Unix(0, 0), Samples: samples(60, rng, 10)})
			s, err := e.Start(f, time.Time{}, Load{})
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range samples(30, rng, 10) {
				s.Observe(x)
			}
			s.Close()
		}
		models, err := e.MarshalModels()
		if err != nil {
			b.Fatal(err)
		}
		// The per-signature state as persisted (selector costs, online
		// margins, whole-run scores and margins) plus the models.
		state := len(models) + len(e.MarshalState())
		var cache int
		for _, st := range e.sigs {
			for _, r := range st.runs {
				for d := range resource.NumDims {
					cache += 4 * len(r.values[d])
				}
			}
		}
		b.ReportMetric(float64(state), "modelB/1000sig")
		b.ReportMetric(float64(cache), "cacheB/1000sig")
	}
}

// BenchmarkTrainGoogle2011 trains the sequence model on the shared Google
// 2011 file as eval does (days 1–5, CPU and memory in parallel on 2
// cores). It needs PRESCIENT_TRACES (e.g. /work/shared/traces).
func BenchmarkTrainGoogle2011(b *testing.B) {
	dir := os.Getenv("PRESCIENT_TRACES")
	if dir == "" {
		b.Skip("set PRESCIENT_TRACES to the shared traces folder")
	}
	runs, err := trace.ReadFile(context.Background(), trace.Google2011, dir+"/google2011_job_daily_cpu_mem.csv")
	if err != nil {
		b.Fatal(err)
	}
	train, _, err := trace.Split(runs, 0.7)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var wg sync.WaitGroup
		for _, d := range []resource.Dim{resource.CPU, resource.Memory} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				byID := map[string][]Past{}
				var sc float64
				var n int
				for _, r := range train {
					for _, v := range r.Values[d] {
						sc += v
						n++
					}
				}
				var sr []SeqRun
				for _, r := range train {
					sr = append(sr, SeqRun{Ctx: &RunContext{Identity: r.Identity, Start: r.Start, StepS: trace.StepSeconds, Scale: sc / float64(n), Past: byID[r.Identity]}, Values: r.Values[d]})
					byID[r.Identity] = append(byID[r.Identity], Past{Start: r.Start, Values: r.Values[d]})
				}
				if _, _, err := TrainSeq(context.Background(), SeqConfig{Seed: 1}, sr); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}

// installSeq installs a sequence model for d in e's models (tests).
func installSeq(e *Engine, d resource.Dim, s *Seq) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := *e.m
	m.seq[d] = s
	e.m = &m
}
