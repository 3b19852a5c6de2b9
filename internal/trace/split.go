package trace

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// SplitAt splits runs at time cut (same clock as Run.Start): runs that end
// by cut train, runs that start at or after cut test. A run that straddles
// cut is cut in two: its part before cut trains, and the whole run tests
// with ScoreFrom set so only steps at or after cut are scored (the model
// may use the earlier samples as context, as in the live case).
func SplitAt(runs []*Run, cut int64) (train, test []*Run) {
	for _, r := range runs {
		switch {
		case r.End() <= cut:
			train = append(train, r)
		case r.Start >= cut:
			test = append(test, r)
		default:
			k := int((cut - r.Start + StepSeconds - 1) / StepSeconds)
			head := &Run{Identity: r.Identity, Period: r.Period, Start: r.Start}
			for d := range r.Values {
				if r.Values[d] != nil {
					head.Values[d] = r.Values[d][:k:k]
				}
			}
			train = append(train, head)
			tail := *r
			tail.ScoreFrom = max(r.ScoreFrom, k)
			test = append(test, &tail)
		}
	}
	return train, test
}

// Split makes the temporal split used for the shared traces. Runs are
// grouped by Period (a run without one is its own group); a group's time
// is its earliest start. Groups whose time falls in the first fraction
// frac of the span between the earliest and the latest group train, the
// later groups test, so whole periods stay together: with frac 0.7,
// google2011 days 1–5 train and 6–7 test, bitbrains 2013-07 trains and
// 2013-08 tests. For google2019, where tasks are few and long, use
// SplitTime.
func Split(runs []*Run, frac float64) (train, test []*Run, err error) {
	if frac <= 0 || frac >= 1 {
		return nil, nil, fmt.Errorf("split fraction %v not in (0, 1)", frac)
	}
	group := func(r *Run) string {
		if r.Period != "" {
			return "p:" + r.Period
		}
		return "r:" + r.Identity + "@" + strconv.FormatInt(r.Start, 10)
	}
	first := map[string]int64{}
	for _, r := range runs {
		g := group(r)
		if s, ok := first[g]; !ok || r.Start < s {
			first[g] = r.Start
		}
	}
	if len(first) < 2 {
		return nil, nil, fmt.Errorf("split needs at least 2 periods, have %d", len(first))
	}
	starts := slices.Sorted(maps.Values(first))
	lo, hi := starts[0], starts[len(starts)-1]
	cut := lo + int64(frac*float64(hi-lo))
	for _, r := range runs {
		if first[group(r)] <= cut {
			train = append(train, r)
		} else {
			test = append(test, r)
		}
	}
	if len(train) == 0 || len(test) == 0 {
		return nil, nil, fmt.Errorf("split at %v leaves one side empty", frac)
	}
	return train, test, nil
}

// SplitTime cuts at fraction frac of the whole time span the runs cover
// (first start to last end) with SplitAt; runs crossing the cut are shared
// as SplitAt describes.
func SplitTime(runs []*Run, frac float64) (train, test []*Run, err error) {
	if frac <= 0 || frac >= 1 {
		return nil, nil, fmt.Errorf("split fraction %v not in (0, 1)", frac)
	}
	if len(runs) == 0 {
		return nil, nil, fmt.Errorf("split: no runs")
	}
	lo, hi := runs[0].Start, runs[0].End()
	for _, r := range runs {
		lo, hi = min(lo, r.Start), max(hi, r.End())
	}
	cut := lo + int64(frac*float64(hi-lo))
	cut -= cut % StepSeconds
	train, test = SplitAt(runs, cut)
	if len(train) == 0 || len(test) == 0 {
		return nil, nil, fmt.Errorf("split at %v leaves one side empty", frac)
	}
	return train, test, nil
}
