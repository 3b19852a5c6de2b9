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

func TestBaselines(t *testing.T) {
	ctx := &RunContext{StepS: 300, Scale: 10}
	tests := []struct {
		name      string
		f         Forecaster
		in        []float64
		wantP50   float64
		wantUpper float64
	}{
		{"last value", &LastValue{}, []float64{1, 5, 3}, 3, 3},
		{"window max", &WindowMax{Window: 2}, []float64{9, 1, 3}, 2, 3},
		{"window max short", &WindowMax{Window: 24}, []float64{4, 2}, 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Begin(ctx)
			for _, v := range tt.in {
				tt.f.Observe(v)
			}
			out := make([]Point, 3)
			tt.f.Forecast(out)
			for _, p := range out {
				if p.P50 != tt.wantP50 || p.Upper != tt.wantUpper {
					t.Fatalf("got %+v, want {%v %v}", p, tt.wantP50, tt.wantUpper)
				}
			}
		})
	}
}

func TestDecayedPercentileUsesHistory(t *testing.T) {
	past := make([]float64, 500)
	for i := range past {
		past[i] = 100
	}
	f := &DecayedPercentile{}
	f.Begin(&RunContext{StepS: 300, Scale: 10, Start: 86400, Past: []Past{{Start: 0, Values: past}}})
	f.Observe(1)
	var out [1]Point
	f.Forecast(out[:])
	if out[0].Upper < 100 || out[0].Upper > 106 {
		t.Fatalf("p95 = %v, want the history's 100 (within a 5 %% bucket)", out[0].Upper)
	}
}

// The envelope must use the previous day's curve at the same time of day:
// a job that jumps at the same step every day is forecast to jump.
func TestEnvelopeSeasonal(t *testing.T) {
	day := func() []float64 {
		v := make([]float64, 288)
		for i := range v {
			v[i] = 10
			if i >= 100 {
				v[i] = 50
			}
		}
		return v
	}
	f := &Envelope{}
	f.Begin(&RunContext{StepS: 300, Scale: 10, Start: 2 * 86400, Past: []Past{{Start: 0, Values: day()}, {Start: 86400, Values: day()}}})
	today := day()
	for i := range 100 {
		f.Observe(today[i])
	}
	var out [2]Point
	f.Forecast(out[:])
	if out[0].P50 != 50 {
		t.Fatalf("forecast for step 100 = %+v, want the seasonal jump to 50", out[0])
	}
	// Without history it stays at the last value.
	g := &Envelope{}
	g.Begin(&RunContext{StepS: 300, Scale: 10})
	for i := range 100 {
		g.Observe(today[i])
	}
	g.Forecast(out[:])
	if out[0].P50 != 10 || !(out[0].Upper > 10) {
		t.Fatalf("no-history forecast %+v", out[0])
	}
}

func TestSelectorPrefersCheapest(t *testing.T) {
	// Candidate 0 under-provisions a rising series; candidate 1 covers it.
	tight := Calibrated{F: &LastValue{}, Margin: 0}
	loose := Calibrated{F: &LastValue{}, Margin: 0.5}
	s := NewSelector([]Calibrated{tight, loose}, CostWeights{})
	s.Begin(&RunContext{Identity: "a", StepS: 1, Scale: 1})
	for i := range 50 {
		s.Observe(float64(i + 1))
	}
	if s.Chosen() != 1 {
		t.Fatalf("chose %d on a rising series, want the covering candidate", s.Chosen())
	}
	// The cost follows the identity into its next run.
	s.Begin(&RunContext{Identity: "a", StepS: 1, Scale: 1})
	if s.Chosen() != 1 {
		t.Fatal("cost not kept across runs of the identity")
	}
	s.Begin(&RunContext{Identity: "b", StepS: 1, Scale: 1})
	for range 50 {
		s.Observe(5) // flat: both cover, the tight one has less slack
	}
	if s.Chosen() != 0 {
		t.Fatalf("chose %d on a flat series, want the tight candidate", s.Chosen())
	}
}

func samples(n int, rng *rand.Rand, level float64) []resource.Sample {
	out := make([]resource.Sample, n)
	for i := range out {
		out[i] = resource.Sample{CPU: level / 100 * (1 + 0.1*rng.NormFloat64()), MemoryMB: 10 * level, IOPS: level / 2, NetInMbps: 1, Avail: resource.All}
	}
	return out
}

func TestEngineColdStartChain(t *testing.T) {
	e, err := NewEngine(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Predict(ctx, Query{Features: Features{Signature: "x"}}); !errors.Is(err, ErrNoData) {
		t.Fatalf("empty engine: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	t0 := time.Unix(1e9, 0)
	e.AddRun(Run{Features: Features{Signature: "a1", Code: "A", InputSize: 100}, Start: t0, Samples: samples(60, rng, 10)})
	e.AddRun(Run{Features: Features{Signature: "a2", Code: "A", InputSize: 200}, Start: t0, Samples: samples(60, rng, 20)})
	e.AddRun(Run{Features: Features{Signature: "b", Code: "B"}, Start: t0, Samples: samples(40, rng, 50)})
	tests := []struct {
		name    string
		f       Features
		want    Source
		memP50  float64 // whole-run p50 memory, first bucket
		tolFrac float64
	}{
		{"exact", Features{Signature: "a1", Code: "A", InputSize: 100}, SourceExact, 100, 0.01},
		{"other size", Features{Signature: "a3", Code: "A", InputSize: 400}, SourceSize, 0, 0},
		{"same code", Features{Signature: "a4", Code: "A"}, SourceCode, 0, 0},
		{"prior", Features{Signature: "z", Code: "Z"}, SourcePrior, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.Predict(ctx, Query{Features: tt.f})
			if err != nil {
				t.Fatal(err)
			}
			if p.Source != tt.want {
				t.Fatalf("source %s, want %s", p.Source, tt.want)
			}
			if len(p.Short[resource.CPU].P50) != 10 || p.Duration != 60*time.Second && p.Duration != 40*time.Second {
				t.Fatalf("short len %d, duration %v", len(p.Short[resource.CPU].P50), p.Duration)
			}
			if tt.memP50 > 0 && math.Abs(p.Whole[resource.Memory].P50[0]-tt.memP50) > tt.tolFrac*tt.memP50 {
				t.Fatalf("whole memory p50 %v, want %v", p.Whole[resource.Memory].P50[0], tt.memP50)
			}
		})
	}
	// The size fit scales: input 400 on a line through (100,100 MB), (200,200 MB) → 400 MB.
	p, _ := e.Predict(ctx, Query{Features: Features{Signature: "a3", Code: "A", InputSize: 400}})
	if m := p.Whole[resource.Memory].P50[0]; m < 350 || m > 450 {
		t.Fatalf("size-scaled memory %v, want ≈ 400", m)
	}
	// The prior carries its margin: more than any run's upper.
	p, _ = e.Predict(ctx, Query{Features: Features{Signature: "z"}})
	if u := p.Whole[resource.Memory].Upper[0]; u < 500*1.5*0.99 {
		t.Fatalf("prior memory upper %v, want ≥ 1.5 × 500", u)
	}
}

func TestEngineSession(t *testing.T) {
	e, _ := NewEngine(Config{}, nil)
	rng := rand.New(rand.NewPCG(2, 2))
	e.AddRun(Run{Features: Features{Signature: "s"}, Start: time.Unix(0, 0), Samples: samples(200, rng, 10)})
	p, err := e.Predict(context.Background(), Query{Features: Features{Signature: "s"}, Samples: samples(50, rng, 10), Horizon: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Short[resource.CPU].P50) != 5 || p.Model == "history" {
		t.Fatalf("model %q, %d points", p.Model, len(p.Short[resource.CPU].P50))
	}
	for d := range resource.NumDims {
		for i := range p.Short[d].P50 {
			if !(p.Short[d].Upper[i] >= p.Short[d].P50[i]) || math.IsNaN(p.Short[d].P50[i]) {
				t.Fatalf("%s point %d: %v / %v", d, i, p.Short[d].P50[i], p.Short[d].Upper[i])
			}
		}
	}
	if c := p.Short[resource.CPU].Upper[0]; c < 0.1 || c > 0.3 {
		t.Fatalf("cpu upper %v cores for a 0.1-core series", c)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
	}{
		{"negative prior", Config{PriorMargin: -1}},
		{"tiny step", Config{Step: time.Microsecond}},
		{"bad margin", Config{Margins: map[string]float64{"envelope": math.NaN()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewEngine(tt.c, nil); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestEnvelopeSeasonalMemo checks the memoised lookup against the plain
// scan at every index of a run, asked in the order and repetition the
// forecasters use (memo slots collide every 8 indexes), across a gap in
// the history and a second Begin.
func TestEnvelopeSeasonalMemo(t *testing.T) {
	past := []Past{
		{Start: 0, Values: make([]float64, 200)},
		{Start: 2 * 86400, Values: make([]float64, 288)}, // day 1 missing
	}
	for p := range past {
		for i := range past[p].Values {
			past[p].Values[i] = float64(1000*p + i)
		}
	}
	for _, start := range []int64{3 * 86400, 4 * 86400} {
		f := &Envelope{}
		f.Begin(&RunContext{StepS: 300, Scale: 1, Start: start, Past: past})
		for n := 1; n <= 400; n++ {
			f.Observe(float64(n))
			for _, i := range []int{n - 1, n, n + 1, n + 9, n, n - 1} {
				v, ok := f.seasonal(i)
				wv, wok := f.seasonalScan(i, 300, 288)
				if v != wv || ok != wok {
					t.Fatalf("start %d, n %d, index %d: memo (%v, %v), scan (%v, %v)", start, n, i, v, ok, wv, wok)
				}
			}
		}
	}
}
