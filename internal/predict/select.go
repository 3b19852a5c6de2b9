package predict

import "math"

// Calibrated is a forecaster with the safety margin chosen for it.
type Calibrated struct {
	F      Forecaster
	Margin float64
	Floor  float64 // minimum allocation
	// Regime, if set, replaces Margin by a margin per level of the
	// forecast's relative uncertainty.
	Regime *RegimeMargin
}

// Alloc is the allocation this candidate sets from forecast point p.
func (c Calibrated) Alloc(p Point) float64 {
	if c.Regime != nil {
		return c.Regime.Apply(p, c.Floor)
	}
	return c.F.MarginKind().Apply(p, c.Margin, c.Floor)
}

// CostWeights price a candidate's allocations, as Autopilot's ML
// recommender does: under-provisioning (usage above the allocation) costs
// far more than slack, and every change of the allocation costs a little.
type CostWeights struct {
	Under    float64 // per unit of usage above the allocation; default 20
	Over     float64 // per unit of slack; default 1
	Change   float64 // per limit change, in units of the run's scale; default 0.05
	HalfLife float64 // of the cost memory, in steps; default 144
}

func (w *CostWeights) defaults() {
	if w.Under == 0 {
		w.Under = 20
	}
	if w.Over == 0 {
		w.Over = 1
	}
	if w.Change == 0 {
		w.Change = 0.05
	}
	if w.HalfLife == 0 {
		w.HalfLife = 144
	}
}

// Selector serves, per signature, the candidate with the lowest recent
// decayed cost (Autopilot's ML recommender). Costs persist across runs of
// the same identity, so a signature's later runs start with the model
// that served it best. Not safe for concurrent use.
type Selector struct {
	Cands   []Calibrated
	Weights CostWeights

	cost     map[string][]float64 // identity → decayed cost per candidate
	cur      []float64
	lastA    []float64 // each candidate's allocation for the next step
	prevA    []float64 // and the one before, to price changes
	pts      [][]Point
	next     []Point  // each candidate's raw one-step forecast after the last Observe
	one      [1]Point // kept here: a local array passed to an interface method escapes
	scale    float64
	decay    float64
	observed int
	served   int
}

var _ Forecaster = (*Selector)(nil)

// NewSelector returns a selector over cands.
func NewSelector(cands []Calibrated, w CostWeights) *Selector {
	w.defaults()
	s := &Selector{Cands: cands, Weights: w, cost: map[string][]float64{}}
	s.lastA = make([]float64, len(cands))
	s.prevA = make([]float64, len(cands))
	s.pts = make([][]Point, len(cands))
	s.next = make([]Point, len(cands))
	s.decay = math.Exp2(-1 / w.HalfLife)
	return s
}

// Name implements Forecaster.
func (*Selector) Name() string { return "prescient" }

// MarginKind implements Forecaster.
func (*Selector) MarginKind() Margin { return Multiplicative }

// Begin implements Forecaster.
func (s *Selector) Begin(c *RunContext) {
	for _, k := range s.Cands {
		k.F.Begin(c)
	}
	s.cur = s.cost[c.Identity]
	if s.cur == nil {
		s.cur = make([]float64, len(s.Cands))
		s.cost[c.Identity] = s.cur
	}
	s.scale = max(c.Scale, 1e-12)
	s.observed = 0
}

// Observe implements Forecaster.
func (s *Selector) Observe(v float64) {
	if s.observed > 0 {
		for i := range s.Cands {
			a := s.lastA[i]
			c := s.Weights.Over * max(a-v, 0)
			c += s.Weights.Under * max(v-a, 0)
			if s.observed > 1 && math.Abs(a-s.prevA[i]) > 0.05*max(math.Abs(a), 1e-12) {
				c += s.Weights.Change * s.scale
			}
			s.cur[i] = s.cur[i]*s.decay + c
		}
	}
	s.observed++
	for i, k := range s.Cands {
		k.F.Observe(v)
		k.F.Forecast(s.one[:])
		s.next[i] = s.one[0]
		s.prevA[i] = s.lastA[i]
		s.lastA[i] = k.Alloc(s.one[0])
	}
}

// Next is the one-step forecast of the candidate that would be served
// now, computed by the last Observe: its median and its calibrated
// allocation as Upper. Zero before the first Observe.
func (s *Selector) Next() Point {
	if s.observed == 0 {
		return Point{}
	}
	b := s.Chosen()
	return Point{s.next[b].P50, s.lastA[b]}
}

// setLoad hands the node's load to the candidates that take it.
func (s *Selector) setLoad(l loadVec) {
	for _, k := range s.Cands {
		if ls, ok := k.F.(loadSetter); ok {
			ls.setLoad(l)
		}
	}
}

// Chosen is the index of the candidate that would be served now.
func (s *Selector) Chosen() int {
	b := 0
	for i := 1; i < len(s.cur); i++ {
		if s.cur[i] < s.cur[b] {
			b = i
		}
	}
	return b
}

// Forecast implements Forecaster: the chosen candidate's median, and its
// calibrated allocation as the upper point.
func (s *Selector) Forecast(out []Point) {
	b := s.Chosen()
	k := s.Cands[b]
	k.F.Forecast(out)
	for i := range out {
		out[i].Upper = k.Alloc(out[i])
	}
	s.served = b
}
