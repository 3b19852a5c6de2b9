package predict

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/rnn"
)

// models is what Train learns and calibrates, installed whole: sessions
// and predictions started before a Train keep the set they began with.
type models struct {
	seq [resource.NumDims]*Seq // per dimension; nil = none
	// margin: the candidates' margins by name (calibrated, or the
	// configured defaults).
	margin [resource.NumDims]map[string]float64
	// regime: the served allocation's margin per regime of relative
	// uncertainty; nil = selMargin applies.
	regime    [resource.NumDims]*RegimeMargin
	selMargin [resource.NumDims]float64
	// scale: the per-dimension scale the margins were calibrated at (its
	// MinAllocation share is every allocation's floor); 0 = the engine's
	// running mean.
	scale [resource.NumDims]float64
	run   *RunModel // whole-run sequence model; nil = none
	// pool: per whole-run candidate, the conformal margin a signature
	// without scored runs gets (per dimension and for the duration).
	pool [numCands][numMarginSlots]float64
}

func defaultModels(c *Config) *models {
	m := &models{}
	for d := range resource.NumDims {
		m.margin[d] = c.Margins
	}
	for k := range numCands {
		for j := range numMarginSlots {
			m.pool[k][j] = 1
		}
	}
	return m
}

// wholeStats are the history statistics of a signature's runs by time
// since start, per WholeStep bucket: the median over runs of the bucket
// mean (p50), the max over runs of the bucket max (hi) and the median over
// runs of the bucket max (mmax); durations in samples, sorted.
type wholeStats struct {
	p50, hi, mmax [resource.NumDims][]float64
	durs          []float64
	sums          []runSummary
	// The run model's state after the runs (see RunModel.prefix), for
	// model run; computed on first use.
	run    *RunModel
	runPre *rnn.State
}

func (e *Engine) statsOf(runs []pastRun) *wholeStats {
	per := max(int(e.cfg.WholeStep/e.cfg.Step), 1)
	ws := &wholeStats{durs: make([]float64, 0, len(runs)), sums: make([]runSummary, len(runs))}
	longest := 0
	for i, r := range runs {
		n := len(r.values[0])
		longest = max(longest, n)
		ws.durs = append(ws.durs, float64(n))
		ws.sums[i] = r.sum
	}
	slices.Sort(ws.durs)
	nb := (longest + per - 1) / per
	means := make([]float64, 0, len(runs))
	maxes := make([]float64, 0, len(runs))
	for d := range resource.NumDims {
		if !e.cfg.Dims.Has(d) {
			continue
		}
		p50, hi, mm := make([]float64, nb), make([]float64, nb), make([]float64, nb)
		for b := range nb {
			means, maxes = means[:0], maxes[:0]
			var mx float64
			for _, r := range runs {
				v := r.values[d]
				lo, up := b*per, min((b+1)*per, len(v))
				if lo >= up {
					continue
				}
				var s, bm float64
				for _, x := range v[lo:up] {
					s += float64(x)
					bm = max(bm, float64(x))
				}
				mx = max(mx, bm)
				means = append(means, s/float64(up-lo))
				maxes = append(maxes, bm)
			}
			if len(means) == 0 {
				continue
			}
			p50[b], hi[b], mm[b] = median(means), mx, median(maxes)
		}
		ws.p50[d], ws.hi[d], ws.mmax[d] = p50, hi, mm
	}
	return ws
}

// wholeCand is one whole-run candidate's raw prediction: per bucket of
// width stretch·WholeStep the p50 and the upper point, and the duration in
// samples (p50 and upper).
type wholeCand struct {
	ok         bool
	stretch    float64
	p50, upper [resource.NumDims][]float64
	dur, durUp float64
}

// seqOK says whether the run model can predict after ws.
func seqOK(ws *wholeStats, m *models) bool { return m.run != nil && len(ws.sums) > 0 }

// candidates predicts a run after runs (history stats ws) under load now
// with input size in, scaled by k: the history statistic and, when the run
// model is trained, its correction; only those want asks for. Under e.mu
// (or on Train's own states).
func (e *Engine) candidates(ws *wholeStats, m *models, scr **runScratch, sc *[resource.NumDims]float64, now loadVec, in, k float64, want [numCands]bool) (out [numCands]wholeCand) {
	if want[candHistory] {
		h := &out[candHistory]
		h.ok, h.stretch = true, 1
		h.dur = median(slices.Clone(ws.durs))
		h.durUp = ws.durs[len(ws.durs)-1]
		for d := range resource.NumDims {
			if !e.cfg.Dims.Has(d) {
				continue
			}
			h.p50[d], h.upper[d] = scaled(ws.p50[d], k), scaled(ws.hi[d], k)
		}
	}
	if !want[candSeq] || !seqOK(ws, m) {
		return out
	}
	if *scr == nil {
		*scr = m.run.scratch()
	}
	fl := floorsOf(*sc)
	if e.cfg.NoLoad {
		now = loadVec{}
	}
	if ws.run != m.run {
		ws.run, ws.runPre = m.run, m.run.prefix(*scr, ws.sums, &fl)
	}
	q := m.run.predict(*scr, ws.runPre, ws.sums, now, in, &fl)
	ref := refOf(ws.sums, &fl)
	clampQ := func(x float64) float64 { return math.Exp(min(max(x, -3), 3)) }
	s := &out[candSeq]
	s.ok = true
	s.stretch = clampQ(q[0][0])
	s.dur = ref.t[0] * s.stretch
	s.durUp = max(ref.t[0]*clampQ(q[0][1]), s.dur)
	for d := range resource.NumDims {
		if !e.cfg.Dims.Has(d) {
			continue
		}
		s.p50[d] = scaled(ws.p50[d], k*clampQ(q[1+2*d][0]))
		s.upper[d] = scaled(ws.mmax[d], k*clampQ(q[2+2*d][1]))
		for b := range s.upper[d] {
			s.upper[d][b] = max(s.upper[d][b], s.p50[d][b])
		}
	}
	return out
}

func scaled(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * k
	}
	return out
}

// margin is signature st's conformal margin for candidate c in slot j
// (a dimension, or the duration): the largest margin its last runs needed,
// shrunk towards the pooled one with few runs.
func (m *models) marginOf(st *sigState, c, j int) float64 {
	pool := m.pool[c][j]
	if st == nil || len(st.conf[c][j]) == 0 {
		return pool
	}
	var mx float64
	for _, r := range st.conf[c][j] {
		mx = max(mx, float64(r))
	}
	n := float64(len(st.conf[c][j]))
	return min((n*mx+2*pool)/(n+2), maxWholeMargin)
}

// maxWholeMargin bounds a signature's whole-run margin. A few runs that
// started at different speeds (a loaded node) put one run's rise in a
// bucket where another's upper point is still near zero, and the ratio
// that bucket needs is 100× or more: an upper curve of the whole node
// for a 300 MB task (measured in the daemon's e2e tests). Beyond 4× the
// curve's own upper, a larger margin stops covering a real need and only
// reserves the node; the running task's limit still follows its use.
const maxWholeMargin = 4

// choose is the whole-run candidate that serves signature st: the one
// with the lower decayed pinball loss on its runs, else on every
// signature's; history when the run model cannot predict or on a tie.
func (e *Engine) choose(st *sigState, seq bool) int {
	if !seq {
		return candHistory
	}
	if st != nil && st.scored[candSeq] > 0 && st.scored[candHistory] > 0 {
		if st.score[candSeq] < st.score[candHistory] {
			return candSeq
		}
		return candHistory
	}
	if e.g.better(candSeq, candHistory) {
		return candSeq
	}
	return candHistory
}

// Whole predicts a run of f starting at at under load l, before it has
// samples: the enqueue-time prediction that sizes its reservation.
func (e *Engine) Whole(f Features, at time.Time, l Load) (Prediction, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.wholeLocked(f, at, l)
}

func (e *Engine) wholeLocked(f Features, at time.Time, l Load) (Prediction, error) {
	return e.wholeAs(f, at, l, -1)
}

// wholeAs predicts with candidate force (−1: the chosen one; a candidate
// that cannot predict falls back to history). Under e.mu.
func (e *Engine) wholeAs(f Features, at time.Time, l Load, force int) (Prediction, error) {
	runs, src, k, st := e.history(f, at)
	if len(runs) == 0 {
		return Prediction{}, fmt.Errorf("signature %.12s: %w", f.Signature, ErrNoData)
	}
	var ws *wholeStats
	if st != nil && len(runs) == len(st.runs) {
		if st.stats == nil {
			st.stats = e.statsOf(st.runs)
		}
		ws = st.stats
	} else {
		ws = e.statsOf(runs)
	}
	m := e.m
	sc := e.scales(m)
	c := candHistory
	switch {
	case force == candSeq && seqOK(ws, m):
		c = force
	case force < 0 && src == SourceExact:
		c = e.choose(st, seqOK(ws, m))
	}
	var want [numCands]bool
	want[c] = true
	cs := e.candidates(ws, m, &e.scratch, &sc, l.features(0), f.InputSize, k, want)
	w := &cs[c]
	if src != SourceExact {
		st = nil // pooled margins
	}
	p := Prediction{Model: candNames[c], Source: src, UpperQ: e.cfg.WholeQ}
	bucket := time.Duration(float64(e.cfg.WholeStep) * w.stretch)
	for d := range resource.NumDims {
		if !e.cfg.Dims.Has(d) {
			continue
		}
		mg := m.marginOf(st, c, int(d))
		up := make([]float64, len(w.upper[d]))
		for b := range up {
			up[b] = max(w.upper[d][b]*mg, w.p50[d][b])
		}
		p.Whole[d] = Curve{Step: max(bucket, time.Millisecond), P50: w.p50[d], Upper: up}
	}
	step := float64(e.cfg.Step)
	p.Duration = time.Duration(w.dur * step)
	p.DurationUpper = time.Duration(max(w.durUp*m.marginOf(st, c, int(resource.NumDims)), w.dur) * step)
	return p, nil
}

// globalScore sums the whole-run candidates' scores over every
// signature's scored runs.
type globalScore struct {
	sum [numCands]float64
	n   [numCands]int
}

func (g *globalScore) add(c int, loss float64) { g.sum[c] += loss; g.n[c]++ }

// better says whether candidate a scores lower than b on average.
func (g *globalScore) better(a, b int) bool {
	return g.n[a] > 0 && g.n[b] > 0 && g.sum[a]/float64(g.n[a]) < g.sum[b]/float64(g.n[b])
}

// scoreRun scores the whole-run candidates of m on run r of signature st,
// as they would have predicted it from runs under load now, keeps the
// margin each needed in st and adds the scores to g. It touches no field
// of e but its config: Train calls it without the lock on states of its
// own; AddRun under e.mu.
func (e *Engine) scoreRun(m *models, scr **runScratch, sc *[resource.NumDims]float64, g *globalScore, st *sigState, runs []pastRun, r *pastRun, now loadVec) {
	ws := e.statsOf(runs)
	cs := e.candidates(ws, m, scr, sc, now, r.input, 1, [numCands]bool{true, true})
	tau := e.cfg.WholeQ
	for c := range numCands {
		w := &cs[c]
		if !w.ok {
			continue
		}
		loss, need := e.scoreCand(w, r, sc, ws.sums, tau)
		for j := range numMarginSlots {
			ring := append(st.conf[c][j], float32(need[j]))
			if len(ring) > e.cfg.MaxRuns {
				ring = ring[len(ring)-e.cfg.MaxRuns:]
			}
			st.conf[c][j] = ring
		}
		if st.scored[c] == 0 {
			st.score[c] = loss
		} else {
			st.score[c] = 0.7*st.score[c] + 0.3*loss
		}
		st.scored[c]++
		g.add(c, loss)
	}
}

// scoreCand returns candidate w's pinball loss at tau on run r (bucket
// maxima of r on w's time grid against w's upper points, normalised per
// dimension by the signature's mean, averaged over buckets and summed over
// dimensions, plus the duration's) and, per dimension and for the
// duration, the margin w's upper points needed for at most 1−tau of r's
// buckets to exceed them.
func (e *Engine) scoreCand(w *wholeCand, r *pastRun, sc *[resource.NumDims]float64, sums []runSummary, tau float64) (loss float64, need [numMarginSlots]float64) {
	per := float64(e.cfg.WholeStep) / float64(e.cfg.Step) * w.stretch
	n := len(r.values[0])
	nb := max(int(math.Ceil(float64(n)/per)), 1)
	ratios := make([]float64, 0, nb)
	for d := range resource.NumDims {
		if !e.cfg.Dims.Has(d) || len(w.upper[d]) == 0 {
			need[d] = 1
			continue
		}
		var norm float64
		for i := range sums {
			norm += sums[i].mean[d]
		}
		norm = max(norm/float64(max(len(sums), 1)), 0.01*sc[d], 1e-12)
		floor := e.cfg.MinAllocation * sc[d]
		nbd := max(nb, len(w.upper[d]))
		ratios = ratios[:0]
		var l float64
		for b := range nbd {
			lo, up := int(float64(b)*per), int(float64(b+1)*per)
			var y float64
			for i := lo; i < min(up, n); i++ {
				y = max(y, float64(r.values[d][i]))
			}
			u := w.upper[d][min(b, len(w.upper[d])-1)]
			l += pinball(y/norm, u/norm, tau)
			ratios = append(ratios, y/max(u, floor, 1e-12))
		}
		loss += l / float64(nbd)
		slices.Sort(ratios)
		need[d] = ratios[min(int(math.Ceil(tau*float64(len(ratios))))-1, len(ratios)-1)]
	}
	ref := max(w.dur, 1)
	loss += pinball(float64(n)/ref, w.durUp/ref, tau) + pinball(float64(n)/ref, w.dur/ref, 0.5)
	need[resource.NumDims] = float64(n) / max(w.durUp, 1)
	return loss, need
}

// pinball is the quantile loss of predicting u for y at quantile tau.
func pinball(y, u, tau float64) float64 {
	if y >= u {
		return tau * (y - u)
	}
	return (1 - tau) * (u - y)
}
