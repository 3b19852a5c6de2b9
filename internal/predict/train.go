package predict

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// TrainConfig configures Engine.Train.
type TrainConfig struct {
	Seq SeqConfig      // the next-step sequence model (Seq.MaxSteps: Config.MaxTrainSteps)
	Run RunModelConfig // the whole-run model (Run.NoLoad: Config.NoLoad)
	// Workers is how many dimensions are trained at once (default 1: the
	// daemon trains on one core). With one, everything runs on the
	// caller's goroutine (and thread, which the daemon renices).
	Workers int
	// OnWorker, if set, is called first on each goroutine Train starts
	// for a dimension when Workers > 1 (the daemon lowers its thread's
	// priority there).
	OnWorker func()
}

// TrainStats reports a Train call.
type TrainStats struct {
	Runs, Signatures int
	Took             time.Duration
	Margins          [resource.NumDims]map[string]float64
	RunModel         bool // the whole-run model was trained
}

// Train fits and calibrates the learned models on the runs the engine
// keeps, and installs them whole: per dimension the next-step sequence
// model, every candidate's margin (≤ Violation of the scored next-step
// rows above it), the served allocation's margin per regime of relative
// uncertainty and the per-signature online margins and selector costs of
// signatures no session has followed yet; then the whole-run model and
// the whole-run margins and scores of every signature, recomputed from its
// runs. It runs on the caller's goroutines (the daemon runs it in the
// background at a low priority) and stops with ctx, keeping the models it
// had.
func (e *Engine) Train(ctx context.Context, cfg TrainConfig) (TrainStats, error) {
	t0 := time.Now()
	e.mu.Lock()
	snap := make(map[string][]pastRun, len(e.sigs))
	var st TrainStats
	for sig, s := range e.sigs {
		if len(s.runs) > 0 {
			snap[sig] = slices.Clone(s.runs)
			st.Runs += len(s.runs)
		}
	}
	st.Signatures = len(snap)
	runScale := e.scale
	old := e.m
	e.mu.Unlock()
	if st.Runs == 0 {
		return st, fmt.Errorf("train: %w", ErrNoData)
	}
	sigs := make([]string, 0, len(snap))
	for s := range snap {
		sigs = append(sigs, s)
	}
	sort.Strings(sigs)

	m := &models{pool: old.pool}
	for d := range resource.NumDims {
		m.scale[d] = max(runScale[d], 1e-9)
		m.margin[d] = e.cfg.Margins
	}
	var seeds [resource.NumDims]dimSeed
	var dims []resource.Dim
	for d := range resource.NumDims {
		if e.cfg.Dims.Has(d) {
			dims = append(dims, d)
		}
	}
	errs := make([]error, resource.NumDims)
	one := func(d resource.Dim) {
		sd, err := e.trainDim(ctx, cfg, m, d, sigs, snap)
		if err != nil {
			errs[d] = fmt.Errorf("train %s: %w", d, err)
			return
		}
		seeds[d] = sd
	}
	if cfg.Workers <= 1 {
		for _, d := range dims {
			one(d)
		}
	} else {
		next := make(chan resource.Dim, len(dims))
		for _, d := range dims {
			next <- d
		}
		close(next)
		var wg sync.WaitGroup
		for range min(cfg.Workers, len(dims)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if cfg.OnWorker != nil {
					cfg.OnWorker()
				}
				for d := range next {
					one(d)
				}
			}()
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return st, err
	}

	// The whole-run model, on every signature's runs.
	var hist [][]runSummary
	for _, sig := range sigs {
		runs := snap[sig]
		sums := make([]runSummary, len(runs))
		for i := range runs {
			sums[i] = runs[i].sum
		}
		hist = append(hist, sums)
	}
	rc := cfg.Run
	rc.NoLoad = rc.NoLoad || e.cfg.NoLoad
	if rc.Seed == 0 {
		rc.Seed = cfg.Seq.Seed
	}
	fl := floorsOf(m.scale)
	rm, rst, err := trainRunModel(ctx, rc, hist, &fl)
	switch {
	case err == nil:
		m.run = rm
		st.RunModel = true
		e.log.Info("trained run model", "epochs", rst.Epochs, "loss", rst.Loss[len(rst.Loss)-1], "took", rst.Duration)
	case errors.Is(err, ErrNoData):
	default:
		return st, err
	}
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("train: %w", err)
	}

	// Rescore every signature's runs with the new models, on states of
	// our own (the lock stays free), then install.
	var g globalScore
	var scr *runScratch
	scores := make(map[string]*sigState, len(sigs))
	var all [numCands][numMarginSlots][]float64
	for i, sig := range sigs {
		if i%256 == 0 && ctx.Err() != nil {
			return st, fmt.Errorf("train: %w", ctx.Err())
		}
		s := &sigState{}
		runs := snap[sig]
		for k := 1; k < len(runs); k++ {
			var now loadVec
			if len(runs[k].load) > 0 {
				now = runs[k].load[0].unpack()
			}
			e.scoreRun(m, &scr, &m.scale, &g, s, runs[:k], &runs[k], now)
		}
		scores[sig] = s
		for c := range numCands {
			for j := range numMarginSlots {
				for _, r := range s.conf[c][j] {
					all[c][j] = append(all[c][j], float64(r))
				}
			}
		}
	}
	// The pooled margin: the 90th percentile of what runs needed.
	for c := range numCands {
		for j := range numMarginSlots {
			if v := all[c][j]; len(v) > 0 {
				slices.Sort(v)
				m.pool[c][j] = max(v[int(math.Ceil(0.9*float64(len(v))))-1], 1e-3)
			} else {
				m.pool[c][j] = 1
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m = m
	e.scratch = nil
	e.g = g
	for _, sig := range sigs {
		s := e.sigs[sig]
		if s == nil {
			continue
		}
		if !s.live {
			for _, d := range dims {
				s.cost[d] = seeds[d].cost[sig]
				s.theta[d] = seeds[d].theta[sig]
			}
			s.live = true
		}
		if n := len(snap[sig]); len(s.runs) == n && s.runs[n-1].start.Equal(snap[sig][n-1].start) {
			r := scores[sig]
			s.score, s.scored, s.conf = r.score, r.scored, r.conf
		}
		s.stats = nil
	}
	for d := range resource.NumDims {
		st.Margins[d] = m.margin[d]
	}
	st.Took = time.Since(t0)
	return st, nil
}

// dimSeed is what the calibration replay of one dimension learned per
// signature.
type dimSeed struct {
	cost  map[string][]float64
	theta map[string]float64
}

// trainDim trains and calibrates dimension d into m (its own fields of m
// only).
func (e *Engine) trainDim(ctx context.Context, cfg TrainConfig, m *models, d resource.Dim, sigs []string, snap map[string][]pastRun) (dimSeed, error) {
	sc := m.scale[d]
	stepS := max(int64(e.cfg.Step/time.Second), 1)
	type ref struct {
		sig string
		i   int
	}
	var all []ref
	for _, sig := range sigs {
		for i := range snap[sig] {
			all = append(all, ref{sig, i})
		}
	}
	// The budget: whole runs in a seeded order, then back in signature
	// and time order (the selector's costs follow each signature). Only
	// the runs taken are unpacked.
	pick := budgetOrder(len(all), func(k int) int { return len(snap[all[k].sig][all[k].i].values[d]) }, e.cfg.MaxTrainSteps, cfg.Seq.Seed)
	slices.Sort(pick)
	runs := make([]ReplayRun, len(pick))
	for j, k := range pick {
		sr := snap[all[k].sig]
		i := all[k].i
		r := &sr[i]
		past := make([]Past, 0, i)
		for _, p := range sr[:i] {
			past = append(past, Past{Start: p.start.Unix(), Values: f64(p.values[d])})
		}
		runs[j] = ReplayRun{
			Ctx:    &RunContext{Identity: all[k].sig, Start: r.start.Unix(), StepS: stepS, Past: past, Scale: sc},
			Values: f64(r.values[d]),
		}
		if !e.cfg.NoLoad {
			runs[j].Load = unpackLoads(r.load)
		}
	}

	seqRuns := make([]SeqRun, len(runs))
	for i, r := range runs {
		seqRuns[i] = SeqRun{Ctx: r.Ctx, Values: r.Values, Load: r.Load}
	}
	sqc := cfg.Seq
	if sqc.MaxSteps == 0 {
		sqc.MaxSteps = e.cfg.MaxSeqSteps
	}
	seq, sst, err := TrainSeq(ctx, sqc, seqRuns)
	switch {
	case err == nil:
		e.log.Info("trained sequence model", "dim", d, "epochs", sst.Epochs, "loss", sst.Loss[len(sst.Loss)-1], "took", sst.Duration)
	case errors.Is(err, ErrNoData):
		seq = nil
	default:
		return dimSeed{}, err
	}
	floor := e.cfg.MinAllocation * sc
	fcs := []Forecaster{&WindowMax{Window: 24}, &DecayedPercentile{}, &Envelope{}}
	if seq != nil {
		fcs = append(fcs, seq)
	}
	margins := map[string]float64{}
	for k, v := range e.cfg.Margins {
		margins[k] = v
	}
	var cands []Calibrated
	mgs, errs, err := CalibrateAll(ctx, fcs, runs, e.cfg.Scoring, e.cfg.Violation, floor)
	if err != nil {
		return dimSeed{}, err
	}
	for i, fc := range fcs {
		mg := mgs[i]
		switch {
		case errs[i] == nil:
			margins[fc.Name()] = mg
		case errors.Is(errs[i], ErrNoData):
			if fc == Forecaster(seq) {
				seq = nil
				continue
			}
			mg = margins[fc.Name()] // too little data: the default
		default:
			return dimSeed{}, errs[i]
		}
		cands = append(cands, Calibrated{F: fc, Margin: mg, Floor: floor})
	}
	if seq != nil {
		seq = NewSeq(seq.m) // fresh state for sessions to copy
	}
	// The served allocation's margin: per regime of relative uncertainty
	// where rows suffice, else one.
	sel := NewSelector(cands, e.cfg.Weights)
	var rows []CalRow
	pts := make([]Point, 1)
	if err := Replay(ctx, sel, runs, e.cfg.Scoring, pts, func(r *ReplayRun, t int, pts []Point) {
		rows = append(rows, CalRow{P50: pts[0].P50, Upper: pts[0].Upper, Y: r.Values[t+1]})
	}); err != nil {
		return dimSeed{}, err
	}
	var regime *RegimeMargin
	if e.cfg.RegimeBins > 0 {
		capM := math.Inf(1)
		if e.cfg.RegimeCap > 0 {
			if one := FitRegimeMargin(rows, e.cfg.Violation, 1, floor); one != nil {
				capM = e.cfg.RegimeCap * max(one.M[0], 0.1)
			}
		}
		regime = FitRegimeMarginCapped(rows, e.cfg.Violation, e.cfg.RegimeBins, floor, capM)
	}
	selMargin := 0.0
	if regime == nil && len(rows) > 0 {
		if mg, err := Calibrate(ctx, sel, runs, e.cfg.Scoring, e.cfg.Violation, floor); err == nil {
			selMargin = mg
		}
	}
	// With the online margin on, seed each signature's by serving its runs
	// in order, as a session would have (the selector's costs follow).
	sv := &served{sel: sel, regime: regime, selMargin: selMargin, floor: floor, adapt: e.cfg.Adapt, alpha: e.cfg.Violation, thetas: map[string]float64{}}
	if e.cfg.Adapt > 0 {
		if err := Replay(ctx, sv, runs, Scoring{First: 0, Tail: 1}, pts, func(*ReplayRun, int, []Point) {}); err != nil {
			return dimSeed{}, err
		}
		if sv.n > 0 {
			sv.thetas[sv.id] = sv.theta
		}
	}
	m.seq[d], m.margin[d], m.regime[d], m.selMargin[d] = seq, margins, regime, selMargin
	e.log.Info("calibrated", "dim", d, "runs", len(runs), "rows", len(rows), "margins", fmtMargins(margins), "regimes", regime != nil)
	return dimSeed{cost: sel.cost, theta: sv.thetas}, nil
}

func fmtMargins(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%.3g ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
