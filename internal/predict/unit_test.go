package predict

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// TestEngineCPUUnitFree checks that no constant of the engine assumes a
// unit for CPU: fed CPU in percent of a core (as before CPU was counted in
// cores), it predicts exactly 100 times what it predicts fed cores, and
// serves the same models; the other dimensions are untouched.
func TestEngineCPUUnitFree(t *testing.T) {
	pct := func(ss []resource.Sample) []resource.Sample {
		out := make([]resource.Sample, len(ss))
		for i, s := range ss {
			s.CPU *= 100
			out[i] = s
		}
		return out
	}
	rng := rand.New(rand.NewPCG(3, 3))
	t0 := time.Unix(1e9, 0)
	type run struct {
		f  Features
		ss []resource.Sample
	}
	var runs []run
	for i, sig := range []string{"a1", "a1", "a2", "b", "c"} {
		level := 5 + 40*rng.Float64()
		f := Features{Signature: sig, Code: sig[:1], InputSize: float64(100 * (i + 1))}
		runs = append(runs, run{f, samples(60+20*i, rng, level)})
	}
	live := samples(40, rng, 30)

	engines := [2]*Engine{}
	for k := range engines {
		e, err := NewEngine(Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			ss := r.ss
			if k == 1 {
				ss = pct(ss)
			}
			e.AddRun(Run{Features: r.f, Start: t0, Samples: ss})
		}
		engines[k] = e
	}
	close := func(cores, pct float64) bool {
		return math.Abs(cores*100-pct) <= 1e-5*max(math.Abs(pct), 1e-9)
	}
	check := func(t *testing.T, a, b Prediction) {
		t.Helper()
		if a.Source != b.Source || a.Model != b.Model || a.Duration != b.Duration || a.DurationUpper != b.DurationUpper {
			t.Fatalf("cores: %s %s %v %v; percent: %s %s %v %v", a.Source, a.Model, a.Duration, a.DurationUpper, b.Source, b.Model, b.Duration, b.DurationUpper)
		}
		for d := range resource.NumDims {
			for _, c := range []struct {
				name string
				a, b Curve
			}{{"short", a.Short[d], b.Short[d]}, {"whole", a.Whole[d], b.Whole[d]}} {
				if len(c.a.P50) != len(c.b.P50) || len(c.a.Upper) != len(c.b.Upper) || c.a.Step != c.b.Step {
					t.Fatalf("%s %s: shapes differ", c.name, d)
				}
				for i := range c.a.P50 {
					ok := c.a.P50[i] == c.b.P50[i] && c.a.Upper[i] == c.b.Upper[i]
					if d == resource.CPU {
						ok = close(c.a.P50[i], c.b.P50[i]) && close(c.a.Upper[i], c.b.Upper[i])
					}
					if !ok {
						t.Fatalf("%s %s[%d]: cores %v / %v, percent %v / %v", c.name, d, i, c.a.P50[i], c.a.Upper[i], c.b.P50[i], c.b.Upper[i])
					}
				}
			}
		}
	}
	for _, f := range []Features{
		{Signature: "a1", Code: "a", InputSize: 100}, // exact
		{Signature: "a9", Code: "a", InputSize: 900}, // size
		{Signature: "b9", Code: "b"},                 // code
		{Signature: "z", Code: "z"},                  // prior
	} {
		t.Run(f.Signature, func(t *testing.T) {
			for _, withLive := range []bool{false, true} {
				var p [2]Prediction
				for k, e := range engines {
					q := Query{Features: f}
					if withLive {
						q.Samples = live
						if k == 1 {
							q.Samples = pct(live)
						}
					}
					var err error
					if p[k], err = e.Predict(context.Background(), q); err != nil {
						t.Fatal(err)
					}
				}
				if withLive && p[0].Model == "history" {
					t.Fatal("live samples not observed")
				}
				check(t, p[0], p[1])
			}
		})
	}
}

// TestFeaturizerUnitFree: the sequence model's inputs are relative to the
// run's level and scale, so models trained on (or persisted from) CPU in
// percent serve CPU in cores unchanged.
func TestFeaturizerUnitFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	past := Past{Start: -86400, Values: make([]float64, 400)}
	for i := range past.Values {
		past.Values[i] = 0.3 + 0.2*rng.Float64()
	}
	scaled := Past{Start: past.Start, Values: make([]float64, len(past.Values))}
	for i, v := range past.Values {
		scaled.Values[i] = v * 100
	}
	var z [2]featurizer
	z[0].begin(&RunContext{StepS: 300, Past: []Past{past}, Scale: 0.4})
	z[1].begin(&RunContext{StepS: 300, Past: []Past{scaled}, Scale: 40})
	var x [2][seqInputs]float64
	for i := range 100 {
		v := 0.2 + 0.5*rng.Float64()
		z[0].observe(v)
		z[1].observe(v * 100)
		z[0].features(x[0][:])
		z[1].features(x[1][:])
		for j := range x[0] {
			if math.Abs(x[0][j]-x[1][j]) > 1e-9 {
				t.Fatalf("step %d feature %d: %v in cores, %v in percent", i, j, x[0][j], x[1][j])
			}
		}
	}
}

// TestMarginOfSpreadFloor: a spread margin is never under −1, the least
// the engine and a persisted model accept (an over-predicting model's
// quantile can fall further below its median).
func TestMarginOfSpreadFloor(t *testing.T) {
	ratios := []float64{-3, -2.5, -2, -1.9, -1.8, -1.7, -1.6, -1.5, -1.4, -1.3}
	m, err := marginOf(&Envelope{}, ratios, Scoring{First: 0, Tail: 1}, 0.1)
	if err != nil || m != -1 {
		t.Fatalf("margin %v, %v; want -1", m, err)
	}
	m, err = marginOf(&Envelope{}, []float64{-0.5, 0.2, 0.4}, Scoring{First: 0, Tail: 1}, 0.4)
	if err != nil || m != 0.2 {
		t.Fatalf("margin %v, %v; want 0.2", m, err)
	}
}
