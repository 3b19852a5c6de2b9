package eval

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
)

// The frontier (eval --frontier) asks how far the engine's served
// allocation is from what its forecasts could give at the same violation
// rate: other margin policies over the same forecasts, held out, and
// bounds no policy can beat because they are fitted on the scored rows
// themselves or know the next sample. It is a diagnostic of where slack
// comes from; it does not choose anything the engine runs.

// FrontierEntry is one allocation policy's figures on the scored rows.
type FrontierEntry struct {
	Policy string `json:"policy"`
	// Kind: "served" (the engine), "candidate" (one of the short-horizon
	// candidates alone, as calibrated on the training runs), "held-out"
	// (margins fitted on half of the signatures and scored on the other
	// half, both ways, at the largest budget that keeps held-out
	// violations within the target), "in-sample" (margins fitted on the
	// scored rows themselves: a bound) or "oracle" (knows the next sample:
	// a bound).
	Kind          string  `json:"kind"`
	Slack         float64 `json:"slack"`
	ViolationRate float64 `json:"violation_rate"`
	// FitShare is the share of rows the margins were fitted to leave
	// uncovered (held-out and in-sample entries): for held-out, the
	// largest tried (of ¼ … 1 × the target) whose held-out violations stay
	// within the target, or the smallest when none does (too few rows).
	FitShare float64 `json:"fit_share,omitempty"`
}

// frontierRow is one scored next-step row of the engine's replay.
type frontierRow struct {
	sig    string
	fold   int     // signature's fold for held-out fits
	tod    float64 // time of day of the predicted sample, in [0, 1)
	prev   float64 // usage one step before y0
	y0, y  float64 // usage at t, at t+1
	served float64
	chosen int
	cands  []predict.Candidate
}

// frontierRows collects rows per dimension during replayEngine.
type frontierRows struct {
	rows [resource.NumDims][]frontierRow
	buf  []predict.Candidate
}

func (f *frontierRows) add(d resource.Dim, s *predict.Session, r *erun, t int, served float64) {
	var ch int
	f.buf, ch = s.Candidates(f.buf[:0], d)
	if ch < 0 || t < 1 {
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(r.id))
	at := r.start.Add(r.step * time.Duration(t+1))
	v := r.values[d]
	f.rows[d] = append(f.rows[d], frontierRow{
		sig: r.id, fold: int(h.Sum32() % 2),
		tod:  float64(at.Unix()%86400) / 86400,
		prev: v[t-1], y0: v[t], y: v[t+1], served: served, chosen: ch,
		cands: slices.Clone(f.buf),
	})
}

// base is a row as the served margin sees it: the chosen candidate's
// median and calibrated allocation.
func (r *frontierRow) base() predict.CalRow {
	c := r.cands[r.chosen]
	return predict.CalRow{P50: c.P50, Upper: c.Alloc, Y: r.y}
}

func (r *frontierRow) relSpread() float64 {
	b := r.base()
	return (b.Upper - b.P50) / max(math.Abs(b.P50), 1e-12)
}

// binning cuts rows into bins by features, each at its own quantiles on
// the rows it is fitted on.
type binning struct {
	name  string
	feats []func(*frontierRow) float64
	n     []int  // bins per feature
	ids   []bool // the feature is already a bin index in [0, n)
}

func (b binning) bins() int {
	n := 1
	for _, k := range b.n {
		n *= k
	}
	return n
}

// edges are the quantile cuts of each feature over rows.
func (b binning) edges(rows []*frontierRow) [][]float64 {
	out := make([][]float64, len(b.feats))
	xs := make([]float64, len(rows))
	for j, f := range b.feats {
		if j < len(b.ids) && b.ids[j] {
			for k := 1; k < b.n[j]; k++ {
				out[j] = append(out[j], float64(k)-0.5)
			}
			continue
		}
		for i, r := range rows {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		for k := 1; k < b.n[j]; k++ {
			out[j] = append(out[j], xs[k*len(xs)/b.n[j]])
		}
	}
	return out
}

func (b binning) of(r *frontierRow, edges [][]float64) int {
	id := 0
	for j, f := range b.feats {
		id = id*b.n[j] + sort.SearchFloat64s(edges[j], f(r))
	}
	return id
}

// fit fits the binning's margins on rows at share; apply scores them on
// other rows (slack and violation sums).
func (b binning) fit(rows []*frontierRow, share, floor float64) ([][]float64, []float64) {
	e := b.edges(rows)
	cal := make([]predict.CalRow, len(rows))
	bin := make([]int, len(rows))
	for i, r := range rows {
		cal[i], bin[i] = r.base(), b.of(r, e)
	}
	return e, predict.FitBinMargins(cal, bin, b.bins(), share, floor, math.Inf(1))
}

type tally struct{ over, use, viol, n float64 }

func (t *tally) add(alloc, y float64) {
	t.over += alloc - y
	t.use += y
	t.n++
	if y > alloc {
		t.viol++
	}
}

func (t tally) entry(policy, kind string) FrontierEntry {
	e := FrontierEntry{Policy: policy, Kind: kind}
	if t.use > 0 {
		e.Slack = t.over / t.use
	}
	if t.n > 0 {
		e.ViolationRate = t.viol / t.n
	}
	return e
}

func (b binning) apply(t *tally, rows []*frontierRow, e [][]float64, m []float64, floor float64) {
	for _, r := range rows {
		c := r.base()
		t.add(max(c.P50+m[b.of(r, e)]*max(c.Upper-c.P50, 0), floor), r.y)
	}
}

// heldOut fits on one fold of signatures and scores on the other, both
// ways, at budgets from share/4 up to share; it reports the largest budget
// whose held-out violation rate is within share.
func (b binning) heldOut(rows []*frontierRow, share, floor float64) FrontierEntry {
	var folds [2][]*frontierRow
	for _, r := range rows {
		folds[r.fold] = append(folds[r.fold], r)
	}
	var best *FrontierEntry
	for s := 0.25; s <= 1.0001; s += 0.05 {
		var t tally
		for k := range 2 {
			if len(folds[k]) == 0 || len(folds[1-k]) == 0 {
				continue
			}
			e, m := b.fit(folds[k], s*share, floor)
			b.apply(&t, folds[1-k], e, m, floor)
		}
		en := t.entry(b.name, "held-out")
		en.FitShare = s * share
		if best == nil || en.ViolationRate <= share {
			best = &en
		}
	}
	return *best
}

func (b binning) inSample(rows []*frontierRow, share, floor float64) FrontierEntry {
	e, m := b.fit(rows, share, floor)
	var t tally
	b.apply(&t, rows, e, m, floor)
	en := t.entry(b.name, "in-sample")
	en.FitShare = share
	return en
}

// oracleSelection serves, at each row, the cheapest candidate allocation
// that covers the next sample (the cheapest of all when none does), then
// spends what is left of the budget on the rows where covering cost most
// over the cheapest: the best any selector over these candidates, as
// calibrated, could do.
func oracleSelection(rows []*frontierRow, share float64) FrontierEntry {
	var t tally
	var gaps []float64
	forced := 0
	for _, r := range rows {
		lo, cover := math.Inf(1), math.Inf(1)
		for _, c := range r.cands {
			lo = min(lo, c.Alloc)
			if c.Alloc >= r.y {
				cover = min(cover, c.Alloc)
			}
		}
		t.use += r.y
		t.n++
		if math.IsInf(cover, 1) {
			forced++
			t.over += lo - r.y
			t.viol++
			continue
		}
		t.over += cover - r.y
		gaps = append(gaps, cover-lo)
	}
	slices.SortFunc(gaps, func(a, b float64) int { return cmp.Compare(b, a) })
	for i := 0; i < int(share*t.n)-forced && i < len(gaps); i++ {
		t.over -= gaps[i]
		t.viol++
	}
	return t.entry("oracle selection among the candidates", "oracle")
}

// frontier computes the entries for one dimension's rows.
func frontier(rows []frontierRow, share, floor float64) []FrontierEntry {
	if len(rows) == 0 {
		return nil
	}
	ptr := make([]*frontierRow, len(rows))
	var served tally
	for i := range rows {
		ptr[i] = &rows[i]
		served.add(rows[i].served, rows[i].y)
	}
	out := []FrontierEntry{served.entry("prescient (served)", "served")}
	for j, c := range rows[0].cands {
		var t tally
		for _, r := range ptr {
			t.add(r.cands[j].Alloc, r.y)
		}
		out = append(out, t.entry(c.Name, "candidate"))
	}
	sigIdx := map[string]int{}
	for _, r := range ptr {
		if _, ok := sigIdx[r.sig]; !ok {
			sigIdx[r.sig] = len(sigIdx)
		}
	}
	rel := (*frontierRow).relSpread
	level := func(r *frontierRow) float64 { return r.base().P50 }
	tod := func(r *frontierRow) float64 { return r.tod }
	rise := func(r *frontierRow) float64 {
		b := r.base()
		return (r.y0 - r.prev) / max(b.Upper-b.P50, 1e-12)
	}
	sig := func(r *frontierRow) float64 { return float64(sigIdx[r.sig]) }
	heldOut := []binning{
		{"one margin", []func(*frontierRow) float64{rel}, []int{1}, nil},
		{"10 bins of relative spread (the engine's)", []func(*frontierRow) float64{rel}, []int{10}, nil},
		{"20 bins of relative spread", []func(*frontierRow) float64{rel}, []int{20}, nil},
		{"10 relative spread × 3 level", []func(*frontierRow) float64{rel, level}, []int{10, 3}, nil},
		{"10 relative spread × 4 time of day", []func(*frontierRow) float64{rel, tod}, []int{10, 4}, nil},
		{"10 relative spread × 3 last step's rise", []func(*frontierRow) float64{rel, rise}, []int{10, 3}, nil},
	}
	for _, b := range heldOut {
		out = append(out, b.heldOut(ptr, share, floor))
	}
	inSample := []binning{
		{"one margin", []func(*frontierRow) float64{rel}, []int{1}, nil},
		{"50 bins of relative spread", []func(*frontierRow) float64{rel}, []int{50}, nil},
		{"20 relative spread × 5 level × 4 time of day", []func(*frontierRow) float64{rel, level, tod}, []int{20, 5, 4}, nil},
		{"one margin per signature", []func(*frontierRow) float64{sig}, []int{len(sigIdx)}, []bool{true}},
		{"per signature × 5 relative spread", []func(*frontierRow) float64{sig, rel}, []int{len(sigIdx), 5}, []bool{true}},
	}
	for _, b := range inSample {
		out = append(out, b.inSample(ptr, share, floor))
	}
	return append(out, oracleSelection(ptr, share))
}

func writeFrontier(w io.Writer, dims []resource.Dim, fr map[string][]FrontierEntry) error {
	for _, d := range dims {
		es := fr[d.String()]
		if len(es) == 0 {
			continue
		}
		if _, err := fmt.Fprintf(w, "\nfrontier, %s (slack, violation rate on the scored rows):\n", d); err != nil {
			return err
		}
		for _, e := range es {
			if _, err := fmt.Fprintf(w, "  %-10s %-48s %7.4f  %6.3f %%\n", e.Kind, e.Policy, e.Slack, 100*e.ViolationRate); err != nil {
				return err
			}
		}
	}
	return nil
}
