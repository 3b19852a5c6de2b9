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
	kind := fc.MarginKind()
	var ratios []float64
	pts := make([]Point, 1)
	err := Replay(ctx, fc, runs, sc, pts, func(r *ReplayRun, t int, pts []Point) {
		y := r.Values[t+1]
		p := pts[0]
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
			ratios = append(ratios, num/den)
		case num <= 0:
			ratios = append(ratios, math.Inf(-1))
		default:
			ratios = append(ratios, math.Inf(1))
		}
	})
	if err != nil {
		return 0, err
	}
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
	return q, nil
}
