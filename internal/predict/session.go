package predict

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// served is the allocation the engine serves in one dimension, as a
// Forecaster: the Selector's cheapest calibrated candidate, its margin per
// regime of relative uncertainty (or one margin), then a per-identity
// online margin — adaptive conformal inference (Gibbs and Candès 2021) on
// the log of the spread over the median: after each sample the log-factor
// theta moves by Adapt·(1[sample above its allocation] − Violation), so
// that over a signature's runs its share of samples above the allocation
// tends to Violation whatever the pooled calibration says. Forecast's
// Upper points are the allocations.
type served struct {
	sel       *Selector
	regime    *RegimeMargin
	selMargin float64
	floor     float64
	adapt     float64
	alpha     float64

	thetas map[string]float64 // identity → theta, across Begins (replays)
	id     string
	theta  float64
	last   float64 // allocation for the next sample
	n      int
}

var _ Forecaster = (*served)(nil)

func (f *served) Name() string { return "prescient" }

func (f *served) MarginKind() Margin { return Multiplicative }

func (f *served) Begin(c *RunContext) {
	if f.thetas != nil {
		if f.n > 0 {
			f.thetas[f.id] = f.theta
		}
		f.theta = f.thetas[c.Identity]
	}
	f.id = c.Identity
	f.sel.Begin(c)
	f.n = 0
}

func (f *served) setLoad(l loadVec) { f.sel.setLoad(l) }

// alloc is the allocation for forecast point p (Upper: the chosen
// candidate's calibrated allocation).
func (f *served) alloc(p Point) float64 {
	a := p.Upper
	if f.regime != nil {
		a = f.regime.Apply(p, f.floor)
	} else {
		a = max(a, f.floor) * (1 + f.selMargin)
	}
	if a > p.P50 {
		a = p.P50 + (a-p.P50)*math.Exp(f.theta)
	}
	return max(a, f.floor)
}

func (f *served) Observe(v float64) {
	if f.n > 0 && f.adapt > 0 {
		miss := 0.0
		if v > f.last {
			miss = 1
		}
		f.theta = min(max(f.theta+f.adapt*(miss-f.alpha), -4), 4)
	}
	f.sel.Observe(v)
	f.last = f.alloc(f.sel.Next())
	f.n++
}

func (f *served) Forecast(out []Point) {
	f.sel.Forecast(out)
	for i := range out {
		out[i].Upper = f.alloc(out[i])
	}
}

// newServed builds the served forecaster of dimension d from m's
// calibration, with a fresh Seq when m has one.
func (e *Engine) newServed(m *models, d resource.Dim, sc float64) *served {
	cands := []Calibrated{
		{F: &WindowMax{Window: 24}, Margin: m.margin[d]["moving_window_max"]},
		{F: &DecayedPercentile{}, Margin: m.margin[d]["decayed_percentile"]},
		{F: &Envelope{}, Margin: m.margin[d]["envelope"]},
	}
	if sq := m.seq[d]; sq != nil {
		c := NewSeq(sq.m)
		cands = append(cands, Calibrated{F: c, Margin: m.margin[d][c.Name()]})
	}
	floor := e.cfg.MinAllocation * sc
	for i := range cands {
		cands[i].Floor = floor
	}
	return &served{
		sel: NewSelector(cands, e.cfg.Weights), regime: m.regime[d], selMargin: m.selMargin[d],
		floor: floor, adapt: e.cfg.Adapt, alpha: e.cfg.Violation,
	}
}

// Session follows one live run: Observe its samples, Predict at any time.
// A Session is not safe for concurrent use; sessions of one engine may run
// concurrently.
type Session struct {
	e     *Engine
	cfg   *Config // the engine's, immutable
	f     Features
	whole Prediction
	dims  resource.Set
	sv    [resource.NumDims]*served
	load  Load
	n     int
	pts   []Point
}

// Start opens a session for a run of f starting at at (zero: now) under
// load l: its whole-run prediction (none, Source "", when nothing at all is
// known), and the short-horizon forecasters, which carry what the engine
// learned of the signature.
func (e *Engine) Start(f Features, at time.Time, l Load) (*Session, error) {
	if at.IsZero() {
		at = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Nothing known of the signature: no whole-run prediction, but the
	// short horizon still follows the run from its first samples.
	whole, err := e.wholeLocked(f, at, l)
	if err != nil && !errors.Is(err, ErrNoData) {
		return nil, err
	}
	runs, _, k, st := e.history(f, at)
	if st == nil {
		st = e.sigs[f.Signature] // known through sessions, without runs yet
	}
	m := e.m
	sc := e.scales(m)
	s := &Session{e: e, cfg: &e.cfg, f: f, whole: whole, dims: e.cfg.Dims, load: l}
	step := max(int64(e.cfg.Step/time.Second), 1)
	for d := range resource.NumDims {
		if !e.cfg.Dims.Has(d) {
			continue
		}
		past := make([]Past, 0, len(runs))
		for _, r := range runs {
			v := make([]float64, len(r.values[d]))
			for i, x := range r.values[d] {
				v[i] = float64(x) * k
			}
			past = append(past, Past{Start: r.start.Unix(), Values: v})
		}
		sv := e.newServed(m, d, sc[d])
		if st != nil && st.live {
			if len(st.cost[d]) == len(sv.sel.Cands) {
				sv.sel.cost[f.Signature] = slices.Clone(st.cost[d])
			}
			sv.theta = st.theta[d]
		}
		sv.Begin(&RunContext{Identity: f.Signature, Start: at.Unix(), StepS: step, Past: past, Scale: sc[d]})
		s.sv[d] = sv
	}
	return s, nil
}

// SetLoad tells the session the node's load now; the next Observe passes
// it to the learned models (with the run's own CPU taken out).
func (s *Session) SetLoad(l Load) { s.load = l }

// Close ends the session and keeps what it learned of the signature (the
// selector's costs, the online margin) for its next runs. Idempotent.
func (s *Session) Close() {
	if s.e == nil {
		return
	}
	e := s.e
	s.e = nil
	if s.n == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.sigs[s.f.Signature]
	if st == nil {
		st = &sigState{code: s.f.Code}
		e.sigs[s.f.Signature] = st
	}
	for d := range resource.NumDims {
		if sv := s.sv[d]; sv != nil {
			st.cost[d] = slices.Clone(sv.sel.cost[s.f.Signature])
			st.theta[d] = sv.theta
		}
	}
	st.live = true
}

// Observe feeds the run's next sample. It does not allocate.
func (s *Session) Observe(x resource.Sample) {
	var lf loadVec
	if !s.cfg.NoLoad {
		lf = s.load.features(finite0(x.CPU))
	}
	for d := range resource.NumDims {
		if sv := s.sv[d]; sv != nil {
			sv.setLoad(lf)
			sv.Observe(finite0(x.Value(d)))
		}
	}
	s.n++
}

// Next is the allocation for the next sample in dimension d (0 before the
// first sample or for a dimension not predicted).
func (s *Session) Next(d resource.Dim) float64 {
	if sv := s.sv[d]; sv != nil && s.n > 0 {
		return sv.last
	}
	return 0
}

// Candidate is one short-horizon candidate's next-step forecast: its
// median and its calibrated allocation (before the served regime margin).
type Candidate struct {
	Name       string
	P50, Alloc float64
}

// Candidates appends to dst the next-step forecast of each candidate the
// served allocation in dimension d chooses from, and returns the index of
// the chosen one (−1 before the first sample or for a dimension not
// predicted). It explains an allocation; Next is the allocation.
func (s *Session) Candidates(dst []Candidate, d resource.Dim) ([]Candidate, int) {
	sv := s.sv[d]
	if sv == nil || s.n == 0 {
		return dst, -1
	}
	for i, c := range sv.sel.Cands {
		dst = append(dst, Candidate{Name: c.F.Name(), P50: sv.sel.next[i].P50, Alloc: sv.sel.lastA[i]})
	}
	return dst, sv.sel.Chosen()
}

// Predict returns the whole-run prediction made when the session started
// and the short curves for the next h (at least one step): medians and
// allocations. Before the first sample the short curve comes from the
// whole-run prediction.
func (s *Session) Predict(h time.Duration) Prediction {
	step := s.cfg.Step
	n := max(int(h/step), 1)
	p := s.whole
	if cap(s.pts) < n {
		s.pts = make([]Point, n)
	}
	pts := s.pts[:n]
	for d := range resource.NumDims {
		sv := s.sv[d]
		if sv == nil {
			continue
		}
		c := Curve{Step: step, P50: make([]float64, n), Upper: make([]float64, n)}
		if s.n == 0 {
			c = shortOfWhole(s.whole.Whole[d], h, step)
		} else {
			sv.Forecast(pts)
			for i, pt := range pts {
				c.P50[i], c.Upper[i] = pt.P50, pt.Upper
			}
			if p.Model == s.whole.Model { // the first dimension predicted: CPU where there is one
				p.Model = s.whole.Model + "+prescient/" + sv.sel.Cands[sv.sel.served].F.Name()
			}
		}
		p.Short[d] = c
	}
	return p
}

// Forecast fills out (one Point per step ahead: median and allocation)
// for dimension d without allocating: the hot path behind Predict.
func (s *Session) Forecast(d resource.Dim, out []Point) {
	if sv := s.sv[d]; sv != nil {
		sv.Forecast(out)
		return
	}
	clear(out)
}

// Whole is the whole-run prediction made when the session started.
func (s *Session) Whole() Prediction { return s.whole }

func (s *Session) String() string {
	return fmt.Sprintf("session %.12s (%d samples)", s.f.Signature, s.n)
}
