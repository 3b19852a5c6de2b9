package predict

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
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

// installRunModel installs an untrained whole-run model (the same work as
// a trained one) in e.
func installRunModel(b *testing.B, e *Engine) {
	m, err := rnn.New(rnn.Config{Inputs: runInputs, Hidden: runHidden, Outputs: runTargets * len(runQuantiles), Seed: 1, Quantiles: runQuantiles})
	if err != nil {
		b.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	mm := *e.m
	mm.run = &RunModel{m: m}
	e.m = &mm
}

// historyEngine is an engine with sigs signatures of runs runs each, of
// n samples with the node's load, and the sequence and whole-run models
// installed (untrained weights: the same cost as trained ones).
func historyEngine(b *testing.B, sigs, runs, n int) (*Engine, []Features) {
	e := benchEngine(b)
	installRunModel(b, e)
	rng := rand.New(rand.NewPCG(11, 11))
	t0 := time.Unix(1e9, 0)
	fs := make([]Features, sigs)
	for i := range sigs {
		fs[i] = Features{Signature: fmt.Sprintf("sig%05d", i), Code: fmt.Sprintf("code%04d", i/4), InputSize: float64(1 + i%7)}
		level := 5 + 50*rng.Float64()
		for k := range runs {
			ss := samples(n+rng.IntN(n/2+1), rng, level)
			ld := make([]Load, len(ss))
			busy := 2 * rng.Float64()
			for j := range ld {
				ld[j] = Load{CPU: busy, Cores: 2, Memory: 0.4, Runnable: 1 + busy}
			}
			e.AddRun(Run{Features: fs[i], Start: t0.Add(time.Duration(k)*time.Hour + time.Duration(i)*time.Second), Samples: ss, Load: ld})
		}
	}
	return e, fs
}

// BenchmarkWhole10k is the enqueue-time prediction (Engine.Whole, what the
// scheduler's Predictor calls under its lock) with 10,000 signatures of 4
// runs each in the engine: warm (the signature's history statistics
// cached, as for every enqueue but the first after a run was added) and
// cold (recomputed, the first enqueue after a run).
func BenchmarkWhole10k(b *testing.B) {
	e, fs := historyEngine(b, 10_000, 4, 60)
	at := time.Unix(2e9, 0)
	l := Load{CPU: 1, Cores: 2, Memory: 0.5}
	for _, f := range fs {
		if _, err := e.Whole(f, at, l); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := e.Whole(fs[i%len(fs)], at, l); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			f := fs[i%len(fs)]
			e.mu.Lock()
			e.sigs[f.Signature].stats = nil
			e.mu.Unlock()
			if _, err := e.Whole(f, at, l); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
}

// BenchmarkTrain100k trains and calibrates the engine (as the daemon's
// background trainer does) on 100,000 runs: 12,500 signatures of 8 runs
// of 60–90 samples with the node's load. Run it with -benchtime 1x, under
// nice -n 10 as the daemon's trainer runs; TRAIN_WORKERS sets the
// dimensions trained at once (default 1, as the daemon).
func BenchmarkTrain100k(b *testing.B) {
	e, _ := historyEngine(b, 12_500, 8, 60)
	workers := 1
	if w, err := strconv.Atoi(os.Getenv("TRAIN_WORKERS")); err == nil {
		workers = w
	}
	b.ResetTimer()
	for b.Loop() {
		c0 := cpuTime()
		st, err := e.Train(context.Background(), TrainConfig{Seq: SeqConfig{Seed: 1}, Workers: workers})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Runs), "runs")
		b.ReportMetric(st.Took.Seconds(), "s/train")
		b.ReportMetric((cpuTime() - c0).Seconds(), "cpu-s/train")
	}
}

// BenchmarkDispatchWhileTraining measures the latency of what dispatch
// asks of the engine — an enqueue-time prediction and a running task's
// sample (Observe, then its allocation) — every 2 ms for 20 s, with and
// without a training of 100,000 runs going on in the background on its
// own goroutine on a thread reniced to 10 (one worker, as the daemon's),
// and reports the p50 and p99. Run it with -benchtime 1x.
func BenchmarkDispatchWhileTraining(b *testing.B) {
	e, fs := historyEngine(b, 12_500, 8, 60)
	rng := rand.New(rand.NewPCG(12, 12))
	live := samples(4096, rng, 20)
	measure := func(b *testing.B, d time.Duration) (p50, p99 time.Duration) {
		s, err := e.Start(fs[0], time.Unix(2e9, 0), Load{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var lat []time.Duration
		end := time.Now().Add(d)
		for i := 0; time.Now().Before(end); i++ {
			t := time.Now()
			if _, err := e.Whole(fs[(i*7919)%len(fs)], time.Unix(2e9, 0), Load{CPU: 1, Cores: 2}); err != nil {
				b.Fatal(err)
			}
			s.Observe(live[i%len(live)])
			_ = s.Next(resource.Memory)
			lat = append(lat, time.Since(t))
			time.Sleep(2 * time.Millisecond)
		}
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*99/100]
	}
	for b.Loop() {
		p50, p99 := measure(b, 20*time.Second)
		b.ReportMetric(float64(p50.Microseconds()), "idle-p50-µs")
		b.ReportMetric(float64(p99.Microseconds()), "idle-p99-µs")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan time.Duration, 1)
		go func() {
			lowerThread() // as the daemon's trainer
			st, _ := e.Train(ctx, TrainConfig{Seq: SeqConfig{Seed: 1}})
			done <- st.Took
		}()
		p50, p99 = measure(b, 20*time.Second)
		cancel()
		<-done
		b.ReportMetric(float64(p50.Microseconds()), "train-p50-µs")
		b.ReportMetric(float64(p99.Microseconds()), "train-p99-µs")
	}
}
