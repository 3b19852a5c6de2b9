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
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/trace"
)

// ErrOptions reports invalid options.
var ErrOptions = errors.New("eval: invalid options")

// Usage is the help text for the "prescient eval" command.
const Usage = `Usage: prescient eval --format google2011|google2019|bitbrains --train FILE... [--test FILE...]
                      [--split FRAC] [--json] [--plot OUT.svg] [--seed N]

Replays real traces and scores next-step allocations of every model:
last_value, moving_window_max, decayed_percentile, gru, prescient, oracle.
Each test run is scored at steps t = 24 … n−7 (allocation for t+1); each
model's safety margin is set on the training runs alone so that ≤ 1 % of
next-step samples there exceed it. Reported on the test runs: slack =
Σ(allocation−usage)/Σusage, violation rate, relative MAE of the p50 at
horizons 1…6.

Without --test, the --train files are split in time: runs starting in the
first FRAC (default 0.7) of the span train, later runs test (google2011:
days 1–5 / 6–7; bitbrains: 2013-07 / 2013-08); google2019 is cut at FRAC
of its time span and tasks crossing the cut are scored after it only.

  --json        print {"models": {model: {dim: {slack, violation_rate, mae_rel}}}}
  --plot FILE   write an SVG of slack against violation rate per model and dim
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
	// Models restricts the models evaluated (nil = all); prescient needs
	// its candidates and pulls them in.
	Models []string
}

// Metrics are one model's figures in one dimension.
type Metrics struct {
	Slack         float64   `json:"slack"`
	ViolationRate float64   `json:"violation_rate"`
	MAERel        []float64 `json:"mae_rel"`
	Margin        float64   `json:"-"`
}

// Report is the JSON document --json prints.
type Report struct {
	Models map[string]map[string]Metrics `json:"models"`
}

// Horizons is how many steps ahead the median is scored.
const Horizons = 6

// FirstStep is the first scored step t (allocation for t+1).
const FirstStep = 24

// RegimeBins is how many levels of relative uncertainty prescient's
// margin distinguishes (see predict.RegimeMargin); 0 = one margin.
const RegimeBins = 10

// MinAllocation is the minimum allocation of every model, as a fraction
// of the dimension's mean usage on the training runs.
const MinAllocation = 0.01

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
	logf := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
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
	} else if f == trace.Google2019 {
		if train, test, err = trace.SplitTime(train, o.Split); err != nil {
			return fmt.Errorf("%w: %w", ErrOptions, err)
		}
	} else if train, test, err = trace.Split(train, o.Split); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	logf("eval: %d train runs, %d test runs read in %v", len(train), len(test), time.Since(start).Round(time.Millisecond))
	rep, err := Evaluate(ctx, f, train, test, o)
	if err != nil {
		return err
	}
	if o.PlotPath != "" {
		if err := writePlot(o.PlotPath, f, rep); err != nil {
			return err
		}
	}
	logf("eval: done in %v", time.Since(start).Round(time.Millisecond))
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeTable(stdout, f, rep)
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

// Evaluate scores every model on test after calibrating on train.
func Evaluate(ctx context.Context, f trace.Format, train, test []*trace.Run, o Options) (*Report, error) {
	h := newHistory(append(slices.Clone(train), test...))
	dims := f.Dims()
	rep := &Report{Models: map[string]map[string]Metrics{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(dims))
	sem := make(chan struct{}, 2)
	for di, d := range dims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := evalDim(ctx, d, train, test, h, o)
			if err != nil {
				errs[di] = err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for name, m := range res {
				if rep.Models[name] == nil {
					rep.Models[name] = map[string]Metrics{}
				}
				rep.Models[name][d.String()] = m
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rep, nil
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

// scale is the mean of dimension d over runs: the magnitude histograms and
// floors are sized by.
func scale(runs []*trace.Run, d resource.Dim) float64 {
	var s float64
	var n int
	for _, r := range runs {
		for _, v := range r.Values[d] {
			s += v
			n++
		}
	}
	if n == 0 || s == 0 {
		return 1
	}
	return s / float64(n)
}

// sink receives one model's forecasts at the scored steps of a run.
type sink func(r *trace.Run, t int, pts []predict.Point)

// replay feeds every run to fc and calls out at each scored step.
func replay(ctx context.Context, fc predict.Forecaster, runs []*trace.Run, d resource.Dim, h *history, sc float64, out sink) error {
	pts := make([]predict.Point, Horizons)
	var buf []predict.Past
	rc := &predict.RunContext{StepS: trace.StepSeconds, Scale: sc}
	for i, r := range runs {
		if i%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		buf = h.past(r, d, buf)
		rc.Identity, rc.Start, rc.Past = r.Identity, r.Start, buf
		fc.Begin(rc)
		v := r.Values[d]
		n := len(v)
		from := max(FirstStep, r.ScoreFrom-1)
		for t := 0; t <= n-1-Horizons; t++ {
			fc.Observe(v[t])
			if t >= from {
				fc.Forecast(pts)
				out(r, t, pts)
			}
		}
	}
	return nil
}

// calibrate returns the smallest margin under which at most
// 1−CalibrationQuantile of the training next-step samples exceed the
// allocation.
func calibrate(ctx context.Context, fc predict.Forecaster, train []*trace.Run, d resource.Dim, h *history, sc float64) (float64, error) {
	floor := MinAllocation * sc
	kind := fc.MarginKind()
	var ratios []float64
	err := replay(ctx, fc, train, d, h, sc, func(r *trace.Run, t int, pts []predict.Point) {
		y := r.Values[d][t+1]
		p := pts[0]
		var num, den float64
		if kind == predict.Spread {
			num, den = y-p.P50, p.Upper-p.P50
			if y <= floor {
				num, den = -1, 0 // covered by the floor whatever the margin
			}
		} else {
			num, den = y, max(p.Upper, floor)
		}
		switch {
		case den > 0:
			ratios = append(ratios, num/den)
		case num <= 0:
			ratios = append(ratios, math.Inf(-1))
		default:
			ratios = append(ratios, math.Inf(1))
		}
	})
	if err != nil {
		return 0, err
	}
	if len(ratios) == 0 {
		return 0, fmt.Errorf("%w: no scorable training step (runs need > %d samples)", ErrOptions, FirstStep+Horizons+1)
	}
	slices.Sort(ratios)
	k := int(math.Ceil(CalibrationQuantile*float64(len(ratios)))) - 1
	q := ratios[max(k, 0)]
	switch {
	case math.IsInf(q, 1):
		return 0, fmt.Errorf("%s: cannot calibrate: over %d%% of training steps have no spread", fc.Name(), 100-int(100*CalibrationQuantile))
	case math.IsInf(q, -1): // the floor alone covers the quantile
		q = 0
		if kind == predict.Multiplicative {
			q = 1
		}
	}
	if kind == predict.Multiplicative {
		return q - 1, nil
	}
	return q, nil
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
	y := v[t+1]
	a.over += alloc - y
	a.use += y
	a.n++
	if y > alloc {
		a.viol++
	}
	for h := range Horizons {
		a.absErr[h] += math.Abs(p50(h) - v[t+1+h])
		a.sumY[h] += v[t+1+h]
	}
}

func score(ctx context.Context, c predict.Calibrated, test []*trace.Run, d resource.Dim, h *history, sc float64) (Metrics, error) {
	var a acc
	err := replay(ctx, c.F, test, d, h, sc, func(r *trace.Run, t int, pts []predict.Point) {
		a.add(r.Values[d], t, c.Alloc(pts[0]), func(h int) float64 { return pts[h].P50 })
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

func want(o Options, name string) bool {
	return len(o.Models) == 0 || slices.Contains(o.Models, name) || (name != "oracle" && slices.Contains(o.Models, "prescient"))
}

func evalDim(ctx context.Context, d resource.Dim, train, test []*trace.Run, h *history, o Options) (map[string]Metrics, error) {
	sc := scale(train, d)
	logf := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "eval: %s: "+format+"\n", append([]any{d}, a...)...)
		}
	}
	res := map[string]Metrics{}
	var cands []predict.Calibrated
	for _, fc := range candidates(ctx, d, train, h, sc, o, logf) {
		if !want(o, fc.Name()) {
			continue
		}
		t0 := time.Now()
		m, err := calibrate(ctx, fc, train, d, h, sc)
		if err != nil {
			return nil, fmt.Errorf("calibrate %s on %v: %w", fc.Name(), d, err)
		}
		c := predict.Calibrated{F: fc, Margin: m, Floor: MinAllocation * sc}
		if res[fc.Name()], err = score(ctx, c, test, d, h, sc); err != nil {
			return nil, err
		}
		logf("%-18s margin %+.3f  slack %.3f  violations %.4f  (%v)", fc.Name(), m, res[fc.Name()].Slack, res[fc.Name()].ViolationRate, time.Since(t0).Round(time.Millisecond))
		cands = append(cands, c)
	}
	if want(o, "prescient") && len(cands) > 0 {
		var sel []predict.Calibrated
		for _, c := range cands {
			if c.F.Name() != "last_value" {
				sel = append(sel, c)
			}
		}
		s := predict.NewSelector(sel, predict.CostWeights{})
		m, err := calibrate(ctx, s, train, d, h, sc)
		if err != nil {
			return nil, fmt.Errorf("calibrate prescient on %v: %w", d, err)
		}
		c := predict.Calibrated{F: s, Margin: m, Floor: MinAllocation * sc}
		if bins := RegimeBins; bins > 0 {
			// The served allocation's spread over its median, with
			// margins per regime of it.
			var rows []predict.CalRow
			if err := replay(ctx, s, train, d, h, sc, func(r *trace.Run, t int, pts []predict.Point) {
				rows = append(rows, predict.CalRow{P50: pts[0].P50, Upper: pts[0].Upper, Y: r.Values[d][t+1]})
			}); err != nil {
				return nil, err
			}
			c.Regime = predict.FitRegimeMargin(rows, 1-CalibrationQuantile, bins, MinAllocation*sc)
		}
		if res["prescient"], err = score(ctx, c, test, d, h, sc); err != nil {
			return nil, err
		}
		logf("%-18s margin %+.3f  slack %.3f  violations %.4f", "prescient", m, res["prescient"].Slack, res["prescient"].ViolationRate)
	}
	if want(o, "oracle") {
		res["oracle"] = oracle(test, d)
	}
	return res, nil
}

// candidates builds the forecasters, training the learned ones on train.
func candidates(ctx context.Context, d resource.Dim, train []*trace.Run, h *history, sc float64, o Options, logf func(string, ...any)) []predict.Forecaster {
	fcs := []predict.Forecaster{
		&predict.LastValue{},
		&predict.WindowMax{Window: 24},
		&predict.DecayedPercentile{},
		&predict.Envelope{},
	}

	if !want(o, "gru") {
		return fcs
	}
	runs := make([]predict.SeqRun, 0, len(train))
	for _, r := range train {
		runs = append(runs, predict.SeqRun{
			Ctx:    &predict.RunContext{Identity: r.Identity, Start: r.Start, StepS: trace.StepSeconds, Scale: sc, Past: h.past(r, d, nil)},
			Values: r.Values[d],
		})
	}
	t0 := time.Now()
	seq, st, err := predict.TrainSeq(ctx, predict.SeqConfig{Seed: o.Seed}, runs)
	if err != nil {
		logf("gru: %v (left out)", err)
		return fcs
	}
	logf("gru: trained %d epochs in %v, loss %.4f → %.4f", st.Epochs, time.Since(t0).Round(time.Millisecond), st.Loss[0], st.Loss[len(st.Loss)-1])
	return append(fcs, seq)
}

func writeTable(w io.Writer, f trace.Format, rep *Report) error {
	dims := f.Dims()
	fmt.Fprintf(w, "%-20s", "model")
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
			fmt.Fprintf(w, " | %-8.3f %-7.4f %-7.3f %-7.3f", m.Slack, m.ViolationRate, m.MAERel[0], m.MAERel[Horizons-1])
		}
		fmt.Fprintln(w)
	}
	return nil
}

func writePlot(path string, f trace.Format, rep *Report) error {
	svg := plotSVG(f, rep)
	if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}
