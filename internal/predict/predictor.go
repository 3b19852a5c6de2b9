package predict

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Features describe a task's signature.
type Features struct {
	Signature string // SHA-256 of code, arguments and inputs
	Code      string // hash of the code alone: runs at other input sizes share it
	InputSize float64
	InputType string
}

// Load is the node's state when the prediction is made.
type Load struct {
	CPU, Memory float64 // utilisation, 0…1
	Running     int     // tasks running
}

// Source says which rung of the cold-start chain answered.
type Source string

// The cold-start chain, most specific first.
const (
	SourceExact Source = "exact" // earlier runs of this signature
	SourceSize  Source = "size"  // same code at other input sizes, scaled by a fit of usage on input size
	SourceCode  Source = "code"  // same code, unscaled
	SourcePrior Source = "prior" // every run seen, with PriorMargin on top
)

// Curve is a forecast curve: point i is at (i+1)·Step from now (short
// horizon) or covers [i·Step, (i+1)·Step) since the start (whole run).
type Curve struct {
	Step  time.Duration
	P50   []float64
	Upper []float64 // at quantile Prediction.UpperQ, margin included
}

// Prediction is a Predictor's answer. Its curves are indexed by
// resource.Dim, in resource's units.
type Prediction struct {
	Model  string // model that answered the short horizon ("prescient/<candidate>", "history")
	Source Source
	UpperQ float64 // quantile of the Upper points
	Short  [resource.NumDims]Curve
	Whole  [resource.NumDims]Curve
	// Duration is the run's expected length (p50) and DurationUpper its
	// upper quantile; zero when nothing is known.
	Duration, DurationUpper time.Duration
}

// Query asks for a prediction.
type Query struct {
	Features
	Load
	// Samples are the run's own samples so far, oldest first (optional).
	Samples []resource.Sample
	// Horizon is how far ahead the short curve goes; 0 = Config.Horizon.
	Horizon time.Duration
}

// Predictor predicts resource curves. Implementations are safe for
// concurrent use.
type Predictor interface {
	Predict(ctx context.Context, q Query) (Prediction, error)
}

var _ Predictor = (*Engine)(nil)

// Config configures an Engine.
type Config struct {
	Step        time.Duration // sampling step; default 1 s
	Horizon     time.Duration // default short horizon; default 10 s
	WholeStep   time.Duration // whole-run curve step; default 10·Step
	MaxRuns     int           // runs kept per signature; default 8
	MaxSamples  int           // samples kept per run; default 4096
	PriorMargin float64       // extra fraction on the global prior; default 0.5
	// Margins are the calibrated safety margins of the candidates by name
	// (see eval); missing ones get DefaultMargins.
	Margins map[string]float64
	Weights CostWeights
}

// DefaultMargins are the margins the shared traces calibrate to (rounded
// up; see docs/prediction.md).
var DefaultMargins = map[string]float64{
	"moving_window_max":  0.1,
	"decayed_percentile": 0.15, // VPA's safety margin
	"envelope":           4,
	"gru":                3,
	"lstm":               3,
}

func (c *Config) validate() error {
	if c.Step == 0 {
		c.Step = time.Second
	}
	if c.Horizon == 0 {
		c.Horizon = 10 * c.Step
	}
	if c.WholeStep == 0 {
		c.WholeStep = 10 * c.Step
	}
	if c.MaxRuns == 0 {
		c.MaxRuns = 8
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = 4096
	}
	if c.PriorMargin == 0 {
		c.PriorMargin = 0.5
	}
	switch {
	case c.Step < time.Millisecond || c.Horizon < c.Step || c.WholeStep < c.Step:
		return fmt.Errorf("step %v, horizon %v, whole step %v: %w", c.Step, c.Horizon, c.WholeStep, ErrConfig)
	case c.MaxRuns < 1 || c.MaxSamples < 8:
		return fmt.Errorf("max runs %d, max samples %d: %w", c.MaxRuns, c.MaxSamples, ErrConfig)
	case c.PriorMargin < 0 || math.IsNaN(c.PriorMargin):
		return fmt.Errorf("prior margin %v: %w", c.PriorMargin, ErrConfig)
	}
	m := make(map[string]float64, len(DefaultMargins))
	for k, v := range DefaultMargins {
		m[k] = v
	}
	for k, v := range c.Margins {
		if math.IsNaN(v) || v < -1 {
			return fmt.Errorf("margin %s = %v: %w", k, v, ErrConfig)
		}
		m[k] = v
	}
	c.Margins = m
	return nil
}

// pastRun is one finished run kept for its signature.
type pastRun struct {
	start  time.Time
	input  float64
	values [resource.NumDims][]float32 // float32 halves the cache; usage needs no more
}

// sigState is what the engine keeps per signature.
type sigState struct {
	code string
	runs []pastRun // oldest first, at most MaxRuns
}

// Engine is the daemon's Predictor: it keeps each signature's recent runs,
// answers through the cold-start chain, and serves per dimension the
// candidate a Selector finds cheapest for the signature. Safe for
// concurrent use; mu guards sigs, codes, seq and cost.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	sigs  map[string]*sigState
	codes map[string][]string                     // code → signatures
	seq   [resource.NumDims]*Seq                  // learned model per dimension; nil until trained or loaded
	cost  map[string]*[resource.NumDims][]float64 // signature → decayed cost per candidate
	scale [resource.NumDims]float64               // running mean usage per dimension
	nobs  float64
}

// NewEngine returns an empty engine. log may be nil.
func NewEngine(cfg Config, log *slog.Logger) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Engine{cfg: cfg, log: log, sigs: map[string]*sigState{}, codes: map[string][]string{}, cost: map[string]*[resource.NumDims][]float64{}}, nil
}

// AddRun records a finished run of f's signature.
func (e *Engine) AddRun(f Features, start time.Time, samples []resource.Sample) {
	if len(samples) == 0 {
		return
	}
	samples = samples[max(0, len(samples)-e.cfg.MaxSamples):]
	r := pastRun{start: start, input: f.InputSize}
	for d := range resource.NumDims {
		v := make([]float32, len(samples))
		for i, s := range samples {
			v[i] = float32(s.Value(d))
		}
		r.values[d] = v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.sigs[f.Signature]
	if st == nil {
		st = &sigState{code: f.Code}
		e.sigs[f.Signature] = st
		if f.Code != "" {
			e.codes[f.Code] = append(e.codes[f.Code], f.Signature)
		}
	}
	st.runs = append(st.runs, r)
	if len(st.runs) > e.cfg.MaxRuns {
		st.runs = slices.Delete(st.runs, 0, len(st.runs)-e.cfg.MaxRuns)
	}
	for d := range resource.NumDims {
		for _, x := range r.values[d] {
			e.nobs++
			e.scale[d] += (float64(x) - e.scale[d]) / max(e.nobs/float64(resource.NumDims), 1)
		}
	}
}

// SetSeq installs a trained sequence model for dimension d (nil removes).
func (e *Engine) SetSeq(d resource.Dim, s *Seq) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq[d] = s
}

// history returns the runs to predict from and where they came from, with
// the factor to scale them by (the input-size fit), under e.mu.
func (e *Engine) history(f Features) ([]pastRun, Source, float64) {
	if st := e.sigs[f.Signature]; st != nil && len(st.runs) > 0 {
		return st.runs, SourceExact, 1
	}
	var same []pastRun
	for _, sig := range e.codes[f.Code] {
		same = append(same, e.sigs[sig].runs...)
	}
	if len(same) > 0 {
		if a, b, ok := sizeFit(same, f.InputSize); ok {
			// Scale each run from its own size to the asked one.
			scaled := make([]pastRun, len(same))
			for i, r := range same {
				k := 1.0
				if from := a + b*r.input; r.input > 0 && from > 0 {
					k = (a + b*f.InputSize) / from
				}
				scaled[i] = pastRun{start: r.start, input: f.InputSize}
				for d := range resource.NumDims {
					v := make([]float32, len(r.values[d]))
					for j, x := range r.values[d] {
						v[j] = float32(float64(x) * k)
					}
					scaled[i].values[d] = v
				}
			}
			return scaled, SourceSize, 1
		}
		return same, SourceCode, 1
	}
	var all []pastRun
	for _, st := range e.sigs {
		if n := len(st.runs); n > 0 {
			all = append(all, st.runs[n-1])
		}
	}
	return all, SourcePrior, 1 + e.cfg.PriorMargin
}

// sizeFit fits mean memory usage against input size by least squares
// over the runs (usage = a + b·size); ok is false when the runs do not
// span two sizes, x is unknown, or the fit predicts no usage at x.
// Memory is the dimension input size drives most; one fit scales all.
func sizeFit(runs []pastRun, x float64) (a, b float64, ok bool) {
	if x <= 0 {
		return 0, 0, false
	}
	var sx, sy, sxx, sxy, n float64
	for _, r := range runs {
		if r.input <= 0 {
			continue
		}
		var m float64
		for _, v := range r.values[resource.Memory] {
			m += float64(v)
		}
		m /= float64(max(len(r.values[resource.Memory]), 1))
		sx += r.input
		sy += m
		sxx += r.input * r.input
		sxy += r.input * m
		n++
	}
	den := n*sxx - sx*sx
	if n < 2 || den <= 0 || sy <= 0 {
		return 0, 0, false
	}
	b = (n*sxy - sx*sy) / den
	a = (sy - b*sx) / n
	if a+b*x <= 0 {
		return 0, 0, false
	}
	return a, b, true
}

// Predict implements Predictor.
func (e *Engine) Predict(ctx context.Context, q Query) (Prediction, error) {
	if err := ctx.Err(); err != nil {
		return Prediction{}, err
	}
	s, err := e.Start(q.Features, q.Load)
	if err != nil {
		return Prediction{}, err
	}
	defer s.Close()
	for _, x := range q.Samples {
		s.Observe(x)
	}
	h := q.Horizon
	if h == 0 {
		h = e.cfg.Horizon
	}
	return s.Predict(h), nil
}

// Session follows one live run: Observe its samples, Predict at any time.
// A Session is not safe for concurrent use; sessions of one engine may run
// concurrently.
type Session struct {
	e      *Engine
	cfg    *Config
	f      Features
	source Source
	factor float64
	whole  [resource.NumDims]Curve
	dur    [2]time.Duration
	sel    [resource.NumDims]*Selector
	n      int
	pts    []Point
}

// Start opens a session for a run of f about to start under load l.
func (e *Engine) Start(f Features, l Load) (*Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	runs, src, k := e.history(f)
	if len(runs) == 0 {
		return nil, fmt.Errorf("signature %.12s: %w", f.Signature, ErrNoData)
	}
	s := &Session{e: e, cfg: &e.cfg, f: f, source: src, factor: k}
	s.whole, s.dur = e.wholeCurves(runs, k)
	cost := e.cost[f.Signature]
	if cost == nil {
		cost = new([resource.NumDims][]float64)
		e.cost[f.Signature] = cost
	}
	step := int64(e.cfg.Step / time.Second)
	now := time.Now()
	for d := range resource.NumDims {
		past := make([]Past, 0, len(runs))
		for _, r := range runs {
			v := make([]float64, len(r.values[d]))
			for i, x := range r.values[d] {
				v[i] = float64(x) * k
			}
			past = append(past, Past{Start: r.start.Unix() - now.Unix(), Values: v})
		}
		cands := []Calibrated{
			{F: &WindowMax{Window: 24}, Margin: e.cfg.Margins["moving_window_max"]},
			{F: &DecayedPercentile{}, Margin: e.cfg.Margins["decayed_percentile"]},
			{F: &Envelope{}, Margin: e.cfg.Margins["envelope"]},
		}
		if sq := e.seq[d]; sq != nil {
			c := NewSeq(sq.m)
			c.SetLoad(l.CPU, l.Memory, l.Running)
			cands = append(cands, Calibrated{F: c, Margin: e.cfg.Margins[c.Name()]})
		}
		sel := NewSelector(cands, e.cfg.Weights)
		if len(cost[d]) == len(cands) {
			sel.cost[f.Signature] = slices.Clone(cost[d])
		}
		sel.Begin(&RunContext{Identity: f.Signature, Start: 0, StepS: max(step, 1), Past: past, Scale: max(e.scale[d], 1e-9)})
		s.sel[d] = sel
	}
	return s, nil
}

// wholeCurves summarises runs by time since start at WholeStep: per
// bucket the median over runs of the bucket's mean (P50) and the max over
// runs of the bucket's max (Upper), times k; and the runs' durations.
func (e *Engine) wholeCurves(runs []pastRun, k float64) (out [resource.NumDims]Curve, dur [2]time.Duration) {
	per := max(int(e.cfg.WholeStep/e.cfg.Step), 1)
	longest := 0
	durs := make([]float64, 0, len(runs))
	for _, r := range runs {
		n := len(r.values[0])
		longest = max(longest, n)
		durs = append(durs, float64(n))
	}
	slices.Sort(durs)
	dur[0] = time.Duration(durs[len(durs)/2] * float64(e.cfg.Step))
	dur[1] = time.Duration(durs[len(durs)-1] * float64(e.cfg.Step))
	nb := (longest + per - 1) / per
	means := make([]float64, 0, len(runs))
	for d := range resource.NumDims {
		c := Curve{Step: e.cfg.WholeStep, P50: make([]float64, nb), Upper: make([]float64, nb)}
		for b := range nb {
			means = means[:0]
			var mx float64
			for _, r := range runs {
				v := r.values[d]
				lo, hi := b*per, min((b+1)*per, len(v))
				if lo >= hi {
					continue
				}
				var s float64
				for _, x := range v[lo:hi] {
					s += float64(x)
					mx = max(mx, float64(x))
				}
				means = append(means, s/float64(hi-lo))
			}
			if len(means) == 0 {
				continue
			}
			slices.Sort(means)
			c.P50[b] = means[len(means)/2] * k
			c.Upper[b] = mx * k
		}
		out[d] = c
	}
	return out, dur
}

// Close ends the session and keeps what the selector learned about the
// signature's candidates for its next runs. Idempotent.
func (s *Session) Close() {
	if s.e == nil {
		return
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	if c := s.e.cost[s.f.Signature]; c != nil {
		for d := range resource.NumDims {
			c[d] = s.sel[d].cost[s.f.Signature]
		}
	}
	s.e = nil
}

// Observe feeds the run's next sample. It does not allocate.
func (s *Session) Observe(x resource.Sample) {
	for d := range resource.NumDims {
		s.sel[d].Observe(x.Value(d))
	}
	s.n++
}

// Predict returns the curves for the next h (at least one step). Before
// the first sample the short curve comes from the whole-run history.
func (s *Session) Predict(h time.Duration) Prediction {
	step := s.cfg.Step
	n := max(int(h/step), 1)
	p := Prediction{Source: s.source, UpperQ: 0.99, Whole: s.whole, Duration: s.dur[0], DurationUpper: s.dur[1], Model: "history"}
	if cap(s.pts) < n {
		s.pts = make([]Point, n)
	}
	pts := s.pts[:n]
	for d := range resource.NumDims {
		c := Curve{Step: step, P50: make([]float64, n), Upper: make([]float64, n)}
		if s.n == 0 {
			w := s.whole[d]
			for i := range n {
				j := min(i*int(step)/int(w.Step), len(w.P50)-1)
				if j >= 0 {
					c.P50[i], c.Upper[i] = w.P50[j], w.Upper[j]
				}
			}
		} else {
			s.sel[d].Forecast(pts)
			for i, pt := range pts {
				c.P50[i], c.Upper[i] = pt.P50, pt.Upper
			}
			if d == resource.CPU {
				p.Model = "prescient/" + s.sel[d].Cands[s.sel[d].served].F.Name()
			}
		}
		p.Short[d] = c
	}
	return p
}

// Forecast fills out (one Point per step ahead) for dimension d without
// allocating: the hot path behind Predict.
func (s *Session) Forecast(d resource.Dim, out []Point) { s.sel[d].Forecast(out) }

// Train fits one sequence model per dimension on the runs the engine
// keeps and installs them. It runs on the caller's goroutine (the daemon
// runs it in the background, one at a time, so it uses one core at most)
// and stops with ctx.
func (e *Engine) Train(ctx context.Context, cfg SeqConfig) error {
	e.mu.Lock()
	var runs [resource.NumDims][]SeqRun
	for _, st := range e.sigs {
		for i, r := range st.runs {
			for d := range resource.NumDims {
				past := make([]Past, 0, i)
				for _, p := range st.runs[:i] {
					past = append(past, Past{Start: p.start.Unix() - r.start.Unix(), Values: f64(p.values[d])})
				}
				runs[d] = append(runs[d], SeqRun{
					Ctx:    &RunContext{Identity: "", Start: 0, StepS: max(int64(e.cfg.Step/time.Second), 1), Past: past, Scale: max(e.scale[d], 1e-9)},
					Values: f64(r.values[d]),
				})
			}
		}
	}
	e.mu.Unlock()
	for d := range resource.NumDims {
		s, st, err := TrainSeq(ctx, cfg, runs[d])
		if err != nil {
			return fmt.Errorf("train %s: %w", d, err)
		}
		e.log.Info("trained sequence model", "dim", d, "epochs", st.Epochs, "loss", st.Loss[len(st.Loss)-1], "took", st.Duration)
		e.SetSeq(d, s)
	}
	return nil
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
