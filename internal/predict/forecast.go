package predict

import (
	"math"
)

// Point is one forecast point: the median and an upper quantile (before
// any safety margin).
type Point struct {
	P50   float64
	Upper float64
}

// Past is one earlier run of the same signature in one dimension.
type Past struct {
	Start  int64     // seconds, same clock as RunContext.Start
	Values []float64 // one per step
}

// RunContext is what a forecaster may know when a run begins: the
// signature's earlier runs (oldest first) and when this run starts.
type RunContext struct {
	Identity string
	Start    int64 // seconds
	StepS    int64 // sampling step in seconds (> 0)
	Past     []Past
	Scale    float64 // typical magnitude of this dimension (> 0), for floors
}

// Margin says how a safety margin m applies to a forecast point.
type Margin uint8

// Margin kinds.
const (
	// Multiplicative: allocation = Upper·(1+m).
	Multiplicative Margin = iota
	// Spread: allocation = P50 + m·(Upper−P50); Upper−P50 is the model's
	// own scale of uncertainty.
	Spread
)

// Apply returns the allocation for p under margin m, never below floor
// (a minimum allocation: a model that forecasts zero must still get
// something, or no margin can cover a restart from idle).
func (k Margin) Apply(p Point, m, floor float64) float64 {
	if k == Spread {
		return max(p.P50+m*(p.Upper-p.P50), floor)
	}
	return max(p.Upper, floor) * (1 + m)
}

// Forecaster predicts one dimension of one run at a time, online. Begin
// starts a run, Observe feeds its samples in order, Forecast fills out[k]
// with the forecast for k+1 steps after the last observed sample.
// Implementations are not safe for concurrent use; Forecast does not
// allocate.
type Forecaster interface {
	Name() string
	MarginKind() Margin
	Begin(c *RunContext)
	Observe(v float64)
	Forecast(out []Point)
}

var (
	_ Forecaster = (*LastValue)(nil)
	_ Forecaster = (*WindowMax)(nil)
	_ Forecaster = (*DecayedPercentile)(nil)
	_ Forecaster = (*Envelope)(nil)
)

// LastValue forecasts the last sample at every horizon.
type LastValue struct{ last float64 }

// Name implements Forecaster.
func (*LastValue) Name() string { return "last_value" }

// MarginKind implements Forecaster.
func (*LastValue) MarginKind() Margin { return Multiplicative }

// Begin implements Forecaster.
func (f *LastValue) Begin(*RunContext) { f.last = 0 }

// Observe implements Forecaster.
func (f *LastValue) Observe(v float64) { f.last = v }

// Forecast implements Forecaster.
func (f *LastValue) Forecast(out []Point) {
	for i := range out {
		out[i] = Point{f.last, f.last}
	}
}

// WindowMax is Autopilot's moving-window max recommender on the run's
// samples: the upper forecast is the max of the last Window samples and
// the median is their mean (Autopilot's "average" statistic).
type WindowMax struct {
	Window int // default 24
	ring   []float64
	n      int
}

// Name implements Forecaster.
func (*WindowMax) Name() string { return "moving_window_max" }

// MarginKind implements Forecaster.
func (*WindowMax) MarginKind() Margin { return Multiplicative }

// Begin implements Forecaster.
func (f *WindowMax) Begin(*RunContext) {
	if f.Window <= 0 {
		f.Window = 24
	}
	if len(f.ring) != f.Window {
		f.ring = make([]float64, f.Window)
	}
	f.n = 0
}

// Observe implements Forecaster.
func (f *WindowMax) Observe(v float64) {
	f.ring[f.n%len(f.ring)] = v
	f.n++
}

// Forecast implements Forecaster.
func (f *WindowMax) Forecast(out []Point) {
	k := min(f.n, len(f.ring))
	var mx, sum float64
	for i := range k {
		mx = max(mx, f.ring[i])
		sum += f.ring[i]
	}
	mean := 0.0
	if k > 0 {
		mean = sum / float64(k)
	}
	for i := range out {
		out[i] = Point{mean, mx}
	}
}

// DecayedPercentile is the Kubernetes VPA recommender: a decaying
// exponential-bucket histogram of every sample of the signature (earlier
// runs included, as VPA aggregates a workload's containers), the upper
// forecast is its p95 (VPA's upper bound; the target is p90) and the
// median its p50. VPA adds a 15 % safety margin; here the margin is
// calibrated like every other model's. Memory in VPA histograms daily
// peaks; with next-step allocations every sample is used for both.
type DecayedPercentile struct {
	Options HistogramOptions // FirstBucket 0 → Scale/1000 from the RunContext
	Upper   float64          // default 0.95
	h       *Histogram
	t       float64
	opts    HistogramOptions
}

// Name implements Forecaster.
func (*DecayedPercentile) Name() string { return "decayed_percentile" }

// MarginKind implements Forecaster.
func (*DecayedPercentile) MarginKind() Margin { return Multiplicative }

// Begin implements Forecaster.
func (f *DecayedPercentile) Begin(c *RunContext) {
	o := f.Options
	if o.FirstBucket == 0 {
		o.FirstBucket = max(c.Scale, 1e-9) / 1000
	}
	if o.MaxValue == 0 {
		o.MaxValue = o.FirstBucket * 1e7
	}
	if f.Upper == 0 {
		f.Upper = 0.95
	}
	if f.h == nil || f.opts != o {
		h, err := NewHistogram(o)
		if err != nil {
			panic(err) // options are derived above and always valid
		}
		f.h, f.opts = h, o
	} else {
		f.h.Reset()
	}
	step := float64(max(c.StepS, 1))
	for _, p := range c.Past {
		t0 := float64(p.Start-c.Start) / step
		for i, v := range p.Values {
			f.h.Add(v, 1, t0+float64(i))
		}
	}
	f.t = 0
}

// Observe implements Forecaster.
func (f *DecayedPercentile) Observe(v float64) {
	f.h.Add(v, 1, f.t)
	f.t++
}

// Forecast implements Forecaster.
func (f *DecayedPercentile) Forecast(out []Point) {
	p50, up := f.h.Percentile(0.5), f.h.Percentile(f.Upper)
	for i := range out {
		out[i] = Point{p50, up}
	}
}

// Envelope is the history-aware forecaster: a median from the last sample
// corrected by the signature's seasonal history (the value one day earlier
// at the same time of day — from this run or an earlier one — and its
// change over the horizon), choosing online among a few such centres by
// their recent error; and an uncertainty scale from the recent absolute
// one-step errors of that centre, floored by a fraction of the level.
// Upper = P50 + scale·√h; the calibrated Spread margin sets how many
// scales the allocation keeps.
type Envelope struct {
	Alpha  float64 // EWMA weight of new errors; default 0.05
	Floor  float64 // scale floor as a fraction of the level; default 0.01
	Period int64   // seasonal period in seconds; default 86400

	c      *RunContext
	vals   []float64
	err    [nCentres]float64 // EWMA |error| of each centre, one step ahead
	prev   [nCentres]float64 // last one-step forecast of each centre
	scale  float64
	primed bool
	// memo caches lookups in the earlier runs (indexes before the first
	// period, which depend only on the RunContext): each step asks for
	// the same few indexes several times, and a miss walks 7 periods.
	memo [8]seasonMemo
}

type seasonMemo struct {
	i  int // index + 1; 0 = empty
	v  float64
	ok bool
}

const nCentres = 3

// Name implements Forecaster.
func (*Envelope) Name() string { return "envelope" }

// MarginKind implements Forecaster.
func (*Envelope) MarginKind() Margin { return Spread }

// Begin implements Forecaster.
func (f *Envelope) Begin(c *RunContext) {
	if f.Alpha == 0 {
		f.Alpha = 0.05
	}
	if f.Floor == 0 {
		f.Floor = 0.01
	}
	if f.Period == 0 {
		f.Period = 86400
	}
	f.c = c
	f.vals = f.vals[:0]
	f.err = [nCentres]float64{}
	f.scale = 0
	f.primed = false
	f.memo = [8]seasonMemo{}
}

// seasonal returns the value one period (or, failing that, up to 7
// periods) before sample index i of this run, and whether there is one.
func (f *Envelope) seasonal(i int) (float64, bool) {
	step := max(f.c.StepS, 1)
	per := f.Period / step
	if int64(i) >= per {
		if j := int64(i) - per; j < int64(len(f.vals)) {
			return f.vals[j], true
		}
		return f.seasonalScan(i, step, per)
	}
	m := &f.memo[uint(i)%uint(len(f.memo))]
	if m.i != i+1 {
		m.v, m.ok = f.seasonalScan(i, step, per)
		m.i = i + 1
	}
	return m.v, m.ok
}

// seasonalScan is seasonal without the memo.
func (f *Envelope) seasonalScan(i int, step, per int64) (float64, bool) {
	for k := int64(1); k <= 7; k++ {
		if v, ok := f.valueAt(int64(i)-k*per, step); ok {
			return v, true
		}
	}
	return 0, false
}

// valueAt returns the sample at index j of this run's timeline: this
// run's own when 0 ≤ j < len(vals), an earlier run's when j < 0.
func (f *Envelope) valueAt(j, step int64) (float64, bool) {
	if j >= 0 {
		if j < int64(len(f.vals)) {
			return f.vals[j], true
		}
		return 0, false
	}
	at := f.c.Start + j*step // absolute time wanted
	for p := len(f.c.Past) - 1; p >= 0; p-- {
		ps := &f.c.Past[p]
		if at < ps.Start {
			continue
		}
		idx := (at - ps.Start) / step
		if idx < int64(len(ps.Values)) && (at-ps.Start)%step == 0 {
			return ps.Values[idx], true
		}
		break
	}
	return 0, false
}

// centres fills c with each centre's forecast for index i (> last).
func (f *Envelope) centres(i int, c *[nCentres]float64) {
	n := len(f.vals)
	last := f.vals[n-1]
	c[0] = last
	c[1], c[2] = last, last
	si, ok1 := f.seasonal(i)
	sl, ok2 := f.seasonal(n - 1)
	if ok1 && ok2 {
		c[1] = max(0, last+0.5*(si-sl))
		c[2] = max(0, last+(si-sl)) // seasonal change added to the level
	}
}

// Observe implements Forecaster.
func (f *Envelope) Observe(v float64) {
	if len(f.vals) > 0 {
		for k := range nCentres {
			e := math.Abs(v - f.prev[k])
			if f.primed {
				f.err[k] += f.Alpha * (e - f.err[k])
			} else {
				f.err[k] = e
			}
		}
		e := math.Abs(v - f.prev[f.best()])
		if f.primed {
			f.scale += f.Alpha * (e - f.scale)
		} else {
			f.scale = e
		}
		f.primed = true
	}
	f.vals = append(f.vals, v)
	f.centres(len(f.vals), &f.prev)
}

// best is the centre with the least recent error; ties go to the one
// that follows the history most.
func (f *Envelope) best() int {
	b := 0
	for k := 1; k < nCentres; k++ {
		if f.err[k] <= f.err[b] {
			b = k
		}
	}
	return b
}

// Forecast implements Forecaster.
func (f *Envelope) Forecast(out []Point) {
	if len(f.vals) == 0 {
		for i := range out {
			out[i] = Point{}
		}
		return
	}
	b := f.best()
	var c [nCentres]float64
	n := len(f.vals)
	level := f.vals[n-1]
	s := max(f.scale, f.Floor*level, 1e-9*f.c.Scale)
	for h := range out {
		f.centres(n+h, &c)
		out[h] = Point{c[b], c[b] + s*math.Sqrt(float64(h+1))}
	}
}
