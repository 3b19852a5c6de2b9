package predict

import (
	"math"
	"slices"
	"sort"
)

// CalRow is one training next-step row: the forecast and what came.
type CalRow struct {
	P50, Upper, Y float64
}

// RegimeMargin is a safety margin that depends on the forecast's own
// relative uncertainty r = (Upper−P50)/P50: rows are cut into bins of r
// (Edges, ascending, len(M)−1 of them) and bin b gets allocation
// P50 + M[b]·(Upper−P50). FitRegimeMargin picks the M that minimise total
// slack subject to a total violation budget, which spends violations where
// covering them costs most slack rather than equally in every bin.
type RegimeMargin struct {
	Edges []float64
	M     []float64
}

func relSpread(p Point) float64 {
	return (p.Upper - p.P50) / max(math.Abs(p.P50), 1e-12)
}

// Apply returns the allocation for p, never below floor.
func (g *RegimeMargin) Apply(p Point, floor float64) float64 {
	b := sort.SearchFloat64s(g.Edges, relSpread(p))
	return max(p.P50+g.M[b]*(p.Upper-p.P50), floor)
}

// FitRegimeMargin fits a RegimeMargin on rows with at most share
// (e.g. 0.01) of them exceeding their allocation, using bins of equal
// row count. It returns nil when rows are too few (< 100·bins).
func FitRegimeMargin(rows []CalRow, share float64, bins int, floor float64) *RegimeMargin {
	return FitRegimeMarginCapped(rows, share, bins, floor, math.Inf(1))
}

// FitRegimeMarginCapped is FitRegimeMargin with no bin's margin above
// maxM: the rows only a larger margin would cover are left uncovered and
// count against the budget. A bin of rows whose spreads are near zero
// then cannot take a huge margin (which, out of sample, is huge slack).
func FitRegimeMarginCapped(rows []CalRow, share float64, bins int, floor, maxM float64) *RegimeMargin {
	if bins < 1 || len(rows) < 100*bins {
		return nil
	}
	rel := make([]float64, len(rows))
	for i, r := range rows {
		rel[i] = relSpread(Point{r.P50, r.Upper})
	}
	sorted := slices.Clone(rel)
	slices.Sort(sorted)
	g := &RegimeMargin{M: make([]float64, bins)}
	for b := 1; b < bins; b++ {
		g.Edges = append(g.Edges, sorted[b*len(sorted)/bins])
	}
	// Per bin: the margin each row needs (−Inf when the floor covers it),
	// sorted descending, and the total spread the margin multiplies.
	type bin struct {
		need   []float64
		spread float64
	}
	bs := make([]bin, bins)
	for i, r := range rows {
		b := sort.SearchFloat64s(g.Edges, rel[i])
		s := r.Upper - r.P50
		need := math.Inf(-1)
		if r.Y > floor {
			if s > 0 {
				need = (r.Y - r.P50) / s
			} else if r.Y > r.P50 {
				need = math.Inf(1)
			}
		}
		if need > maxM {
			need = math.Inf(1) // uncovered
		}
		bs[b].need = append(bs[b].need, need)
		bs[b].spread += max(s, 0)
	}
	for b := range bs {
		slices.SortFunc(bs[b].need, func(x, y float64) int { return -cmpFloat(x, y) })
	}
	budget := int(share * float64(len(rows)))
	// choose returns per bin the number of rows left uncovered k (margin =
	// need[k]) minimising spread·need[k] + λ·k, and the total k.
	choose := func(lambda float64, ks []int) int {
		total := 0
		for b, bn := range bs {
			// Rows no allowed margin covers (+Inf, sorted first) stay
			// uncovered whatever the margin.
			start := 0
			for start < len(bn.need) && math.IsInf(bn.need[start], 1) {
				start++
			}
			best, bestK := math.Inf(1), start
			for k := start; k < len(bn.need) && k <= max(budget, start); k++ {
				m := bn.need[k]
				c := bn.spread*max(m, -1e9) + lambda*float64(k)
				if c < best {
					best, bestK = c, k
				}
				if math.IsInf(m, -1) {
					break
				}
			}
			ks[b] = bestK
			total += bestK
		}
		return total
	}
	ks := make([]int, bins)
	lo, hi := 0.0, 1.0
	for choose(hi, ks) > budget && hi < 1e300 {
		hi *= 4
	}
	for range 100 {
		mid := (lo + hi) / 2
		if choose(mid, ks) > budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	choose(hi, ks)
	for b, bn := range bs {
		if len(bn.need) == 0 {
			continue
		}
		m := bn.need[min(ks[b], len(bn.need)-1)]
		switch {
		case math.IsInf(m, -1):
			m = 0
		case math.IsInf(m, 1): // every row of the bin beyond the cap
			m = min(maxM, math.MaxFloat64)
		}
		g.M[b] = m
	}
	return g
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
