package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
)

// HistoryOptions configure RunHistory.
type HistoryOptions struct {
	// Runs are the daemon's succeeded runs (daemon.History), any order.
	Runs []predict.Run
	// WholeStep is the daemon's whole-run curve step (serve
	// --predict-step); 0 = 10 sampling steps.
	WholeStep time.Duration
	Split     float64 // share of the history's span that trains; 0 = 0.7
	Seed      int64
	JSON      bool
	Progress  io.Writer
}

// RunHistory replays a daemon's own history: the runs that started in the
// first Split of its span train an engine configured as the daemon's
// (predict.DaemonConfig at the runs' sampling step); the later runs are
// predicted at their start, under the node's load then, and followed
// sample by sample, as the daemon would. The same is done with the load
// input left out (Config.NoLoad), and the whole-run models' duration
// errors with and without it are reported.
func RunHistory(ctx context.Context, o HistoryOptions, stdout io.Writer) error {
	if o.Split == 0 {
		o.Split = 0.7
	}
	if o.Split <= 0 || o.Split >= 1 {
		return fmt.Errorf("%w: split %v not in (0, 1)", ErrOptions, o.Split)
	}
	runs := slices.Clone(o.Runs)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	if len(runs) < 4 {
		return fmt.Errorf("%w: the history holds %d succeeded runs; at least 4 are needed", ErrOptions, len(runs))
	}
	step := samplingStep(runs)
	cut := runs[0].Start.Add(time.Duration(o.Split * float64(runs[len(runs)-1].Start.Sub(runs[0].Start))))
	var train, test []predict.Run
	for _, r := range runs {
		if r.Start.After(cut) {
			test = append(test, r)
		} else {
			train = append(train, r)
		}
	}
	if len(train) == 0 || len(test) == 0 {
		return fmt.Errorf("%w: split at %v leaves one side empty", ErrOptions, o.Split)
	}
	logf := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	logf("eval: %d runs sampled every %v; %d train (to %s), %d test", len(runs), step, len(train), cut.Format(time.RFC3339), len(test))
	whole := o.WholeStep
	if whole <= 0 {
		whole = max(10*step, time.Second)
	}
	dims := []resource.Dim{resource.CPU, resource.Memory, resource.IO, resource.Net}
	var rep *Report
	abl := &Ablation{WithLoad: map[string]float64{}, WithoutLoad: map[string]float64{}}
	for _, noLoad := range []bool{false, true} {
		cfg := predict.DaemonConfig(step, whole)
		cfg.NoLoad = noLoad
		eng, err := predict.NewEngine(cfg, nil)
		if err != nil {
			return err
		}
		for _, r := range train {
			eng.AddRun(r)
		}
		ts, err := eng.Train(ctx, predict.TrainConfig{Seq: predict.SeqConfig{Seed: o.Seed}, Workers: 2})
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		logf("eval: engine (load input %v) trained on %d runs of %d signatures in %v (whole-run model: %v)", !noLoad, ts.Runs, ts.Signatures, ts.Took.Round(time.Millisecond), ts.RunModel)
		tests := make([]*erun, len(test))
		for i, r := range test {
			tests[i] = fromRun(r, step)
		}
		res, err := replayEngine(ctx, eng, tests, dims, false, nil)
		if err != nil {
			return err
		}
		errs := abl.WithLoad
		if noLoad {
			errs = abl.WithoutLoad
		} else {
			rep = &Report{Models: map[string]map[string]Metrics{}, Train: len(train), Test: len(test)}
			for _, d := range dims {
				rep.Models["prescient"] = putDim(rep.Models["prescient"], d, res.next[d])
			}
			rep.Signatures, rep.Enqueue = res.sigs(dims), res.enqueue(dims)
		}
		for name, dz := range res.durErr {
			errs[name] = dz.mean()
		}
	}
	if w := abl.WithoutLoad["prescient"]; w > 0 {
		abl.Ratio = abl.WithLoad["prescient"] / w
	}
	rep.Ablation = abl
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeTable(stdout, dims, rep)
}

func putDim(m map[string]Metrics, d resource.Dim, x Metrics) map[string]Metrics {
	if m == nil {
		m = map[string]Metrics{}
	}
	m[d.String()] = x
	return m
}

// samplingStep is the runs' sampling interval: the median spacing of
// their samples, to the nearest 10 ms (at least 100 ms, the daemon's
// least).
func samplingStep(runs []predict.Run) time.Duration {
	var gaps []time.Duration
	for _, r := range runs {
		for i := 1; i < len(r.Samples) && i < 64; i++ {
			if g := r.Samples[i].Time.Sub(r.Samples[i-1].Time); g > 0 {
				gaps = append(gaps, g)
			}
		}
	}
	if len(gaps) == 0 {
		return time.Second
	}
	slices.Sort(gaps)
	return max(gaps[len(gaps)/2].Round(10*time.Millisecond), 100*time.Millisecond)
}
