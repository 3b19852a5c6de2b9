package predict

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/rnn"
)

// The run-level sequence model sizes a run before it starts. Its sequence
// is a signature's finished runs, oldest first; at step k it reads run
// k−1 (duration, mean and peak per dimension, each as a log-ratio to the
// median over runs 0…k−1), the node's load during run k−1 and the load
// run k starts under, and predicts run k's quantities as quantiles (p50,
// p95) of their log-ratio to that same median: 0 is the history
// statistic, so the model learns corrections to it — a trend, a larger
// input, a busier node that stretches a CPU-bound run.

// Targets of the run model, in order: duration, then per dimension the
// run's mean and its peak.
const runTargets = 1 + 2*int(resource.NumDims)

// runInputs: the previous run's targets, its load, the load now, the
// number of runs seen, the input size.
const runInputs = runTargets + 2*NumLoad + 2

// runQuantiles are the quantiles the run model predicts.
var runQuantiles = []float64{0.5, 0.95}

// runHidden is the run model's hidden size: its data are a few runs per
// signature, so a small state.
const runHidden = 8

// runSummary is what the run model knows of one finished run.
type runSummary struct {
	steps      float64 // duration in samples
	mean, peak [resource.NumDims]float64
	load       loadVec // mean over the run, its own CPU subtracted
	input      float64
}

func (r *runSummary) target(j int) float64 {
	if j == 0 {
		return r.steps
	}
	d := (j - 1) / 2
	if (j-1)%2 == 0 {
		return r.mean[d]
	}
	return r.peak[d]
}

// runFloors are the smallest values the run targets are taken at (so a
// zero mean has a finite log-ratio): one step, and 1e-3 of the dimension's
// scale.
type runFloors [runTargets]float64

func floorsOf(scale [resource.NumDims]float64) runFloors {
	var f runFloors
	f[0] = 1
	for d := range resource.NumDims {
		v := max(scale[d]*1e-3, 1e-9)
		f[1+2*d], f[2+2*d] = v, v
	}
	return f
}

// runRef is the history statistic the run model corrects: per target the
// median over runs, floored.
type runRef struct {
	t     [runTargets]float64
	input float64
}

func refOf(runs []runSummary, fl *runFloors) runRef {
	var ref runRef
	buf := make([]float64, len(runs))
	for j := range runTargets {
		for i := range runs {
			buf[i] = runs[i].target(j)
		}
		ref.t[j] = max(median(buf), fl[j])
	}
	for i := range runs {
		buf[i] = runs[i].input
	}
	ref.input = median(buf)
	return ref
}

// median of v (sorts v); 0 when empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func logRatio(x, ref, floor float64) float64 {
	return min(max(math.Log(max(x, floor)/ref), -3), 3)
}

// runInputsFor writes into x the inputs that predict run k from runs[:k]
// (k ≥ 1) under load now (the load run k starts under) with input size in.
func runInputsFor(x []float64, runs []runSummary, k int, now loadVec, in float64, fl *runFloors, noLoad bool) {
	ref := refOf(runs[:k], fl)
	prev := &runs[k-1]
	for j := range runTargets {
		x[j] = logRatio(prev.target(j), ref.t[j], fl[j])
	}
	for i := range NumLoad {
		x[runTargets+i], x[runTargets+NumLoad+i] = float64(prev.load[i]), float64(now[i])
		if noLoad {
			x[runTargets+i], x[runTargets+NumLoad+i] = 0, 0
		}
	}
	x[runTargets+2*NumLoad] = math.Log(float64(k)) / 2
	x[runTargets+2*NumLoad+1] = min(max(math.Log((in+1)/(ref.input+1)), -3), 3)
}

// RunModel is the run-level sequence model (see runTargets): a GRU from
// internal/rnn over a signature's runs. Its weights are read-only once
// trained; predict needs the caller's scratch.
type RunModel struct {
	m      *rnn.Model
	noLoad bool // trained and used without the load inputs (the ablation)
}

// runScratch is what one prediction needs; the Engine keeps one under its
// lock.
type runScratch struct {
	st  *rnn.State
	x   []float64
	out []float64
}

func (rm *RunModel) scratch() *runScratch {
	return &runScratch{st: rm.m.NewState(), x: make([]float64, runInputs), out: make([]float64, runTargets*len(runQuantiles))}
}

// prefix returns the model's state after the steps that depend on runs
// alone (all but the last, which reads the load now): what a signature's
// cache keeps until a run is added.
func (rm *RunModel) prefix(sc *runScratch, runs []runSummary, fl *runFloors) *rnn.State {
	st := rm.m.NewState()
	for k := 1; k < len(runs); k++ {
		runInputsFor(sc.x, runs, k, runs[k].load, runs[k].input, fl, rm.noLoad)
		rm.m.Step(st, sc.x, nil)
	}
	return st
}

// predict returns, for the run that follows runs (at least one) under load
// now with input size in, the p50 and p95 log-ratios of each target to the
// median over runs, in q[j][0] and q[j][1]. pre is prefix(runs), or nil.
func (rm *RunModel) predict(sc *runScratch, pre *rnn.State, runs []runSummary, now loadVec, in float64, fl *runFloors) (q [runTargets][2]float64) {
	if pre == nil {
		pre = rm.prefix(sc, runs, fl)
	}
	sc.st.CopyFrom(pre)
	runInputsFor(sc.x, runs, len(runs), now, in, fl, rm.noLoad)
	rm.m.Step(sc.st, sc.x, sc.out)
	for j := range runTargets {
		q[j][0], q[j][1] = sc.out[2*j], sc.out[2*j+1]
	}
	return q
}

// RunModelConfig configures trainRunModel.
type RunModelConfig struct {
	Seed   int64
	NoLoad bool // leave the load inputs out (ablation)
	Epochs int  // 0: enough passes for about 2 M steps, 20 to 400
}

// trainRunModel fits the run model on the signatures' run histories
// (each oldest first). It fails with ErrNoData when no signature has two
// runs.
func trainRunModel(ctx context.Context, cfg RunModelConfig, sigs [][]runSummary, fl *runFloors) (*RunModel, rnn.TrainStats, error) {
	var data []rnn.Example
	steps := 0
	for _, runs := range sigs {
		if len(runs) < 2 {
			continue
		}
		var ex rnn.Example
		for k := 1; k < len(runs); k++ {
			x := make([]float64, runInputs)
			runInputsFor(x, runs, k, runs[k].load, runs[k].input, fl, cfg.NoLoad)
			ref := refOf(runs[:k], fl)
			y := make([]float64, runTargets)
			for j := range runTargets {
				y[j] = logRatio(runs[k].target(j), ref.t[j], fl[j])
			}
			ex.Seq = append(ex.Seq, x)
			ex.Target = append(ex.Target, y)
		}
		steps += len(ex.Seq)
		data = append(data, ex)
	}
	if len(data) == 0 {
		return nil, rnn.TrainStats{}, fmt.Errorf("train run model: no signature with two runs: %w", ErrNoData)
	}
	m, err := rnn.New(rnn.Config{
		Inputs: runInputs, Hidden: runHidden, Outputs: runTargets * len(runQuantiles),
		Seed: cfg.Seed, LearningRate: 1e-2, Quantiles: runQuantiles, L2: 1e-4,
	})
	if err != nil {
		return nil, rnn.TrainStats{}, fmt.Errorf("new run model: %w", err)
	}
	epochs := cfg.Epochs
	if epochs <= 0 {
		epochs = min(max(2_000_000/max(steps, 1), 20), 400)
	}
	st, err := m.Train(ctx, data, epochs, 32)
	if err != nil {
		return nil, st, fmt.Errorf("train run model: %w", err)
	}
	return &RunModel{m: m, noLoad: cfg.NoLoad}, st, nil
}
