package rnn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randExamples makes n random examples of T steps for m; a fraction nanFrac
// of target values is NaN and, if nanFrac > 0, the first step has no row.
func randExamples(m *Model, rng *rand.Rand, n, T, width int, nanFrac float64) []Example {
	out := make([]Example, n)
	for e := range out {
		ex := Example{Seq: make([][]float64, T), Target: make([][]float64, T)}
		for t := range T {
			ex.Seq[t] = make([]float64, m.cfg.Inputs)
			for i := range ex.Seq[t] {
				ex.Seq[t][i] = rng.NormFloat64()
			}
			if nanFrac > 0 && t == 0 {
				continue // nil row: no loss at this step
			}
			ex.Target[t] = make([]float64, width)
			for i := range ex.Target[t] {
				ex.Target[t][i] = rng.NormFloat64()
				if rng.Float64() < nanFrac {
					ex.Target[t][i] = math.NaN()
				}
			}
		}
		out[e] = ex
	}
	return out
}

// objective is the minibatch objective Train differentiates: the summed
// data loss over N targets divided by N, plus the L2 term.
func objective(m *Model, data []Example) float64 {
	ws := m.newWorkspace(len(data[0].Seq))
	var sum float64
	n := 0
	o := m.cfg.Outputs
	for _, ex := range data {
		m.forwardSeq(ex.Seq, &ws)
		for t := range ex.Seq {
			sum += m.stepLoss(ws.ys[t*o:(t+1)*o], ex.Target[t], nil, 0)
		}
		n += m.countTargets(ex)
	}
	return sum/float64(n) + m.l2(nil)
}

func TestGradientCheck(t *testing.T) {
	for _, cell := range []string{CellGRU, CellLSTM} {
		for _, loss := range []string{"mse", "pinball", "pinball-per-output"} {
			for _, nanFrac := range []float64{0, 0.3} {
				name := fmt.Sprintf("%s/%s/nan=%v", cell, loss, nanFrac)
				t.Run(name, func(t *testing.T) {
					cfg := Config{Inputs: 3, Hidden: 5, Outputs: 2, Seed: 7, Cell: cell, L2: 0.01}
					width := 2
					if loss != "mse" {
						cfg.Quantiles = []float64{0.1, 0.5, 0.9}
						cfg.Outputs = 6
						if loss == "pinball-per-output" {
							width = 6
						}
					}
					m, err := New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(1, 2))
					// Non-zero biases so every gate path is exercised.
					for i := range m.b {
						m.b[i] += 0.3 * rng.NormFloat64()
					}
					for i := range m.c {
						m.c[i] = 0.3 * rng.NormFloat64()
					}
					data := randExamples(m, rng, 3, 6, width, nanFrac)
					n := 0
					for _, ex := range data {
						n += m.countTargets(ex)
					}
					grad := make([]float64, m.NumParams())
					ws := m.newWorkspace(6)
					for _, ex := range data {
						m.accumulate(ex, grad, 1/float64(n), &ws)
					}
					m.l2(grad)

					const eps = 1e-5
					worst, worstI := 0.0, -1
					for i := range m.params {
						p := m.params[i]
						m.params[i] = p + eps
						fp := objective(m, data)
						m.params[i] = p - eps
						fm := objective(m, data)
						m.params[i] = p
						num := (fp - fm) / (2 * eps)
						// Relative error, with an absolute floor so that
						// gradients that are zero (NaN-masked outputs) or
						// tiny compare on rounding error, not on noise.
						rel := math.Abs(grad[i]-num) / math.Max(math.Max(math.Abs(grad[i]), math.Abs(num)), 1e-4)
						if rel > worst {
							worst, worstI = rel, i
						}
					}
					t.Logf("%d params, worst relative error %.2e (param %d)", len(m.params), worst, worstI)
					if worst >= 1e-4 {
						t.Errorf("worst relative error %.3e at param %d >= 1e-4", worst, worstI)
					}
				})
			}
		}
	}
}
