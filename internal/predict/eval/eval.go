package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/trace"
)

// ErrOptions reports invalid options.
var ErrOptions = errors.New("eval: invalid options")

// Usage is the help text for the "prescient eval" command.
const Usage = `Usage: prescient eval --format google2011|google2019|bitbrains --train FILE... [--test FILE...]
                      [--split FRAC] [--validate] [--json] [--plot OUT.svg] [--seed N]
                      [--frontier]
       prescient eval --state-dir DIR [--split FRAC] [--json]

Replays real traces through the predictor the daemon runs (predict.Engine:
its trained models, calibrated margins, per-signature selection and online
margins) and through each baseline alone, and scores next-step
allocations: last_value, moving_window_max, decayed_percentile, envelope,
gru, prescient (the engine), oracle. Each test run is scored at steps
t = 24 … n−7 (allocation for t+1); every margin is set on the training runs
alone so that ≤ 1 % of their next-step samples exceed it. Reported on the
test runs: slack = Σ(allocation−usage)/Σusage, violation rate, relative MAE
of the p50 at horizons 1…6; for prescient also the violation rate per
signature (p50, p90, max over signatures) and the enqueue-time whole-run
curves (the reservation a run gets before it starts) of each whole-run
model: their slack and violation rate over the run's samples and the
relative error of the predicted duration.

Without --test, the --train files are split in time: runs starting in the
first FRAC (default 0.7) of the span train, later runs test (google2011:
days 1–5 / 6–7; bitbrains: 2013-07 / 2013-08); google2019 is cut at FRAC
of its time span and tasks crossing the cut are scored after it only.
--validate splits the training part again the same way (bitbrains' one
training month in time) and scores on its later part: choose methods
there, and look at the test part once.

--state-dir replays a daemon's own history (its succeeded runs, their
samples and the node's load series): runs starting in the first FRAC of
the history train the engine as the daemon configures it, the later ones
are predicted at their start (with the node's load then) and followed
sample by sample; the same is done with the load input left out, and the
duration errors are compared (the ablation of docs/prediction.md).

--frontier also reports, per dimension, how far the engine is from what its
own forecasts could give at the same 1 % budget: other margin policies over
the candidates it chose from (fitted on half of the signatures and scored on
the other half), and bounds no policy can beat — margins fitted on the
scored rows themselves, and a selector that knows the next sample.

  --json        print the report as JSON
  --plot FILE   write an SVG of slack against violation rate per model and dim
  --frontier    add the frontier of the engine's forecasts
`

// Options configure Run.
type Options struct {
	Format      string
	Train, Test []string
	JSON        bool
	PlotPath    string
	Seed        int64
	Progress    io.Writer // stderr; nil = quiet
	// Split is the temporal split fraction used when Test is empty;
	// 0 means 0.7.
	Split float64
	// Validate scores on the later part of the training split instead of
	// the test part.
	Validate bool
	// Models restricts the baseline rows reported (nil = all); the
	// engine is always trained.
	Models []string
	// Tune, if set, changes the engine's configuration (experiments).
	Tune func(*predict.Config)
	// Frontier adds the frontier of the engine's forecasts to the report
	// (frontier.go).
	Frontier bool
}

// config is the engine configuration o asks for.
func (o Options) config(c predict.Config) predict.Config {
	if o.Tune != nil {
		o.Tune(&c)
	}
	return c
}

// Metrics are one model's figures in one dimension.
type Metrics struct {
	Slack         float64   `json:"slack"`
	ViolationRate float64   `json:"violation_rate"`
	MAERel        []float64 `json:"mae_rel"`
	Margin        float64   `json:"-"`
}

// SigMetrics describe how violations spread over signatures: the rate of
// each signature with scored steps, summarised.
type SigMetrics struct {
	Signatures int     `json:"signatures"`
	P50        float64 `json:"p50"`
	P90        float64 `json:"p90"`
	Max        float64 `json:"max"`
	Over       int     `json:"over_1_5pct"` // signatures above 1.5 %
}

// WholeMetrics score enqueue-time whole-run predictions: each sample of a
// run against the upper point of the bucket it falls in (the last bucket
// beyond the predicted end).
type WholeMetrics struct {
	Runs          int     `json:"runs"`
	Slack         float64 `json:"slack"`
	ViolationRate float64 `json:"violation_rate"`
	// DurationErr is the mean relative error of the p50 duration,
	// |predicted − actual| / actual.
	DurationErr float64 `json:"duration_err"`
}

// Report is the JSON document --json prints.
type Report struct {
	Models map[string]map[string]Metrics `json:"models"`
	// Signatures: prescient's next-step violation rates per signature, by
	// dimension.
	Signatures map[string]SigMetrics `json:"signatures,omitempty"`
	// Enqueue: whole-run models ("history", "seq", "prescient" = the one
	// each signature is served by) by dimension.
	Enqueue map[string]map[string]WholeMetrics `json:"enqueue,omitempty"`
	// Ablation (--state-dir): the engine without the load input.
	Ablation *Ablation `json:"ablation,omitempty"`
	// Frontier (--frontier): other allocation policies over the engine's
	// forecasts, and bounds, by dimension.
	Frontier map[string][]FrontierEntry `json:"frontier,omitempty"`
	Train    int                        `json:"train_runs"`
	Test     int                        `json:"test_runs"`
}

// Ablation compares the engine with and without the node's load as an
// input.
type Ablation struct {
	// DurationErr by model ("history", "seq", "prescient"), with the load
	// input and without it.
	WithLoad    map[string]float64 `json:"with_load"`
	WithoutLoad map[string]float64 `json:"without_load"`
	// Ratio is prescient's duration error with the load over without it.
	Ratio float64 `json:"ratio"`
}

// Horizons is how many steps ahead the median is scored.
const Horizons = predict.SeqHorizons

// FirstStep is the first scored step t (allocation for t+1).
const FirstStep = 24

// CalibrationQuantile is the share of training next-step samples each
// model's allocation must cover.
const CalibrationQuantile = 0.99

// Run evaluates every model on the traces o names and writes a table (or
// JSON) to stdout.
func Run(ctx context.Context, o Options, stdout io.Writer) error {
	f, err := trace.ParseFormat(o.Format)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	if len(o.Train) == 0 {
		return fmt.Errorf("%w: no --train file", ErrOptions)
	}
	if o.Split == 0 {
		o.Split = 0.7
	}
	start := time.Now()
	train, err := readAll(ctx, f, o.Train)
	if err != nil {
		return err
	}
	var test []*trace.Run
	if len(o.Test) > 0 {
		if test, err = readAll(ctx, f, o.Test); err != nil {
			return err
		}
	} else if train, test, err = split(f, train, o.Split); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	if o.Validate {
		if f == trace.Bitbrains {
			// One month to train on: cut each VM's run at FRAC of it.
			train, test = splitEach(train, o.Split)
		} else if train, test, err = split(f, train, o.Split); err != nil {
			return fmt.Errorf("%w: validation split: %w", ErrOptions, err)
		}
	}
	o.logf("eval: %d train runs, %d test runs read in %v", len(train), len(test), time.Since(start).Round(time.Millisecond))
	rep, err := Evaluate(ctx, f, train, test, o)
	if err != nil {
		return err
	}
	if o.PlotPath != "" {
		if err := writePlot(o.PlotPath, f, rep); err != nil {
			return err
		}
	}
	o.logf("eval: done in %v", time.Since(start).Round(time.Millisecond))
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeTable(stdout, f.Dims(), rep)
}

// split is the temporal split of the shared traces: by period, and in time
// where there is one period only (google2019, or bitbrains' training
// month).
func split(f trace.Format, runs []*trace.Run, frac float64) (train, test []*trace.Run, err error) {
	if f != trace.Google2019 {
		if train, test, err = trace.Split(runs, frac); err == nil {
			return train, test, nil
		}
	}
	return trace.SplitTime(runs, frac)
}

// splitEach cuts every run at frac of its own length (trace.SplitAt at
// each run's own cut).
func splitEach(runs []*trace.Run, frac float64) (train, test []*trace.Run) {
	for _, r := range runs {
		cut := r.Start + int64(frac*float64(r.Len()))*trace.StepSeconds
		tr, te := trace.SplitAt([]*trace.Run{r}, cut)
		train, test = append(train, tr...), append(test, te...)
	}
	return train, test
}

func (o Options) logf(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

func readAll(ctx context.Context, f trace.Format, paths []string) ([]*trace.Run, error) {
	var all []*trace.Run
	for _, p := range paths {
		runs, err := trace.ReadFile(ctx, f, p)
		if err != nil {
			return nil, err
		}
		all = append(all, runs...)
	}
	return all, nil
}

// ModelNames lists the models in report order.
var ModelNames = []string{"last_value", "moving_window_max", "decayed_percentile", "envelope", "gru", "prescient", "oracle"}

// WholeModels lists the whole-run models in report order.
var WholeModels = []string{predict.ModelHistory, predict.ModelSeq, "prescient"}

// TraceConfig is the engine configuration for the public traces: the
// daemon's defaults at the traces' 5-minute step, predicting the
// dimensions the format carries.
func TraceConfig(f trace.Format) predict.Config {
	return predict.Config{Step: trace.StepSeconds * time.Second, Dims: resource.SetOf(f.Dims()...),
		Scoring: predict.Scoring{First: FirstStep, Tail: Horizons}}
}

// sampleOf is step t of trace run r as a sample.
func sampleOf(r *trace.Run, t int, avail resource.Set) resource.Sample {
	s := resource.Sample{Time: time.Unix(r.Start+int64(t)*trace.StepSeconds, 0), Avail: avail}
	v := func(d resource.Dim) float64 {
		if x := r.Values[d]; t < len(x) {
			return x[t]
		}
		return 0
	}
	s.CPU, s.MemoryMB, s.IOPS, s.NetInMbps = v(resource.CPU), v(resource.Memory), v(resource.IO), v(resource.Net)
	return s
}

func runOf(r *trace.Run, avail resource.Set) predict.Run {
	ss := make([]resource.Sample, r.Len())
	for t := range ss {
		ss[t] = sampleOf(r, t, avail)
	}
	return predict.Run{Features: predict.Features{Signature: r.Identity}, Start: time.Unix(r.Start, 0), Samples: ss}
}

// Evaluate trains the engine on train, scores it and every baseline on
// test, and reports.
func Evaluate(ctx context.Context, f trace.Format, train, test []*trace.Run, o Options) (*Report, error) {
	dims := f.Dims()
	avail := resource.SetOf(dims...)
	eng, err := predict.NewEngine(o.config(TraceConfig(f)), nil)
	if err != nil {
		return nil, err
	}
	byStart := slices.Clone(train)
	sort.SliceStable(byStart, func(i, j int) bool { return byStart[i].Start < byStart[j].Start })
	for _, r := range byStart {
		eng.AddRun(runOf(r, avail))
	}
	t0 := time.Now()
	ts, err := eng.Train(ctx, predict.TrainConfig{Seq: predict.SeqConfig{Seed: o.Seed}, Workers: 2})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	o.logf("eval: engine trained on %d runs of %d signatures in %v (whole-run model: %v)", ts.Runs, ts.Signatures, time.Since(t0).Round(time.Millisecond), ts.RunModel)

	rep := &Report{Models: map[string]map[string]Metrics{}, Train: len(train), Test: len(test)}
	put := func(name string, d resource.Dim, m Metrics) {
		if rep.Models[name] == nil {
			rep.Models[name] = map[string]Metrics{}
		}
		rep.Models[name][d.String()] = m
	}
	h := newHistory(append(slices.Clone(train), test...))
	for _, d := range dims {
		sc := eng.Scale(d)
		floor := eng.Config().MinAllocation * sc
		if want(o, "last_value") {
			fc := &predict.LastValue{}
			m, err := predict.Calibrate(ctx, fc, replayRuns(train, d, h, sc), eng.Config().Scoring, 1-CalibrationQuantile, floor)
			if err != nil {
				return nil, fmt.Errorf("calibrate last_value on %v: %w", d, err)
			}
			res, err := score(ctx, predict.Calibrated{F: fc, Margin: m, Floor: floor}, test, d, h, sc)
			if err != nil {
				return nil, err
			}
			put("last_value", d, res)
		}
		for _, c := range eng.Candidates(d) {
			if !want(o, c.F.Name()) {
				continue
			}
			res, err := score(ctx, c, test, d, h, sc)
			if err != nil {
				return nil, err
			}
			o.logf("eval: %s: %-18s margin %+.3f  slack %.3f  violations %.4f", d, c.F.Name(), c.Margin, res.Slack, res.ViolationRate)
			put(c.F.Name(), d, res)
		}
		if want(o, "oracle") {
			put("oracle", d, oracle(test, d))
		}
	}
	tests := make([]*erun, len(test))
	for i, r := range test {
		tests[i] = fromTrace(r, avail)
	}
	var fr *frontierRows
	if o.Frontier {
		fr = &frontierRows{}
	}
	res, err := replayEngine(ctx, eng, tests, dims, true, fr)
	if err != nil {
		return nil, err
	}
	if fr != nil {
		rep.Frontier = map[string][]FrontierEntry{}
		for _, d := range dims {
			floor := eng.Config().MinAllocation * eng.Scale(d)
			rep.Frontier[d.String()] = frontier(fr.rows[d], 1-CalibrationQuantile, floor)
		}
	}
	for _, d := range dims {
		put("prescient", d, res.next[d])
		o.logf("eval: %s: %-18s slack %.3f  violations %.4f  per signature p90 %.4f", d, "prescient", res.next[d].Slack, res.next[d].ViolationRate, res.sig[d].P90)
	}
	rep.Signatures, rep.Enqueue = res.sigs(dims), res.enqueue(dims)
	return rep, nil
}

func want(o Options, name string) bool {
	return len(o.Models) == 0 || slices.Contains(o.Models, name)
}

// engineResult is what replaying test runs through the engine gives.
type engineResult struct {
	next    [resource.NumDims]Metrics
	sig     [resource.NumDims]SigMetrics
	whole   map[string]*[resource.NumDims]wholeAcc
	durErr  map[string]*durAcc
	enqRuns int
}

type wholeAcc struct{ over, use, viol, n float64 }

type durAcc struct{ sum, n float64 }

func (d *durAcc) mean() float64 {
	if d == nil || d.n == 0 {
		return 0
	}
	return d.sum / d.n
}

func (r *engineResult) sigs(dims []resource.Dim) map[string]SigMetrics {
	out := map[string]SigMetrics{}
	for _, d := range dims {
		out[d.String()] = r.sig[d]
	}
	return out
}

func (r *engineResult) enqueue(dims []resource.Dim) map[string]map[string]WholeMetrics {
	out := map[string]map[string]WholeMetrics{}
	for name, accs := range r.whole {
		out[name] = map[string]WholeMetrics{}
		for _, d := range dims {
			a := accs[d]
			m := WholeMetrics{Runs: int(r.durErr[name].n), DurationErr: r.durErr[name].mean()}
			if a.use > 0 {
				m.Slack = a.over / a.use
			}
			if a.n > 0 {
				m.ViolationRate = a.viol / a.n
			}
			out[name][d.String()] = m
		}
	}
	return out
}

// erun is a run as replayEngine takes it: from a trace or from a
// daemon's history.
type erun struct {
	id        string
	start     time.Time
	step      time.Duration
	values    [resource.NumDims][]float64
	load      []predict.Load // the node's load per sample; nil = none
	scoreFrom int
	run       predict.Run // the run as the engine takes it
}

func (r *erun) len() int       { return len(r.run.Samples) }
func (r *erun) end() time.Time { return r.start.Add(time.Duration(r.len()) * r.step) }

func fromTrace(r *trace.Run, avail resource.Set) *erun {
	e := &erun{id: r.Identity, start: time.Unix(r.Start, 0), step: trace.StepSeconds * time.Second, scoreFrom: r.ScoreFrom, run: runOf(r, avail)}
	e.values = r.Values
	for d := range resource.NumDims {
		if e.values[d] == nil {
			e.values[d] = make([]float64, r.Len())
		}
	}
	return e
}

func fromRun(r predict.Run, step time.Duration) *erun {
	e := &erun{id: r.Signature, start: r.Start, step: step, load: r.Load, run: r}
	for d := range resource.NumDims {
		e.values[d] = make([]float64, len(r.Samples))
		for i, s := range r.Samples {
			e.values[d][i] = finite0(s.Value(d))
		}
	}
	return e
}

func finite0(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0
	}
	return x
}

// replayEngine replays the test runs through eng as the daemon would:
// each run, at its start, gets the whole-run prediction (scored over its
// samples) under the node's load then, and a session that observes its
// samples (and the load at each) and sets the allocation for the next one
// (scored at the protocol's steps); runs that ended before a run starts
// are added to the engine's history first. With protocol false (a
// daemon's history) every next-step row from the second sample is scored.
func replayEngine(ctx context.Context, eng *predict.Engine, test []*erun, dims []resource.Dim, protocol bool, fr *frontierRows) (*engineResult, error) {
	byStart := slices.Clone(test)
	sort.SliceStable(byStart, func(i, j int) bool { return byStart[i].start.Before(byStart[j].start) })
	byEnd := slices.Clone(test)
	sort.SliceStable(byEnd, func(i, j int) bool { return byEnd[i].end().Before(byEnd[j].end()) })
	res := &engineResult{whole: map[string]*[resource.NumDims]wholeAcc{}, durErr: map[string]*durAcc{}}
	var next [resource.NumDims]acc
	type sigCount struct{ viol, n float64 }
	perSig := [resource.NumDims]map[string]*sigCount{}
	for _, d := range dims {
		perSig[d] = map[string]*sigCount{}
	}
	pts := make([]predict.Point, Horizons)
	added := 0
	for i, r := range byStart {
		if i%64 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for added < len(byEnd) && !byEnd[added].end().After(r.start) {
			if byEnd[added].scoreFrom == 0 {
				eng.AddRun(byEnd[added].run)
			}
			added++
		}
		f := r.run.Features
		var load predict.Load
		if len(r.load) > 0 {
			load = r.load[0]
		}
		s, err := eng.Start(f, r.start, load)
		if err != nil {
			return nil, err
		}
		if src := s.Whole().Source; r.scoreFrom == 0 && src != predict.SourcePrior && src != "" {
			// A signature known only through the prior gets its declared
			// requests in the daemon, not a predicted curve.
			preds, err := eng.WholeCandidates(f, r.start, load)
			if err != nil {
				return nil, err
			}
			preds["prescient"] = s.Whole()
			for name, p := range preds {
				res.scoreWhole(name, p, r, dims)
			}
			res.enqRuns++
		}
		n := r.len()
		from, last := max(r.scoreFrom-1, 1), n-2
		if protocol {
			from, last = max(FirstStep, r.scoreFrom-1), n-1-Horizons
		}
		for t := 0; t <= last; t++ {
			if t < len(r.load) {
				s.SetLoad(r.load[t])
			}
			s.Observe(r.run.Samples[t])
			if t < from {
				continue
			}
			for _, d := range dims {
				v := r.values[d]
				a := s.Next(d)
				s.Forecast(d, pts)
				hz := min(Horizons, n-1-t)
				next[d].addH(v, t, a, hz, func(h int) float64 { return pts[h].P50 })
				if fr != nil {
					fr.add(d, s, r, t, a)
				}
				c := perSig[d][r.id]
				if c == nil {
					c = &sigCount{}
					perSig[d][r.id] = c
				}
				c.n++
				if v[t+1] > a {
					c.viol++
				}
			}
		}
		s.Close()
	}
	for _, d := range dims {
		res.next[d] = next[d].metrics(0)
		var rates []float64
		over := 0
		for _, c := range perSig[d] {
			if c.n == 0 {
				continue
			}
			rates = append(rates, c.viol/c.n)
			if c.viol/c.n > 0.015 {
				over++
			}
		}
		slices.Sort(rates)
		if len(rates) > 0 {
			q := func(p float64) float64 { return rates[min(int(math.Ceil(p*float64(len(rates))))-1, len(rates)-1)] }
			res.sig[d] = SigMetrics{Signatures: len(rates), P50: q(0.5), P90: q(0.9), Max: rates[len(rates)-1], Over: over}
		}
	}
	return res, nil
}

// scoreWhole scores whole-run prediction p of model name on run r.
func (res *engineResult) scoreWhole(name string, p predict.Prediction, r *erun, dims []resource.Dim) {
	accs := res.whole[name]
	if accs == nil {
		accs = &[resource.NumDims]wholeAcc{}
		res.whole[name] = accs
		res.durErr[name] = &durAcc{}
	}
	for _, d := range dims {
		c := p.Whole[d]
		if len(c.Upper) == 0 || c.Step <= 0 {
			continue
		}
		a := &accs[d]
		for i, y := range r.values[d] {
			b := min(int(time.Duration(i)*r.step/c.Step), len(c.Upper)-1)
			u := c.Upper[b]
			a.over += u - y
			a.use += y
			a.n++
			if y > u {
				a.viol++
			}
		}
	}
	actual := float64(r.len()) * r.step.Seconds()
	dz := res.durErr[name]
	dz.sum += math.Abs(p.Duration.Seconds()-actual) / actual
	dz.n++
}

// history finds each run's earlier runs of the same identity.
type history struct {
	byID map[string][]*trace.Run // sorted by start
}

func newHistory(runs []*trace.Run) *history {
	h := &history{byID: map[string][]*trace.Run{}}
	for _, r := range runs {
		h.byID[r.Identity] = append(h.byID[r.Identity], r)
	}
	for _, rs := range h.byID {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	}
	return h
}

// past returns the values of dim d of every run of r's identity that
// started before r did (a run's own train head starts with it and is
// excluded).
func (h *history) past(r *trace.Run, d resource.Dim, buf []predict.Past) []predict.Past {
	buf = buf[:0]
	for _, p := range h.byID[r.Identity] {
		if p.Start >= r.Start {
			break
		}
		v := p.Values[d]
		if e := p.End(); e > r.Start {
			v = v[:(r.Start-p.Start)/trace.StepSeconds] // only what was seen before r began
		}
		buf = append(buf, predict.Past{Start: p.Start, Values: v})
	}
	return buf
}

// replayRuns are runs as predict.Replay takes them, with their history.
func replayRuns(runs []*trace.Run, d resource.Dim, h *history, sc float64) []predict.ReplayRun {
	out := make([]predict.ReplayRun, len(runs))
	for i, r := range runs {
		out[i] = predict.ReplayRun{
			Ctx:    &predict.RunContext{Identity: r.Identity, Start: r.Start, StepS: trace.StepSeconds, Scale: sc, Past: h.past(r, d, nil)},
			Values: r.Values[d], ScoreFrom: r.ScoreFrom,
		}
	}
	return out
}

type acc struct {
	over, use, viol, n float64
	absErr, sumY       [Horizons]float64
}

func (a *acc) metrics(margin float64) Metrics {
	m := Metrics{Margin: margin, MAERel: make([]float64, Horizons)}
	if a.use > 0 {
		m.Slack = a.over / a.use
	}
	if a.n > 0 {
		m.ViolationRate = a.viol / a.n
	}
	for i := range Horizons {
		if a.sumY[i] > 0 {
			m.MAERel[i] = a.absErr[i] / a.sumY[i]
		}
	}
	return m
}

func (a *acc) add(v []float64, t int, alloc float64, p50 func(h int) float64) {
	a.addH(v, t, alloc, Horizons, p50)
}

// addH scores the allocation for t+1 and the medians of the first hz
// horizons.
func (a *acc) addH(v []float64, t int, alloc float64, hz int, p50 func(h int) float64) {
	y := v[t+1]
	a.over += alloc - y
	a.use += y
	a.n++
	if y > alloc {
		a.viol++
	}
	for h := range hz {
		a.absErr[h] += math.Abs(p50(h) - v[t+1+h])
		a.sumY[h] += v[t+1+h]
	}
}

func score(ctx context.Context, c predict.Calibrated, test []*trace.Run, d resource.Dim, h *history, sc float64) (Metrics, error) {
	var a acc
	pts := make([]predict.Point, Horizons)
	err := predict.Replay(ctx, c.F, replayRuns(test, d, h, sc), predict.Scoring{First: FirstStep, Tail: Horizons}, pts, func(r *predict.ReplayRun, t int, pts []predict.Point) {
		a.add(r.Values, t, c.Alloc(pts[0]), func(h int) float64 { return pts[h].P50 })
	})
	return a.metrics(c.Margin), err
}

func oracle(test []*trace.Run, d resource.Dim) Metrics {
	var a acc
	for _, r := range test {
		v := r.Values[d]
		for t := max(FirstStep, r.ScoreFrom-1); t <= len(v)-1-Horizons; t++ {
			a.add(v, t, v[t+1], func(h int) float64 { return v[t+1+h] })
		}
	}
	return a.metrics(0)
}

func writeTable(w io.Writer, dims []resource.Dim, rep *Report) error {
	fmt.Fprintf(w, "next-step allocation (%d train runs, %d test runs)\n%-20s", rep.Train, rep.Test, "model")
	for _, d := range dims {
		fmt.Fprintf(w, " | %-8s %-7s %-7s %-7s", d.String()+":slack", "viol", "mae@1", "mae@6")
	}
	fmt.Fprintln(w)
	for _, name := range ModelNames {
		ms, ok := rep.Models[name]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%-20s", name)
		for _, d := range dims {
			m := ms[d.String()]
			mae := func(i int) float64 {
				if i < len(m.MAERel) {
					return m.MAERel[i]
				}
				return 0
			}
			fmt.Fprintf(w, " | %-8.3f %-7.4f %-7.3f %-7.3f", m.Slack, m.ViolationRate, mae(0), mae(Horizons-1))
		}
		fmt.Fprintln(w)
	}
	if len(rep.Signatures) > 0 {
		fmt.Fprintf(w, "%-20s", "prescient per sig")
		for _, d := range dims {
			s := rep.Signatures[d.String()]
			fmt.Fprintf(w, " | p50 %.4f p90 %.4f max %.3f (%d/%d > 1.5%%)", s.P50, s.P90, s.Max, s.Over, s.Signatures)
		}
		fmt.Fprintln(w)
	}
	if len(rep.Enqueue) > 0 {
		fmt.Fprintf(w, "\nenqueue-time whole-run curves\n%-20s", "model")
		for _, d := range dims {
			fmt.Fprintf(w, " | %-8s %-7s", d.String()+":slack", "viol")
		}
		fmt.Fprintf(w, " | runs  duration err\n")
		for _, name := range WholeModels {
			ms, ok := rep.Enqueue[name]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "%-20s", name)
			var last WholeMetrics
			for _, d := range dims {
				m := ms[d.String()]
				fmt.Fprintf(w, " | %-8.3f %-7.4f", m.Slack, m.ViolationRate)
				last = m
			}
			fmt.Fprintf(w, " | %-5d %.3f\n", last.Runs, last.DurationErr)
		}
	}
	if a := rep.Ablation; a != nil {
		fmt.Fprintf(w, "\nduration error with / without the load input\n")
		for _, name := range WholeModels {
			if _, ok := a.WithLoad[name]; ok {
				fmt.Fprintf(w, "%-20s %.3f / %.3f\n", name, a.WithLoad[name], a.WithoutLoad[name])
			}
		}
		fmt.Fprintf(w, "ratio (prescient)    %.2f\n", a.Ratio)
	}
	return writeFrontier(w, dims, rep.Frontier)
}

func writePlot(path string, f trace.Format, rep *Report) error {
	svg := plotSVG(f, rep)
	if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}
