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
// P50 + M[b]·max(Upper−P50, 0). FitRegimeMargin picks the M that minimise
// total slack subject to a total violation budget, which spends violations where
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
	return max(p.P50+g.M[b]*max(p.Upper-p.P50, 0), floor)
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
	g := &RegimeMargin{}
	for b := 1; b < bins; b++ {
		g.Edges = append(g.Edges, sorted[b*len(sorted)/bins])
	}
	bin := make([]int, len(rows))
	for i := range rows {
		bin[i] = sort.SearchFloat64s(g.Edges, rel[i])
	}
	g.M = FitBinMargins(rows, bin, bins, share, floor, maxM)
	return g
}

// FitBinMargins is the Lagrangian fit of FitRegimeMargin for any binning:
// bin[i] in [0, bins) is row i's bin, and bin b's allocation is
// P50 + M[b]·max(Upper−P50, 0). It returns the M, each at most maxM, that
// minimise the rows' total slack with at most share of them above their
// allocation (or floor, whichever is higher): each bin leaves uncovered
// the rows whose cover costs most, until one more violation saves less
// slack in every bin than a common price λ, found by bisection.
func FitBinMargins(rows []CalRow, bin []int, bins int, share, floor, maxM float64) []float64 {
	// Per bin: the margin each row needs (0 when the median or the floor
	// covers it, +Inf when no allowed margin does), sorted descending, and
	// the total spread the margin multiplies. Margins are never negative:
	// the allocation is never below the forecast's median.
	type binRows struct {
		need   []float64
		spread float64
	}
	bs := make([]binRows, bins)
	for i, r := range rows {
		b := bin[i]
		// A candidate's allocation below its own median (a negative
		// margin) gives no spread to scale: the row's allocation is its
		// median whatever the margin.
		s := max(r.Upper-r.P50, 0)
		need := 0.0 // covered by the median (or the floor)
		if r.Y > floor && r.Y > r.P50 {
			need = math.Inf(1)
			if s > 0 {
				need = (r.Y - r.P50) / s
			}
		}
		if need > maxM {
			need = math.Inf(1) // uncovered
		}
		bs[b].need = append(bs[b].need, need)
		bs[b].spread += s
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
				if k > start && m == bn.need[k-1] {
					// Margin m covers every row that needs m: leaving k
					// uncovered means the first row of m's ties.
					continue
				}
				c := bn.spread*m + lambda*float64(k)
				if c < best {
					best, bestK = c, k
				}
				if m == 0 { // every row left is covered at margin 0
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
	total := choose(hi, ks)
	// λ prices violations on the convex hull of each bin's slack curve, so
	// it can stop short of the budget when a bin's next cheaper margin
	// costs several violations at once. Spend what is left greedily: the
	// move, in any bin, that saves most slack per violation it adds.
	for total < budget {
		bestB, bestK, bestRate := -1, 0, 0.0
		for b, bn := range bs {
			k0 := ks[b]
			if k0 >= len(bn.need) || bn.need[k0] == 0 {
				continue
			}
			for k := k0 + 1; k < len(bn.need) && k-k0 <= budget-total; k++ {
				if bn.need[k] == bn.need[k-1] {
					continue
				}
				save := bn.spread * (bn.need[k0] - bn.need[k])
				if r := save / float64(k-k0); r > bestRate {
					bestB, bestK, bestRate = b, k, r
				}
				if bn.need[k] == 0 {
					break
				}
			}
		}
		if bestB < 0 {
			break
		}
		total += bestK - ks[bestB]
		ks[bestB] = bestK
	}
	M := make([]float64, bins)
	for b, bn := range bs {
		switch {
		case ks[b] < len(bn.need):
			M[b] = bn.need[ks[b]]
		case len(bn.need) > 0 && !math.IsInf(maxM, 1):
			// No allowed margin covers any row of the bin: the largest
			// allowed, for the rows out of sample it may cover.
			M[b] = maxM
		}
	}
	return M
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
