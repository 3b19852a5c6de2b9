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

// Source says which rung of the cold-start chain answered.
type Source string

// The cold-start chain, most specific first.
const (
	SourceExact Source = "exact" // earlier runs of this signature
	SourceSize  Source = "size"  // same code at other input sizes, scaled by a fit of usage on input size
	SourceCode  Source = "code"  // same code, unscaled
	SourcePrior Source = "prior" // every run seen, with PriorMargin on top
)

// Models that size a run before it starts (Prediction.Model).
const (
	ModelHistory = "history" // per-bucket statistics of the earlier runs
	ModelSeq     = "seq"     // the run-level sequence model's correction of them
)

// Curve is a forecast curve: point i is at (i+1)·Step from now (short
// horizon) or covers [i·Step, (i+1)·Step) since the start (whole run).
type Curve struct {
	Step  time.Duration
	P50   []float64
	Upper []float64 // at quantile Prediction.UpperQ (whole) or the allocation (short), margin included
}

// Prediction is a Predictor's answer. Its curves are indexed by
// resource.Dim, in resource's units.
type Prediction struct {
	// Model is the whole-run model ("history" or "seq") and, once the run
	// has samples, the candidate serving the short horizon
	// ("history+prescient/<candidate>").
	Model  string
	Source Source
	UpperQ float64 // quantile of the Whole curves' Upper points
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
	// At is when the run starts (zero: now).
	At time.Time
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

// Config configures an Engine. The daemon and `prescient eval` build their
// engines from it; only the sampling step and the scoring window differ
// between a node's tasks and the public traces.
type Config struct {
	Step        time.Duration // sampling step; default 1 s
	Horizon     time.Duration // default short horizon; default 10·Step
	WholeStep   time.Duration // whole-run curve step; default 10·Step
	MaxRuns     int           // runs kept per signature; default 8
	MaxSamples  int           // samples kept per run; default 4096
	PriorMargin float64       // extra fraction on the global prior; default 0.5
	// Dims are the dimensions predicted; 0 = all.
	Dims resource.Set
	// Margins are the candidates' margins by name until Train calibrates
	// them; missing ones get DefaultMargins.
	Margins map[string]float64
	Weights CostWeights
	// Violation is the share of next-step samples allowed above the
	// allocation, per signature (default 0.01).
	Violation float64
	// RegimeBins is the number of regimes of relative uncertainty the
	// served allocation's margin distinguishes (default 10; negative: one
	// margin).
	RegimeBins int
	// RegimeCap bounds each regime's margin to this multiple of the one
	// margin all rows would get (0 = no bound).
	RegimeCap float64
	// MinAllocation is every allocation's floor, as a fraction of the
	// dimension's mean usage (default 0.01).
	MinAllocation float64
	// Adapt is the step of the per-signature online margin of the short
	// horizon (adaptive conformal inference on the log of the spread);
	// 0 = off, the default: on the shared traces it costs more slack than
	// it saves violations (docs/prediction.md).
	Adapt float64
	// Scoring is the window of each run whose next-step rows calibrate the
	// margins (default {24, SeqHorizons}, the public traces' protocol; the
	// daemon's runs are short and use {2, 1}).
	Scoring Scoring
	// WholeQ is the quantile of the whole-run curves' Upper points, which
	// the per-signature conformal margins calibrate (default 0.95, the
	// ledger's).
	WholeQ float64
	// MaxTrainSteps bounds the samples per dimension that calibrate the
	// margins (default 400,000), and MaxSeqSteps those of them that train
	// the sequence model (default 200,000); runs are taken whole, in a
	// seeded random order.
	MaxTrainSteps, MaxSeqSteps int
	// NoLoad leaves the node's load out of the learned models (an
	// ablation): they are trained and run with its features at 0.
	NoLoad bool
}

// DefaultMargins are the candidates' margins before Train calibrates them
// (from the shared traces, rounded up; see docs/prediction.md).
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
	if c.Dims == 0 {
		c.Dims = resource.All
	}
	if c.Violation == 0 {
		c.Violation = 0.01
	}
	if c.RegimeBins == 0 {
		c.RegimeBins = 10
	}
	if c.MinAllocation == 0 {
		c.MinAllocation = 0.01
	}
	if c.Scoring == (Scoring{}) {
		c.Scoring = Scoring{First: 24, Tail: SeqHorizons}
	}
	if c.WholeQ == 0 {
		c.WholeQ = 0.95
	}
	if c.MaxTrainSteps == 0 {
		c.MaxTrainSteps = 400_000
	}
	if c.MaxSeqSteps == 0 {
		c.MaxSeqSteps = 200_000
	}
	switch {
	case c.Step < time.Millisecond || c.Horizon < c.Step || c.WholeStep < c.Step:
		return fmt.Errorf("step %v, horizon %v, whole step %v: %w", c.Step, c.Horizon, c.WholeStep, ErrConfig)
	case c.MaxRuns < 1 || c.MaxRuns > 255 || c.MaxSamples < 8:
		return fmt.Errorf("max runs %d, max samples %d: %w", c.MaxRuns, c.MaxSamples, ErrConfig)
	case c.PriorMargin < 0 || math.IsNaN(c.PriorMargin):
		return fmt.Errorf("prior margin %v: %w", c.PriorMargin, ErrConfig)
	case !(c.Violation > 0 && c.Violation < 0.5) || !(c.WholeQ > 0.5 && c.WholeQ < 1):
		return fmt.Errorf("violation share %v, whole-run quantile %v: %w", c.Violation, c.WholeQ, ErrConfig)
	case !(c.MinAllocation >= 0) || c.Scoring.First < 0 || c.Scoring.Tail < 1 || c.MaxTrainSteps < 0 || c.MaxSeqSteps < 0 || !(c.Adapt >= 0):
		return fmt.Errorf("min allocation %v, scoring %+v, max train steps %d, adapt %v: %w", c.MinAllocation, c.Scoring, c.MaxTrainSteps, c.Adapt, ErrConfig)
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

// pastRun is one finished run kept for its signature. Its slices are never
// written after AddRun, so snapshots may share them.
type pastRun struct {
	start  time.Time
	input  float64
	values [resource.NumDims][]float32 // float32 halves the cache; usage needs no more
	load   []packedLoad                // per sample, own CPU subtracted; nil = unknown
	sum    runSummary
}

// Candidates of the whole-run prediction, indexes of sigState.score.
const (
	candHistory = iota
	candSeq
	numCands
)

var candNames = [numCands]string{ModelHistory, ModelSeq}

// numMarginSlots: a conformal margin per dimension, and one for the
// duration.
const numMarginSlots = int(resource.NumDims) + 1

// sigState is what the engine keeps per signature.
type sigState struct {
	code string
	runs []pastRun // oldest first, at most MaxRuns

	// Live (next-step) state, written back when a Session closes.
	cost  [resource.NumDims][]float64 // selector's decayed cost per candidate
	theta [resource.NumDims]float64   // online margin (log of the spread factor)
	live  bool                        // cost and theta were set by a session or a load

	// Whole-run scoring, updated by AddRun and recomputed by Train.
	score  [numCands]float64                   // decayed pinball loss at WholeQ
	scored [numCands]int                       // runs scored
	conf   [numCands][numMarginSlots][]float32 // per run: the margin it needed, last MaxRuns

	stats *wholeStats // cached history statistics of runs; nil = stale
}

// Engine is the daemon's predictor and the one `prescient eval` scores. It
// keeps each signature's recent runs; sizes a run before it starts by the
// whole-run model that scores best on the signature's own runs, with a
// per-signature conformal margin; follows live runs through Sessions; and
// Train fits and calibrates its learned models. Safe for concurrent use;
// mu guards every field below it. Sessions are not safe for concurrent
// use; sessions of one engine may run concurrently.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	sigs    map[string]*sigState
	codes   map[string][]string       // code → signatures
	scale   [resource.NumDims]float64 // running mean usage per dimension
	nobs    [resource.NumDims]float64
	m       *models // learned and calibrated; replaced whole, never written
	scratch *runScratch
	g       globalScore
}

// NewEngine returns an empty engine. log may be nil.
func NewEngine(cfg Config, log *slog.Logger) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &Engine{cfg: cfg, log: log, sigs: map[string]*sigState{}, codes: map[string][]string{}}
	e.m = defaultModels(&e.cfg)
	return e, nil
}

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Run is a finished run for AddRun.
type Run struct {
	Features
	Start   time.Time
	Samples []resource.Sample
	// Load is the node's load at each sample (nil: unknown). Shorter
	// than Samples: the missing steps count as unknown.
	Load []Load
}

// AddRun records a finished run of its signature: it scores the whole-run
// models on it (what each would have predicted before it started) and
// keeps it as history.
func (e *Engine) AddRun(r Run) {
	samples := r.Samples
	if len(samples) == 0 {
		return
	}
	cut := max(0, len(samples)-e.cfg.MaxSamples)
	samples = samples[cut:]
	pr := pastRun{start: r.Start, input: r.InputSize}
	var acc resource.Accumulator
	for d := range resource.NumDims {
		v := make([]float32, len(samples))
		for i, s := range samples {
			v[i] = float32(finite0(s.Value(d)))
		}
		pr.values[d] = v
	}
	for _, s := range samples {
		acc.Add(s)
	}
	if len(r.Load) > cut {
		ld := r.Load[cut:]
		pr.load = make([]packedLoad, len(samples))
		for i := range min(len(ld), len(samples)) {
			pr.load[i] = packLoad(ld[i].features(finite0(samples[i].CPU)))
		}
	}
	pr.sum = summarize(&pr)
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.sigs[r.Signature]
	if st == nil {
		st = &sigState{code: r.Code}
		e.sigs[r.Signature] = st
	}
	if st.code == "" && r.Code != "" {
		st.code = r.Code
	}
	if st.code != "" && !slices.Contains(e.codes[st.code], r.Signature) {
		e.codes[st.code] = append(e.codes[st.code], r.Signature)
	}
	for d := range resource.NumDims {
		for _, x := range pr.values[d] {
			e.nobs[d]++
			e.scale[d] += (float64(x) - e.scale[d]) / e.nobs[d]
		}
	}
	if len(st.runs) > 0 {
		now := loadVec{}
		if len(pr.load) > 0 {
			now = pr.load[0].unpack() // what was known when it started
		}
		sc := e.scales(e.m)
		e.scoreRun(e.m, &e.scratch, &sc, &e.g, st, st.runs, &pr, now)
	}
	st.runs = append(st.runs, pr)
	if len(st.runs) > e.cfg.MaxRuns {
		st.runs = slices.Delete(st.runs, 0, len(st.runs)-e.cfg.MaxRuns)
	}
	st.stats = nil
}

func finite0(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0
	}
	return x
}

// summarize is what the run model reads of a run.
func summarize(r *pastRun) runSummary {
	s := runSummary{steps: float64(len(r.values[0])), input: r.input, load: meanPacked(r.load)}
	for d := range resource.NumDims {
		var sum, mx float64
		for _, x := range r.values[d] {
			sum += float64(x)
			mx = max(mx, float64(x))
		}
		if n := len(r.values[d]); n > 0 {
			s.mean[d] = sum / float64(n)
		}
		s.peak[d] = mx
	}
	return s
}

// history returns the runs to predict a run of f starting at at from, and
// where they came from, with the factor to scale them by, under e.mu. Runs
// that started at or after at are not history.
func (e *Engine) history(f Features, at time.Time) ([]pastRun, Source, float64, *sigState) {
	before := func(runs []pastRun) []pastRun {
		n := len(runs)
		for n > 0 && !runs[n-1].start.Before(at) {
			n--
		}
		return runs[:n]
	}
	if st := e.sigs[f.Signature]; st != nil {
		if runs := before(st.runs); len(runs) > 0 {
			return runs, SourceExact, 1, st
		}
	}
	var same []pastRun
	for _, sig := range e.codes[f.Code] {
		same = append(same, before(e.sigs[sig].runs)...)
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
				scaled[i] = pastRun{start: r.start, input: f.InputSize, load: r.load}
				for d := range resource.NumDims {
					v := make([]float32, len(r.values[d]))
					for j, x := range r.values[d] {
						v[j] = float32(float64(x) * k)
					}
					scaled[i].values[d] = v
				}
				scaled[i].sum = summarize(&scaled[i])
			}
			return scaled, SourceSize, 1, nil
		}
		return same, SourceCode, 1, nil
	}
	var all []pastRun
	for _, st := range e.sigs {
		if runs := before(st.runs); len(runs) > 0 {
			all = append(all, runs[len(runs)-1])
		}
	}
	return all, SourcePrior, 1 + e.cfg.PriorMargin, nil
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
		m := r.sum.mean[resource.Memory]
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

// scales returns the per-dimension scales the models use: the calibrated
// ones, else the running means; under e.mu.
func (e *Engine) scales(m *models) [resource.NumDims]float64 {
	var out [resource.NumDims]float64
	for d := range resource.NumDims {
		out[d] = m.scale[d]
		if !(out[d] > 0) {
			out[d] = max(e.scale[d], 1e-9)
		}
	}
	return out
}

// Predict implements Predictor: the whole-run prediction for a run of q's
// signature starting at q.At (now when zero) under q.Load, and, when q has
// samples, the short horizon after them.
func (e *Engine) Predict(ctx context.Context, q Query) (Prediction, error) {
	if err := ctx.Err(); err != nil {
		return Prediction{}, err
	}
	at := q.At
	if at.IsZero() {
		at = time.Now()
	}
	h := q.Horizon
	if h == 0 {
		h = e.cfg.Horizon
	}
	if len(q.Samples) == 0 {
		p, err := e.Whole(q.Features, at, q.Load)
		if err != nil {
			return p, err
		}
		for d := range resource.NumDims {
			if e.cfg.Dims.Has(d) {
				p.Short[d] = shortOfWhole(p.Whole[d], h, e.cfg.Step)
			}
		}
		return p, nil
	}
	s, err := e.Start(q.Features, at, q.Load)
	if err != nil {
		return Prediction{}, err
	}
	defer s.Close()
	for _, x := range q.Samples {
		s.Observe(x)
	}
	return s.Predict(h), nil
}

// shortOfWhole is the short curve for the next h from the start of a run,
// read off its whole-run curve.
func shortOfWhole(w Curve, h, step time.Duration) Curve {
	n := max(int(h/step), 1)
	c := Curve{Step: step, P50: make([]float64, n), Upper: make([]float64, n)}
	for i := range n {
		j := min(int(time.Duration(i)*step/max(w.Step, 1)), len(w.P50)-1)
		if j >= 0 {
			c.P50[i], c.Upper[i] = w.P50[j], w.Upper[j]
		}
	}
	return c
}

// DaemonConfig is the configuration `prescient serve` runs the engine
// with, for tasks sampled every step with whole-run curves of wholeStep:
// the defaults, except that a node's runs are short, so every next-step
// row from the second sample to the last but one calibrates the margins.
// `prescient eval --state-dir` replays a daemon's history with it.
func DaemonConfig(step, wholeStep time.Duration) Config {
	return Config{Step: step, WholeStep: max(wholeStep.Round(step), step), Scoring: Scoring{First: 1, Tail: 1}}
}

// Candidates returns, for dimension d, fresh instances of the next-step
// candidates the engine serves from, each with the margin and floor Train
// calibrated (so each can be scored alone, as `prescient eval` does).
func (e *Engine) Candidates(d resource.Dim) []Calibrated {
	e.mu.Lock()
	m := e.m
	sc := e.scales(m)
	e.mu.Unlock()
	return e.newServed(m, d, sc[d]).sel.Cands
}

// WholeCandidates predicts a run of f like Whole, once per whole-run
// candidate, each with its own per-signature margin, by model name.
func (e *Engine) WholeCandidates(f Features, at time.Time, l Load) (map[string]Prediction, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]Prediction{}
	for c := range numCands {
		p, err := e.wholeAs(f, at, l, c)
		if err != nil {
			return nil, err
		}
		if p.Model == candNames[c] {
			out[p.Model] = p
		}
	}
	return out, nil
}

// Scale is the magnitude of dimension d the engine sizes floors and
// histograms by: the one Train calibrated at, else the running mean of
// every run added.
func (e *Engine) Scale(d resource.Dim) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scales(e.m)[d]
}
