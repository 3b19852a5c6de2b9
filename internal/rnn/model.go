package rnn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// PCG stream constants: one stream for initialisation, one for shuffling,
// so changing the number of epochs never changes the initial weights.
const (
	streamInit    = 0x8f1bbcdcca62c1d6
	streamShuffle = 0x6ed9eba15a827999
)

// Model is a recurrent cell (GRU or LSTM) followed by a linear layer from the
// hidden state to the outputs. Create one with New or UnmarshalBinary.
type Model struct {
	cfg     Config
	lstm    bool
	gates   int // 3 (GRU: z, r, n) or 4 (LSTM: i, f, g, o)
	nq      int // len(cfg.Quantiles), or 1 without quantiles
	targets int // cfg.Outputs / nq

	// params holds, in order, W (gates*H x I), U (gates*H x H), b (gates*H),
	// V (O x H), c (O), row-major. The slices below are views into it.
	params        []float64
	w, u, b, v, c []float64

	// Training state, written only by Train (not serialised).
	grad         []float64
	adamM, adamV []float64
	adamT        int
	shuffle      *rand.PCG
	ws           workspace
}

// New validates cfg (filling defaults) and returns a model with freshly
// initialised weights: W, U and V uniform in ±1/sqrt(Hidden) (as PyTorch),
// biases zero except the LSTM forget gate bias, which is 1.
func New(cfg Config) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := newModel(cfg)
	init := rand.NewPCG(uint64(cfg.Seed), streamInit)
	k := 1 / math.Sqrt(float64(cfg.Hidden))
	for _, s := range [][]float64{m.w, m.u, m.v} {
		for i := range s {
			s[i] = (2*uniform(init) - 1) * k
		}
	}
	if m.lstm {
		h := cfg.Hidden
		for j := h; j < 2*h; j++ {
			m.b[j] = 1
		}
	}
	return m, nil
}

// newModel lays out a model for a validated cfg with all-zero weights.
func newModel(cfg Config) *Model {
	m := &Model{cfg: cfg, lstm: cfg.Cell == CellLSTM, gates: gatesOf(cfg.Cell), nq: 1}
	if len(cfg.Quantiles) > 0 {
		m.nq = len(cfg.Quantiles)
	}
	m.targets = cfg.Outputs / m.nq
	m.params = make([]float64, numParams(cfg.Inputs, cfg.Hidden, cfg.Outputs, m.gates))
	m.w, m.u, m.b, m.v, m.c = m.views(m.params)
	m.shuffle = rand.NewPCG(uint64(cfg.Seed), streamShuffle)
	return m
}

// views splits a params-shaped slice into W, U, b, V, c.
func (m *Model) views(p []float64) (w, u, b, v, c []float64) {
	gh, in, h, o := m.gates*m.cfg.Hidden, m.cfg.Inputs, m.cfg.Hidden, m.cfg.Outputs
	w, p = p[:gh*in:gh*in], p[gh*in:]
	u, p = p[:gh*h:gh*h], p[gh*h:]
	b, p = p[:gh:gh], p[gh:]
	v, p = p[:o*h:o*h], p[o*h:]
	c = p[:o:o]
	return
}

// uniform returns a float64 in [0, 1) from the top 53 bits of one PCG draw.
// Written out (rather than rand.Rand.Float64) so the initial weights depend
// only on the PCG algorithm, which is fixed, not on library helpers.
func uniform(src *rand.PCG) float64 {
	return float64(src.Uint64()>>11) / (1 << 53)
}

// Config returns the validated configuration, defaults filled in.
func (m *Model) Config() Config {
	c := m.cfg
	c.Quantiles = append([]float64(nil), m.cfg.Quantiles...)
	if len(c.Quantiles) == 0 {
		c.Quantiles = nil
	}
	return c
}

// Targets is the number of predicted series: Outputs / len(Quantiles), or
// Outputs without quantiles. Example.Target rows have Targets entries (or
// Outputs entries, one target per output).
func (m *Model) Targets() int { return m.targets }

// NumParams is the number of trainable weights and biases.
func (m *Model) NumParams() int { return len(m.params) }

// State is the recurrent state (hidden, and cell for LSTM) of one sequence
// being fed online, plus scratch space so Step does not allocate. A State
// belongs to the Model that made it and to one goroutine at a time.
type State struct {
	h, c []float64 // hidden and (LSTM) cell state
	a, u []float64 // scratch: W x + b, U h (gates*H each)
	hid  int
}

// NewState returns a zero state for m.
func (m *Model) NewState() *State {
	gh, h := m.gates*m.cfg.Hidden, m.cfg.Hidden
	buf := make([]float64, 2*h+2*gh)
	return &State{h: buf[:h:h], c: buf[h : 2*h : 2*h], a: buf[2*h : 2*h+gh], u: buf[2*h+gh:], hid: h}
}

// Reset zeroes s so the next Step starts a new sequence.
func (m *Model) Reset(s *State) {
	m.checkState(s)
	clear(s.h)
	clear(s.c)
}

// Clone returns an independent copy of s, e.g. to roll a forecast forward
// from the current state without disturbing it.
func (s *State) Clone() *State {
	n := &State{hid: s.hid}
	gh := len(s.a)
	buf := make([]float64, 2*s.hid+2*gh)
	n.h, n.c, n.a, n.u = buf[:s.hid:s.hid], buf[s.hid:2*s.hid:2*s.hid], buf[2*s.hid:2*s.hid+gh], buf[2*s.hid+gh:]
	copy(n.h, s.h)
	copy(n.c, s.c)
	return n
}

// CopyFrom sets s to the recurrent state of o (a State of a model of the
// same shape) without allocating. It panics if the shapes differ.
func (s *State) CopyFrom(o *State) {
	if s.hid != o.hid || len(s.a) != len(o.a) {
		panic("rnn: CopyFrom a State of another shape")
	}
	copy(s.h, o.h)
	copy(s.c, o.c)
}

func (m *Model) checkState(s *State) {
	if s == nil || s.hid != m.cfg.Hidden || len(s.a) != m.gates*m.cfg.Hidden {
		panic("rnn: State does not belong to this model")
	}
}

// Step feeds one input x (len Inputs) to s and writes the outputs to out
// (len Outputs, quantile outputs sorted per target). out may be nil to only
// advance the state. Step does not allocate. It panics if x or out have the
// wrong length or s was made by a model of another shape.
func (m *Model) Step(s *State, x []float64, out []float64) {
	m.checkState(s)
	if len(x) != m.cfg.Inputs {
		panic(fmt.Sprintf("rnn: Step input has %d values, model has %d inputs", len(x), m.cfg.Inputs))
	}
	if out != nil && len(out) != m.cfg.Outputs {
		panic(fmt.Sprintf("rnn: Step output has %d values, model has %d outputs", len(out), m.cfg.Outputs))
	}
	if m.lstm {
		m.lstmStep(x, s.h, s.c, s.h, s.c, s.a, s.a, s.u[:m.cfg.Hidden])
	} else {
		m.gruStep(x, s.h, s.h, s.a, s.u, s.a, s.u[:m.cfg.Hidden])
	}
	if out != nil {
		m.output(s.h, out)
		m.sortQuantiles(out)
	}
}

// Forward runs seq (T x Inputs) from a zero state and returns T x Outputs
// outputs, quantile outputs sorted per target. It panics if a row of seq
// does not have Inputs values.
func (m *Model) Forward(seq [][]float64) [][]float64 {
	s := m.NewState()
	o := m.cfg.Outputs
	flat := make([]float64, len(seq)*o)
	out := make([][]float64, len(seq))
	for t, x := range seq {
		out[t] = flat[t*o : (t+1)*o : (t+1)*o]
		m.Step(s, x, out[t])
	}
	return out
}

// output computes y = V h + c.
func (m *Model) output(h, y []float64) {
	copy(y, m.c)
	matVecAdd(y, m.v, h)
}

// sortQuantiles sorts each target's quantile outputs ascending (insertion
// sort: groups are a handful of values, and it does not allocate).
func (m *Model) sortQuantiles(y []float64) {
	if m.nq < 2 {
		return
	}
	for g := 0; g+m.nq <= len(y); g += m.nq {
		q := y[g : g+m.nq]
		for i := 1; i < len(q); i++ {
			v := q[i]
			j := i - 1
			for ; j >= 0 && q[j] > v; j-- {
				q[j+1] = q[j]
			}
			q[j+1] = v
		}
	}
}

// gruStep computes one GRU step (the cuDNN/PyTorch form, reset gate applied
// after the recurrent product):
//
//	z = σ(Wz x + Uz h + bz)        r = σ(Wr x + Ur h + br)
//	n = tanh(Wn x + bn + r ⊙ (Un h))
//	h' = (1-z) ⊙ n + z ⊙ h
//
// gates receives z, r, n (3H) and un receives Un h (H), for backprop; a and u
// are 3H scratch. hNext may alias hPrev, and gates may alias a.
func (m *Model) gruStep(x, hPrev, hNext, a, u, gates, un []float64) {
	h := m.cfg.Hidden
	gh := 3 * h
	copy(a[:gh], m.b)
	matVecAdd(a[:gh], m.w, x)
	clear(u[:gh])
	matVecAdd(u[:gh], m.u, hPrev)
	for j := range h {
		z := sigmoid(a[j] + u[j])
		rr := sigmoid(a[h+j] + u[h+j])
		uj := u[2*h+j]
		n := math.Tanh(a[2*h+j] + rr*uj)
		hNext[j] = (1-z)*n + z*hPrev[j]
		gates[j], gates[h+j], gates[2*h+j] = z, rr, n
		un[j] = uj
	}
}

// lstmStep computes one LSTM step:
//
//	[i f g o] = [σ σ tanh σ](W x + U h + b)
//	c' = f ⊙ c + i ⊙ g        h' = o ⊙ tanh(c')
//
// gates receives i, f, g, o (4H) and tc receives tanh(c') (H); a is 4H
// scratch. hNext/cNext may alias hPrev/cPrev, and gates may alias a.
func (m *Model) lstmStep(x, hPrev, cPrev, hNext, cNext, a, gates, tc []float64) {
	h := m.cfg.Hidden
	a = a[:4*h]
	copy(a, m.b)
	matVecAdd(a, m.w, x)
	matVecAdd(a, m.u, hPrev)
	for j := range h {
		i := sigmoid(a[j])
		f := sigmoid(a[h+j])
		g := math.Tanh(a[2*h+j])
		o := sigmoid(a[3*h+j])
		c := f*cPrev[j] + i*g
		t := math.Tanh(c)
		cNext[j], hNext[j] = c, o*t
		gates[j], gates[h+j], gates[2*h+j], gates[3*h+j] = i, f, g, o
		tc[j] = t
	}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// dot is a four-accumulator dot product. Hand-written: for vectors of a few
// dozen values a call into gonum's BLAS costs more in argument checks than
// the arithmetic, and this keeps Step allocation-free. The summation order
// is fixed, so results are deterministic.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// matVecAdd adds M x to dst, for M row-major with len(dst) rows of len(x)
// columns. The dot products are written inline (calling dot per row costs
// a visible share of Step) and two rows share each load of x, which makes
// the short rows of an online Step ≈ 30 % faster; each row keeps dot's
// four accumulators and summation order, so results are bit-identical to
// dot's. The sub-slices of four let the compiler drop bounds checks.
func matVecAdd(dst, mat, x []float64) {
	n := len(x)
	mat = mat[:len(dst)*n]
	r := 0
	for ; r+2 <= len(dst); r += 2 {
		ra := mat[r*n : (r+1)*n : (r+1)*n]
		rb := mat[(r+1)*n : (r+2)*n : (r+2)*n]
		var a0, a1, a2, a3, b0, b1, b2, b3 float64
		i := 0
		for ; i+4 <= n; i += 4 {
			xs := x[i : i+4 : i+4]
			as := ra[i : i+4 : i+4]
			bs := rb[i : i+4 : i+4]
			a0 += as[0] * xs[0]
			a1 += as[1] * xs[1]
			a2 += as[2] * xs[2]
			a3 += as[3] * xs[3]
			b0 += bs[0] * xs[0]
			b1 += bs[1] * xs[1]
			b2 += bs[2] * xs[2]
			b3 += bs[3] * xs[3]
		}
		for ; i < n; i++ {
			a0 += ra[i] * x[i]
			b0 += rb[i] * x[i]
		}
		dst[r] += (a0 + a1) + (a2 + a3)
		dst[r+1] += (b0 + b1) + (b2 + b3)
	}
	if r < len(dst) {
		row := mat[r*n : (r+1)*n : (r+1)*n]
		dst[r] += dot(row, x)
	}
}

// axpy adds alpha*x to y.
func axpy(alpha float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// outerAdd adds the outer product d ⊗ x to the row-major matrix g (len(d)
// rows of len(x) columns).
func outerAdd(g, d, x []float64) {
	n := len(x)
	for r, dr := range d {
		if dr != 0 {
			axpy(dr, x, g[r*n:(r+1)*n])
		}
	}
}

// matTVecAdd adds Mᵀ d to dst, for M row-major with len(d) rows of
// len(dst) columns.
func matTVecAdd(dst, mat, d []float64) {
	n := len(dst)
	for r, dr := range d {
		if dr != 0 {
			axpy(dr, mat[r*n:(r+1)*n], dst)
		}
	}
}
