package rnn

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// sineData makes n sequences of T steps of sin(ωt+φ) with random phase; the
// target at t is the value at t+1.
func sineData(seed uint64, n, T int) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	const omega = 0.3
	data := make([]Example, n)
	for e := range data {
		phi := rng.Float64() * 2 * math.Pi
		ex := Example{Seq: make([][]float64, T), Target: make([][]float64, T)}
		for t := range T {
			ex.Seq[t] = []float64{math.Sin(omega*float64(t) + phi)}
			ex.Target[t] = []float64{math.Sin(omega*float64(t+1) + phi)}
		}
		data[e] = ex
	}
	return data
}

func TestLearnsSine(t *testing.T) {
	for _, cell := range []string{CellGRU, CellLSTM} {
		t.Run(cell, func(t *testing.T) {
			m, err := New(Config{Inputs: 1, Hidden: 12, Outputs: 1, Seed: 3, Cell: cell, LearningRate: 0.02})
			if err != nil {
				t.Fatal(err)
			}
			train, held := sineData(1, 32, 24), sineData(2, 16, 24)
			before := m.Loss(held)
			st, err := m.Train(context.Background(), train, 60, 8)
			if err != nil {
				t.Fatal(err)
			}
			after := m.Loss(held)
			if st.Duration <= 0 {
				t.Errorf("duration %v, want > 0", st.Duration)
			}
			t.Logf("held-out MSE %.4g -> %.4g (x%.0f) in %d epochs, %v; train loss first %.4g last %.4g",
				before, after, before/after, st.Epochs, st.Duration, st.Loss[0], st.Loss[len(st.Loss)-1])
			if st.Epochs != 60 || len(st.Loss) != 60 {
				t.Errorf("stats report %d epochs and %d losses, want 60", st.Epochs, len(st.Loss))
			}
			if !(after < before/10) {
				t.Errorf("held-out loss fell from %.4g to %.4g, want more than 10x", before, after)
			}
		})
	}
}

func TestQuantileCalibration(t *testing.T) {
	// y_t = x_t + x_{t-1} + N(0, 0.5²): the p90 of y given the history is
	// the mean + 0.64; the model must find it from the pinball loss alone.
	gen := func(seed uint64, n, T int) []Example {
		rng := rand.New(rand.NewPCG(seed, 9))
		data := make([]Example, n)
		for e := range data {
			ex := Example{Seq: make([][]float64, T), Target: make([][]float64, T)}
			prev := 0.0
			for t := range T {
				x := 2*rng.Float64() - 1
				ex.Seq[t] = []float64{x}
				ex.Target[t] = []float64{x + prev + 0.5*rng.NormFloat64()}
				prev = x
			}
			data[e] = ex
		}
		return data
	}
	qs := []float64{0.1, 0.5, 0.9}
	m, err := New(Config{Inputs: 1, Hidden: 8, Outputs: 3, Seed: 5, Quantiles: qs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Train(context.Background(), gen(1, 64, 32), 60, 16); err != nil {
		t.Fatal(err)
	}
	held := gen(2, 64, 32)
	var below [3]int
	n := 0
	for _, ex := range held {
		for t2, y := range m.Forward(ex.Seq) {
			if !(y[0] <= y[1] && y[1] <= y[2]) {
				t.Fatalf("quantiles cross: %v", y)
			}
			for q := range qs {
				if ex.Target[t2][0] <= y[q] {
					below[q]++
				}
			}
			n++
		}
	}
	for q, tau := range qs {
		cov := float64(below[q]) / float64(n)
		t.Logf("p%.0f covers %.3f of %d held-out targets", 100*tau, cov, n)
		if math.Abs(cov-tau) > 0.05 {
			t.Errorf("p%.0f covers %.3f of held-out targets, want %.2f ± 0.05", 100*tau, cov, tau)
		}
	}
}

func TestTrainDeterministic(t *testing.T) {
	data := sineData(4, 12, 10)
	for _, cell := range []string{CellGRU, CellLSTM} {
		t.Run(cell, func(t *testing.T) {
			trained := func(seed int64) *Model {
				m, err := New(Config{Inputs: 1, Hidden: 6, Outputs: 1, Seed: seed, Cell: cell, L2: 1e-4})
				if err != nil {
					t.Fatal(err)
				}
				// Two calls: Adam state and the shuffle stream carry over.
				for range 2 {
					if _, err := m.Train(context.Background(), data, 3, 5); err != nil {
						t.Fatal(err)
					}
				}
				return m
			}
			a, b, c := trained(1), trained(1), trained(2)
			for i := range a.params {
				if math.Float64bits(a.params[i]) != math.Float64bits(b.params[i]) {
					t.Fatalf("same seed: param %d differs: %v vs %v", i, a.params[i], b.params[i])
				}
			}
			differ := 0
			for i := range a.params {
				if a.params[i] != c.params[i] {
					differ++
				}
			}
			if differ < len(a.params)/2 {
				t.Errorf("different seeds: only %d of %d params differ", differ, len(a.params))
			}
		})
	}
}

func TestShuffleDependsOnSeed(t *testing.T) {
	// Same initial weights, different shuffle streams: the seed must steer
	// the minibatch order too, not only the initialisation.
	data := sineData(4, 12, 10)
	m1, _ := New(Config{Inputs: 1, Hidden: 6, Outputs: 1, Seed: 1})
	m2, _ := New(Config{Inputs: 1, Hidden: 6, Outputs: 1, Seed: 2})
	copy(m2.params, m1.params)
	for _, m := range []*Model{m1, m2} {
		if _, err := m.Train(context.Background(), data, 2, 3); err != nil {
			t.Fatal(err)
		}
	}
	same := true
	for i := range m1.params {
		same = same && m1.params[i] == m2.params[i]
	}
	if same {
		t.Error("different shuffle seeds gave identical weights")
	}
}

// countdownCtx reports Canceled once Err has been called n times.
type countdownCtx struct {
	context.Context
	n atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestTrainCancel(t *testing.T) {
	data := sineData(4, 8, 10)
	tests := []struct {
		name       string
		checks     int64 // ctx.Err calls before it reports Canceled
		wantEpochs int
	}{
		{"before start", 0, 0},
		{"mid epoch 3", 2*4 + 1, 2}, // 4 minibatches per epoch
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := New(Config{Inputs: 1, Hidden: 4, Outputs: 1, Seed: 1})
			before, _ := m.MarshalBinary()
			ctx := &countdownCtx{Context: context.Background()}
			ctx.n.Store(tt.checks)
			st, err := m.Train(ctx, data, 100, 2)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if st.Epochs != tt.wantEpochs || len(st.Loss) != tt.wantEpochs {
				t.Errorf("epochs %d, losses %d, want %d", st.Epochs, len(st.Loss), tt.wantEpochs)
			}
			after, _ := m.MarshalBinary()
			if changed := !bytes.Equal(before, after); changed != (tt.checks > 0) {
				t.Errorf("weights changed = %v, want %v", changed, tt.checks > 0)
			}
		})
	}
	t.Run("real context", func(t *testing.T) {
		m, _ := New(Config{Inputs: 1, Hidden: 4, Outputs: 1, Seed: 1})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := m.Train(ctx, data, 1, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestTrainRejects(t *testing.T) {
	nan := math.NaN()
	ok := Example{Seq: [][]float64{{1, 2}}, Target: [][]float64{{1}}}
	tests := []struct {
		name          string
		data          []Example
		epochs, batch int
		want          error
	}{
		{"no data", nil, 1, 1, ErrExample},
		{"zero epochs", []Example{ok}, 0, 1, ErrConfig},
		{"zero batch", []Example{ok}, 1, 0, ErrConfig},
		{"empty seq", []Example{{}}, 1, 1, ErrExample},
		{"short target", []Example{{Seq: [][]float64{{1, 2}, {3, 4}}, Target: [][]float64{{1}}}}, 1, 1, ErrExample},
		{"wide input", []Example{{Seq: [][]float64{{1, 2, 3}}, Target: [][]float64{{1}}}}, 1, 1, ErrExample},
		{"nan input", []Example{{Seq: [][]float64{{nan, 2}}, Target: [][]float64{{1}}}}, 1, 1, ErrExample},
		{"inf target", []Example{{Seq: [][]float64{{1, 2}}, Target: [][]float64{{math.Inf(1)}}}}, 1, 1, ErrExample},
		{"wide target", []Example{{Seq: [][]float64{{1, 2}}, Target: [][]float64{{1, 2}}}}, 1, 1, ErrExample},
		{"nan target ok", []Example{ok, {Seq: [][]float64{{1, 2}}, Target: [][]float64{{nan}}}}, 1, 1, nil},
		{"nil target row ok", []Example{ok, {Seq: [][]float64{{1, 2}}, Target: [][]float64{nil}}}, 1, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := New(Config{Inputs: 2, Hidden: 3, Outputs: 1})
			_, err := m.Train(context.Background(), tt.data, tt.epochs, tt.batch)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTrainDiverged(t *testing.T) {
	// Targets near the float64 limit overflow the squared error.
	m, _ := New(Config{Inputs: 1, Hidden: 2, Outputs: 1})
	before, _ := m.MarshalBinary()
	data := []Example{{Seq: [][]float64{{1}}, Target: [][]float64{{1e300}}}}
	if _, err := m.Train(context.Background(), data, 1, 1); !errors.Is(err, ErrDiverged) {
		t.Fatalf("err = %v, want ErrDiverged", err)
	}
	if after, _ := m.MarshalBinary(); !bytes.Equal(before, after) {
		t.Error("weights changed by a diverged step")
	}
}

func TestLossNoTargets(t *testing.T) {
	m, _ := New(Config{Inputs: 1, Hidden: 2, Outputs: 1})
	data := []Example{{Seq: [][]float64{{1}}, Target: [][]float64{{math.NaN()}}}}
	if l := m.Loss(data); !math.IsNaN(l) {
		t.Errorf("Loss with no targets = %v, want NaN", l)
	}
	st, err := m.Train(context.Background(), data, 2, 1)
	if err != nil || st.Epochs != 2 || !math.IsNaN(st.Loss[0]) {
		t.Errorf("Train with no targets: %+v, %v", st, err)
	}
}
