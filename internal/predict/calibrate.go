package predict

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// ReplayRun is one finished run of one dimension, replayed to calibrate a
// forecaster: its context, its values and, where measured, the node's load
// features at each step. Steps before ScoreFrom are context only.
type ReplayRun struct {
	Ctx       *RunContext
	Values    []float64
	Load      []loadVec // per step; nil = unknown (zero)
	ScoreFrom int
}

// Scoring bounds the next-step rows a replay scores: steps t = First …
// n−1−Tail of each run (allocation for t+1), and not before the run's
// ScoreFrom−1. The public-trace protocol (package eval) is {24, 6}.
type Scoring struct {
	First, Tail int
}

// loadSetter is implemented by forecasters that take the node's load.
type loadSetter interface{ setLoad(loadVec) }

// Replay feeds every run to fc and calls out at each scored step with the
// forecast of the next len(pts) steps.
func Replay(ctx context.Context, fc Forecaster, runs []ReplayRun, sc Scoring, pts []Point, out func(r *ReplayRun, t int, pts []Point)) error {
	ls, _ := fc.(loadSetter)
	for i := range runs {
		if i%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		r := &runs[i]
		fc.Begin(r.Ctx)
		n := len(r.Values)
		from := max(sc.First, r.ScoreFrom-1)
		for t := 0; t <= n-1-sc.Tail; t++ {
			if ls != nil {
				var l loadVec
				if t < len(r.Load) {
					l = r.Load[t]
				}
				ls.setLoad(l)
			}
			fc.Observe(r.Values[t])
			if t >= from {
				fc.Forecast(pts)
				out(r, t, pts)
			}
		}
	}
	return nil
}

// Calibrate returns the smallest margin under which at most share of the
// scored next-step samples of runs exceed fc's allocation (floored at
// floor), for fc's MarginKind. It fails with ErrNoData when no step is
// scored and when more than share of the steps have no spread to scale.
func Calibrate(ctx context.Context, fc Forecaster, runs []ReplayRun, sc Scoring, share, floor float64) (float64, error) {
	ms, errs, err := CalibrateAll(ctx, []Forecaster{fc}, runs, sc, share, floor)
	if err != nil {
		return 0, err
	}
	return ms[0], errs[0]
}

// CalibrateAll is Calibrate for several forecasters in one pass over the
// runs: margins[i] and errs[i] are fcs[i]'s; err is the replay's (ctx).
func CalibrateAll(ctx context.Context, fcs []Forecaster, runs []ReplayRun, sc Scoring, share, floor float64) (margins []float64, errs []error, err error) {
	ratios := make([][]float64, len(fcs))
	pts := make([]Point, 1)
	for i := range runs {
		if i%64 == 0 && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		r := &runs[i]
		for _, fc := range fcs {
			fc.Begin(r.Ctx)
		}
		n := len(r.Values)
		from := max(sc.First, r.ScoreFrom-1)
		for t := 0; t <= n-1-sc.Tail; t++ {
			var l loadVec
			if t < len(r.Load) {
				l = r.Load[t]
			}
			y := r.Values[min(t+1, n-1)]
			for k, fc := range fcs {
				if ls, ok := fc.(loadSetter); ok {
					ls.setLoad(l)
				}
				fc.Observe(r.Values[t])
				if t < from {
					continue
				}
				fc.Forecast(pts)
				ratios[k] = append(ratios[k], ratioOf(fc.MarginKind(), pts[0], y, floor))
			}
		}
	}
	margins, errs = make([]float64, len(fcs)), make([]error, len(fcs))
	for k, fc := range fcs {
		margins[k], errs[k] = marginOf(fc, ratios[k], sc, share)
	}
	return margins, errs, nil
}

// ratioOf is the margin that would just cover y from p: for a Spread
// margin (y−P50)/(Upper−P50), for a multiplicative one y/max(Upper,
// floor); −Inf when any margin covers it, +Inf when none does.
func ratioOf(kind Margin, p Point, y, floor float64) float64 {
	var num, den float64
	if kind == Spread {
		num, den = y-p.P50, p.Upper-p.P50
		if y <= floor {
			num, den = -1, 0 // covered by the floor whatever the margin
		}
	} else {
		num, den = y, max(p.Upper, floor)
	}
	switch {
	case den > 0:
		return num / den
	case num <= 0:
		return math.Inf(-1)
	default:
		return math.Inf(1)
	}
}

// marginOf is the margin the ratios call for at share.
func marginOf(fc Forecaster, ratios []float64, sc Scoring, share float64) (float64, error) {
	kind := fc.MarginKind()
	if len(ratios) == 0 {
		return 0, fmt.Errorf("calibrate %s: no scorable step (runs need > %d samples): %w", fc.Name(), sc.First+sc.Tail+1, ErrNoData)
	}
	slices.Sort(ratios)
	k := int(math.Ceil((1-share)*float64(len(ratios)))) - 1
	q := ratios[max(k, 0)]
	switch {
	case math.IsInf(q, 1):
		return 0, fmt.Errorf("calibrate %s: over %.1f%% of steps have no spread: %w", fc.Name(), 100*share, ErrNoData)
	case math.IsInf(q, -1): // the floor alone covers the quantile
		q = 0
		if kind == Multiplicative {
			q = 1
		}
	}
	if kind == Multiplicative {
		return q - 1, nil
	}
	// A spread margin under −1 (the quantile falls more than the spread
	// below the median: a model that over-predicts) is served as −1, the
	// least the engine and a persisted model accept: measured, a GRU
	// trained on one short run calibrated to −1.68, and the daemon that
	// trained it refused to load the model after a restart.
	return max(q, -1), nil
}
