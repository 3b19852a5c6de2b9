package predict

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/prescient-sched/prescient/internal/rnn"
)

// SeqHorizons is how many steps ahead the sequence model forecasts.
const SeqHorizons = 6

// seqQuantiles are the quantiles the sequence model is trained on: the
// median and an upper quantile whose distance from the median is the
// uncertainty scale the Spread margin multiplies.
var seqQuantiles = []float64{0.5, 0.95}

// defaultSeqHidden is the GRU's default hidden size: 12 matches 16 on
// the shared traces (docs/prediction.md) at a third less work per online
// step, which keeps Session.Observe within its 10 µs budget.
const defaultSeqHidden = 12

// seqInputs is the number of features per step (see featurizer.features):
// 11 from the run and its history, NumLoad from the node's load.
const seqInputs = 11 + NumLoad

// featurizer turns a run's samples, its signature's history and the load
// into the sequence model's inputs, normalised by the run's recent level
// so that one model serves signatures of any size. It embeds an Envelope:
// the seasonal history lookup and its centre and scale are features.
type featurizer struct {
	env   Envelope
	ring  [24]float64
	n     int
	level float64
	load  loadVec // the node's load features at this step (Load.features)
}

func (z *featurizer) begin(c *RunContext) {
	z.env.Begin(c)
	z.n = 0
	z.level = 0
}

func (z *featurizer) observe(v float64) {
	z.env.Observe(v)
	z.ring[z.n%len(z.ring)] = v
	z.n++
	k := min(z.n, len(z.ring))
	var s float64
	for i := range k {
		s += z.ring[i]
	}
	z.level = max(s/float64(k), 1e-6*z.env.c.Scale, 1e-12)
}

func clampf(x float64) float64 { return min(max(x, -10), 10) }

// features writes the inputs for the step just observed into x.
func (z *featurizer) features(x []float64) {
	l := z.level
	n := len(z.env.vals)
	last := z.env.vals[n-1]
	prev := last
	if n > 1 {
		prev = z.env.vals[n-2]
	}
	var mx float64
	for i := range min(z.n, len(z.ring)) {
		mx = max(mx, z.ring[i])
	}
	var one [1]Point
	z.env.Forecast(one[:])
	s1, ok1 := z.env.seasonal(n)
	s0, ok0 := z.env.seasonal(n - 1)
	s2, ok2 := z.env.seasonal(n + 1)
	has := 0.0
	if ok0 && ok1 && ok2 {
		has = 1
	} else {
		s0, s1, s2 = last, last, last
	}
	slot := float64((z.env.c.Start/max(z.env.c.StepS, 1)+int64(n))%(86400/max(z.env.c.StepS, 1))) / float64(86400/max(z.env.c.StepS, 1))
	x[0] = clampf(last/l - 1)
	x[1] = clampf(prev/l - 1)
	x[2] = clampf(mx/l - 1)
	x[3] = clampf(one[0].P50/l - 1)
	x[4] = clampf((one[0].Upper - one[0].P50) / l)
	x[5] = clampf((s1 - s0) / l)
	x[6] = clampf((s2 - s0) / l)
	x[7] = has
	x[8] = math.Sin(2 * math.Pi * slot)
	x[9] = math.Cos(2 * math.Pi * slot)
	x[10] = clampf(math.Log(l/max(z.env.c.Scale, 1e-12)) / 5)
	for i, v := range z.load {
		x[11+i] = float64(v)
	}
}

// Seq is the learned forecaster: a GRU (or LSTM) from internal/rnn over
// the featurizer's inputs, with a quantile head (p50 and p95) for each of
// the next SeqHorizons steps, in units of the run's recent level.
type Seq struct {
	m   *rnn.Model
	st  *rnn.State
	z   featurizer
	x   [seqInputs]float64
	out []float64
}

var _ Forecaster = (*Seq)(nil)

// SeqConfig configures TrainSeq.
type SeqConfig struct {
	// MaxSteps bounds the training steps (samples) used: runs are taken
	// whole, in a seeded random order, until the budget is spent (0 = all).
	MaxSteps int
	Cell     string // "gru" (default) or "lstm"
	Hidden   int    // default 12
	Epochs   int    // default 6
	Batch    int    // default 32
	Chunk    int    // training sequence length; default 288
	Seed     int64
	LR       float64 // default 3e-3
}

// TrainSeq fits a sequence model on runs (each with its context) of one
// dimension. progress, if set, is called after training.
func TrainSeq(ctx context.Context, cfg SeqConfig, runs []SeqRun) (*Seq, rnn.TrainStats, error) {
	if cfg.Hidden == 0 {
		cfg.Hidden = defaultSeqHidden
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = 6
	}
	if cfg.Batch == 0 {
		cfg.Batch = 32
	}
	if cfg.Chunk == 0 {
		cfg.Chunk = 288
	}
	if cfg.LR == 0 {
		cfg.LR = 3e-3
	}
	m, err := rnn.New(rnn.Config{
		Inputs: seqInputs, Hidden: cfg.Hidden, Outputs: SeqHorizons * len(seqQuantiles),
		Seed: cfg.Seed, LearningRate: cfg.LR, Quantiles: seqQuantiles, Cell: cfg.Cell,
	})
	if err != nil {
		return nil, rnn.TrainStats{}, fmt.Errorf("new sequence model: %w", err)
	}
	var data []rnn.Example
	var z featurizer
	for _, i := range budgetOrder(len(runs), func(i int) int { return len(runs[i].Values) }, cfg.MaxSteps, cfg.Seed) {
		r := runs[i]
		z.begin(r.Ctx)
		n := len(r.Values)
		var ex rnn.Example
		for t := 0; t < n; t++ {
			z.load = loadVec{}
			if t < len(r.Load) {
				z.load = r.Load[t]
			}
			z.observe(r.Values[t])
			x := make([]float64, seqInputs)
			z.features(x)
			y := make([]float64, SeqHorizons*len(seqQuantiles))
			for h := range SeqHorizons {
				v := math.NaN()
				if t+1+h < n {
					v = clampf(r.Values[t+1+h]/z.level - 1)
				}
				for q := range seqQuantiles {
					y[h*len(seqQuantiles)+q] = v
				}
			}
			ex.Seq = append(ex.Seq, x)
			ex.Target = append(ex.Target, y)
			if len(ex.Seq) == cfg.Chunk || t == n-1 {
				data = append(data, ex)
				ex = rnn.Example{}
			}
		}
	}
	if len(data) == 0 {
		return nil, rnn.TrainStats{}, fmt.Errorf("train sequence model: %w", ErrNoData)
	}
	st, err := m.Train(ctx, data, cfg.Epochs, cfg.Batch)
	if err != nil {
		return nil, st, fmt.Errorf("train sequence model: %w", err)
	}
	return NewSeq(m), st, nil
}

// SeqRun is one training run for TrainSeq.
type SeqRun struct {
	Ctx    *RunContext
	Values []float64
	Load   []loadVec // the node's load features per step; nil = none
}

// NewSeq wraps a trained model (inputs and outputs as TrainSeq makes them).
func NewSeq(m *rnn.Model) *Seq {
	return &Seq{m: m, st: m.NewState(), out: make([]float64, SeqHorizons*len(seqQuantiles))}
}

// Model returns the underlying sequence model (for persisting it).
func (f *Seq) Model() *rnn.Model { return f.m }

// Name implements Forecaster.
func (f *Seq) Name() string {
	if f.m.Config().Cell == "lstm" {
		return "lstm"
	}
	return "gru"
}

// MarginKind implements Forecaster.
func (*Seq) MarginKind() Margin { return Spread }

// setLoad sets the node's load features for the next Observe. Traces
// carry no load; it is 0.
func (f *Seq) setLoad(l loadVec) { f.z.load = l }

// Begin implements Forecaster.
func (f *Seq) Begin(c *RunContext) {
	f.z.begin(c)
	f.m.Reset(f.st)
}

// Observe implements Forecaster.
func (f *Seq) Observe(v float64) {
	f.z.observe(v)
	f.z.features(f.x[:])
	f.m.Step(f.st, f.x[:], f.out)
}

// Forecast implements Forecaster.
func (f *Seq) Forecast(out []Point) {
	l := f.z.level
	nq := len(seqQuantiles)
	for h := range out {
		k := min(h, SeqHorizons-1)
		p50 := max(0, (1+f.out[k*nq])*l)
		up := max(p50, (1+f.out[k*nq+nq-1])*l)
		// Keep a minimal spread so the Spread margin can act.
		up = max(up, p50+1e-3*l)
		out[h] = Point{p50, up}
	}
}

// budgetOrder returns the indexes of n items in a seeded random order,
// cut where the sizes taken exceed budget (≤ 0: all, in order).
func budgetOrder(n int, size func(int) int, budget int, seed int64) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	total := 0
	for i := range n {
		total += size(i)
	}
	if budget <= 0 || total <= budget {
		return idx
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	used := 0
	for k, i := range idx {
		if used >= budget {
			return idx[:k]
		}
		used += size(i)
	}
	return idx
}
