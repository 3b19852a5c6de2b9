package predict

import (
	"math"
	"math/rand/v2"
	"testing"
)

// group is count rows that need margin need.
type group struct {
	count int
	need  float64
}

// binRows makes 1,000 rows of one bin with P50 10 and spread 1 (a row
// needing margin m has Y = 10 + m): the groups first, the rest need rest.
func binRows(rest float64, groups ...group) []CalRow {
	rows := make([]CalRow, 0, 1000)
	for _, g := range groups {
		for range g.count {
			rows = append(rows, CalRow{P50: 10, Upper: 11, Y: 10 + g.need})
		}
	}
	for len(rows) < 1000 {
		rows = append(rows, CalRow{P50: 10, Upper: 11, Y: 10 + rest})
	}
	return rows
}

// fitAndCount fits two bins (a's rows, then b's) and counts the rows of
// each above their allocation.
func fitAndCount(t *testing.T, a, b []CalRow, share, floor float64) (m []float64, viol int) {
	t.Helper()
	rows := append(append([]CalRow{}, a...), b...)
	bin := make([]int, len(rows))
	for i := len(a); i < len(rows); i++ {
		bin[i] = 1
	}
	m = FitBinMargins(rows, bin, 2, share, floor, math.Inf(1))
	for i, r := range rows {
		if r.Y > max(r.P50+m[bin[i]]*max(r.Upper-r.P50, 0), floor) {
			viol++
		}
	}
	return m, viol
}

// Rows the median already covers cost no violation, whatever margin the
// fit would like for them: the budget goes where it saves slack. (The fit
// once priced "every row uncovered down to the floor" as margin −10⁹ and
// spent budget on violations that never happened.)
func TestFitBinMarginsRowsTheMedianCovers(t *testing.T) {
	// Bin a: 5 rows below their median (need −2), 995 at the floor (Y 0.5
	// ≤ floor 1). Bin b: 10 rows need 50, the rest 1.
	a := binRows(-9.5, group{5, -2})
	b := binRows(1, group{10, 50})
	m, viol := fitAndCount(t, a, b, 0.005, 1) // budget 10
	if m[0] != 0 || m[1] != 1 || viol != 10 {
		t.Fatalf("margins %v, %d violations; want [0 1], 10 (bin b's outliers left uncovered)", m, viol)
	}
}

// The price of a violation is set on the convex hull of each bin's slack
// curve; a bin's cheaper margin off the hull can still take what is left
// of the budget.
func TestFitBinMarginsSpendsTheWholeBudget(t *testing.T) {
	// Bin a: 8 rows need 10, the rest 1 (leaving the 8 saves 1,125 of
	// spread per violation). Bin b: 2 rows need 5, 3 need 4.9, the rest 1
	// (leaving 2 saves 50 per violation, leaving 5 saves 800).
	a := binRows(1, group{8, 10})
	b := binRows(1, group{2, 5}, group{3, 4.9})
	// Budget 10: not a's 8 and b's 5; a's 8 and b's 2.
	m, viol := fitAndCount(t, a, b, 0.005, 0)
	if m[0] != 1 || m[1] != 4.9 || viol != 10 {
		t.Fatalf("margins %v, %d violations; want [1 4.9], 10", m, viol)
	}
}

func TestFitBinMarginsTies(t *testing.T) {
	// 20 rows need 5, the rest 0.5: a budget of 10 cannot leave half of a
	// tie uncovered, so the margin covers them all; 20 can.
	a := binRows(0.5, group{20, 5})
	for _, c := range []struct {
		share      float64
		wantM      float64
		wantViolat int
	}{{0.01, 5, 0}, {0.02, 0.5, 20}} {
		m := FitBinMargins(a, make([]int, len(a)), 1, c.share, 0, math.Inf(1))
		viol := 0
		for _, r := range a {
			if r.Y > r.P50+m[0]*(r.Upper-r.P50) {
				viol++
			}
		}
		if m[0] != c.wantM || viol != c.wantViolat {
			t.Errorf("share %v: margin %v, %d violations; want %v, %d", c.share, m[0], viol, c.wantM, c.wantViolat)
		}
	}
}

// On random rows — spreads from 0 (and negative: a candidate allocating
// below its median) to large, usage below and above — the fit never
// exceeds its budget beyond the rows no margin covers, and never allocates
// below the median.
func TestFitBinMarginsBudgetProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 200 + rng.IntN(3000)
		bins := 1 + rng.IntN(12)
		share := []float64{0.001, 0.01, 0.05}[rng.IntN(3)]
		floor := rng.Float64() * 2
		maxM := math.Inf(1)
		if rng.IntN(2) == 0 {
			maxM = 1 + 5*rng.Float64()
		}
		rows := make([]CalRow, n)
		bin := make([]int, n)
		forced := 0
		for i := range rows {
			p := 10 * rng.ExpFloat64()
			s := p * rng.NormFloat64() * 0.3
			if rng.IntN(20) == 0 {
				s = 0
			}
			y := p * math.Exp(rng.NormFloat64()*0.4)
			rows[i], bin[i] = CalRow{P50: p, Upper: p + s, Y: y}, rng.IntN(bins)
			if y > floor && y > p && (s <= 0 || (y-p)/s > maxM) {
				forced++ // no allowed margin covers it
			}
		}
		m := FitBinMargins(rows, bin, bins, share, floor, maxM)
		viol := 0
		for i, r := range rows {
			if m[bin[i]] < 0 || m[bin[i]] > maxM {
				t.Fatalf("trial %d: margin %v outside [0, %v]", trial, m[bin[i]], maxM)
			}
			a := max(r.P50+m[bin[i]]*max(r.Upper-r.P50, 0), floor)
			if a < r.P50 {
				t.Fatalf("trial %d: allocation %v below median %v", trial, a, r.P50)
			}
			if r.Y > a*(1+1e-12) { // a row that needs exactly M, up to rounding
				viol++
			}
		}
		if budget := int(share * float64(n)); viol > max(budget, forced) {
			t.Fatalf("trial %d: %d violations, budget %d, %d no margin covers", trial, viol, budget, forced)
		}
	}
}

func TestRegimeMarginApplyNegativeSpread(t *testing.T) {
	g := &RegimeMargin{M: []float64{3}}
	if a := g.Apply(Point{P50: 10, Upper: 8}, 1); a != 10 {
		t.Fatalf("allocation %v for a point whose upper is below its median; want the median, 10", a)
	}
	if a := g.Apply(Point{P50: 10, Upper: 12}, 1); a != 16 {
		t.Fatalf("allocation %v; want 10 + 3·2 = 16", a)
	}
}
