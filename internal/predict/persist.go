package predict

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/rnn"
)

// modelsMagic starts a persisted model set; modelsVersion is bumped on
// any change of layout or of the learned models' features.
const (
	modelsMagic   = "PRSM"
	modelsVersion = 2
	stateMagic    = "PRSS"
	stateVersion  = 1
)

// enc appends little-endian values.
type enc struct{ b []byte }

func (w *enc) u8(v uint8)    { w.b = append(w.b, v) }
func (w *enc) u16(v int)     { w.b = binary.LittleEndian.AppendUint16(w.b, uint16(v)) }
func (w *enc) u32(v int)     { w.b = binary.LittleEndian.AppendUint32(w.b, uint32(v)) }
func (w *enc) f64(v float64) { w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v)) }
func (w *enc) f32(v float32) { w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(v)) }
func (w *enc) bytes(v []byte) {
	w.u32(len(v))
	w.b = append(w.b, v...)
}
func (w *enc) str(s string) {
	w.u16(len(s))
	w.b = append(w.b, s...)
}

// dec reads what enc wrote; the first error sticks and every later read
// returns zero.
type dec struct {
	b   []byte
	err error
}

func (r *dec) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("truncated: %w", ErrModel)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *dec) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}
func (r *dec) u16() int {
	if v := r.take(2); v != nil {
		return int(binary.LittleEndian.Uint16(v))
	}
	return 0
}
func (r *dec) u32() int {
	if v := r.take(4); v != nil {
		return int(binary.LittleEndian.Uint32(v))
	}
	return 0
}
func (r *dec) f64() float64 {
	if v := r.take(8); v != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(v))
	}
	return 0
}
func (r *dec) f32() float32 {
	if v := r.take(4); v != nil {
		return math.Float32frombits(binary.LittleEndian.Uint32(v))
	}
	return 0
}
func (r *dec) bytes() []byte { return r.take(r.u32()) }
func (r *dec) str() string   { return string(r.take(r.u16())) }

// finite checks a decoded value.
func (r *dec) finite(what string, v float64) float64 {
	if r.err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		r.err = fmt.Errorf("%s %v is not finite: %w", what, v, ErrModel)
	}
	return v
}

func (r *dec) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format+": %w", append(a, ErrModel)...)
	}
}

// MarshalModels persists what Train learned and calibrated: magic,
// version (uint16 LE), then per dimension its scale, sequence model,
// candidate margins, regime margins and served margin, then the whole-run
// model and the pooled whole-run margins (see the code for the layout).
func (e *Engine) MarshalModels() ([]byte, error) {
	e.mu.Lock()
	m := e.m
	e.mu.Unlock()
	w := &enc{b: []byte(modelsMagic)}
	w.u16(modelsVersion)
	for d := range resource.NumDims {
		w.f64(m.scale[d])
		if m.seq[d] == nil {
			w.u8(0)
		} else {
			b, err := m.seq[d].m.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("marshal %s model: %w", d, err)
			}
			w.u8(1)
			w.bytes(b)
		}
		names := make([]string, 0, len(m.margin[d]))
		for k := range m.margin[d] {
			names = append(names, k)
		}
		slices.Sort(names)
		w.u16(len(names))
		for _, k := range names {
			w.str(k)
			w.f64(m.margin[d][k])
		}
		if g := m.regime[d]; g == nil {
			w.u8(0)
		} else {
			w.u8(1)
			w.u16(len(g.M))
			for _, x := range g.Edges {
				w.f64(x)
			}
			for _, x := range g.M {
				w.f64(x)
			}
		}
		w.f64(m.selMargin[d])
	}
	if m.run == nil {
		w.u8(0)
	} else {
		b, err := m.run.m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("marshal run model: %w", err)
		}
		w.u8(1)
		if m.run.noLoad {
			w.u8(1)
		} else {
			w.u8(0)
		}
		w.bytes(b)
	}
	for c := range numCands {
		for j := range numMarginSlots {
			w.f64(m.pool[c][j])
		}
	}
	return w.b, nil
}

// LoadModels replaces the learned models with persisted ones; on error
// the engine keeps the models it had.
func (e *Engine) LoadModels(b []byte) error {
	if len(b) < 6 || string(b[:4]) != modelsMagic {
		return fmt.Errorf("not a model file: %w", ErrModel)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != modelsVersion {
		return fmt.Errorf("model version %d, want %d: %w", v, modelsVersion, ErrModel)
	}
	r := &dec{b: b[6:]}
	m := &models{}
	for d := range resource.NumDims {
		m.scale[d] = r.finite("scale", r.f64())
		if m.scale[d] < 0 {
			r.fail("%s scale %v", d, m.scale[d])
		}
		switch r.u8() {
		case 0:
		case 1:
			var rm rnn.Model
			if err := rm.UnmarshalBinary(r.bytes()); err != nil && r.err == nil {
				r.err = fmt.Errorf("%s model: %w: %w", d, ErrModel, err)
			} else if c := rm.Config(); r.err == nil && (c.Inputs != seqInputs || c.Outputs != SeqHorizons*len(seqQuantiles)) {
				r.fail("%s model has %d inputs, %d outputs", d, c.Inputs, c.Outputs)
			} else if r.err == nil {
				m.seq[d] = NewSeq(&rm)
			}
		default:
			r.fail("bad %s model flag", d)
		}
		n := r.u16()
		m.margin[d] = make(map[string]float64, n)
		for range n {
			k := r.str()
			v := r.finite("margin", r.f64())
			if v < -1 {
				r.fail("margin %s = %v", k, v)
			}
			m.margin[d][k] = v
		}
		switch r.u8() {
		case 0:
		case 1:
			bins := r.u16()
			if bins < 1 {
				r.fail("%d regime bins", bins)
				break
			}
			g := &RegimeMargin{Edges: make([]float64, bins-1), M: make([]float64, bins)}
			for i := range g.Edges {
				g.Edges[i] = r.finite("regime edge", r.f64())
			}
			for i := range g.M {
				g.M[i] = r.finite("regime margin", r.f64())
			}
			if r.err == nil && !slices.IsSorted(g.Edges) {
				r.fail("regime edges not sorted")
			}
			m.regime[d] = g
		default:
			r.fail("bad %s regime flag", d)
		}
		m.selMargin[d] = r.finite("served margin", r.f64())
		if r.err != nil {
			return fmt.Errorf("%s: %w", d, r.err)
		}
	}
	switch r.u8() {
	case 0:
	case 1:
		noLoad := r.u8() == 1
		var rm rnn.Model
		if err := rm.UnmarshalBinary(r.bytes()); err != nil && r.err == nil {
			r.err = fmt.Errorf("run model: %w: %w", ErrModel, err)
		} else if c := rm.Config(); r.err == nil && (c.Inputs != runInputs || c.Outputs != runTargets*len(runQuantiles)) {
			r.fail("run model has %d inputs, %d outputs", c.Inputs, c.Outputs)
		} else if r.err == nil {
			m.run = &RunModel{m: &rm, noLoad: noLoad}
		}
	default:
		r.fail("bad run model flag")
	}
	for c := range numCands {
		for j := range numMarginSlots {
			m.pool[c][j] = r.finite("pooled margin", r.f64())
			if m.pool[c][j] <= 0 {
				r.fail("pooled margin %v", m.pool[c][j])
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d trailing bytes: %w", len(r.b), ErrModel)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m = m
	e.scratch = nil
	for _, s := range e.sigs {
		s.stats = nil
	}
	return nil
}

// MarshalState persists what the engine learned per signature online: the
// selector's costs and the online margin of the short horizon, and the
// whole-run candidates' scores and the margins their runs needed.
func (e *Engine) MarshalState() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := &enc{b: []byte(stateMagic)}
	w.u16(stateVersion)
	sigs := make([]string, 0, len(e.sigs))
	for k := range e.sigs {
		sigs = append(sigs, k)
	}
	slices.Sort(sigs)
	w.u32(len(sigs))
	for _, sig := range sigs {
		s := e.sigs[sig]
		w.str(sig)
		w.str(s.code)
		if s.live {
			w.u8(1)
		} else {
			w.u8(0)
		}
		for d := range resource.NumDims {
			w.u8(uint8(min(len(s.cost[d]), 255)))
			for _, c := range s.cost[d][:min(len(s.cost[d]), 255)] {
				w.f64(c)
			}
			w.f64(s.theta[d])
		}
		for c := range numCands {
			w.f64(s.score[c])
			w.u32(s.scored[c])
			for j := range numMarginSlots {
				w.u8(uint8(len(s.conf[c][j])))
				for _, x := range s.conf[c][j] {
					w.f32(x)
				}
			}
		}
	}
	for c := range numCands {
		w.f64(e.g.sum[c])
		w.u32(e.g.n[c])
	}
	return w.b
}

// LoadState restores what MarshalState persisted, for the signatures it
// names (those without runs yet keep it until their runs are added). On
// error the engine is unchanged.
func (e *Engine) LoadState(b []byte) error {
	if len(b) < 6 || string(b[:4]) != stateMagic {
		return fmt.Errorf("not a state file: %w", ErrModel)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != stateVersion {
		return fmt.Errorf("state version %d, want %d: %w", v, stateVersion, ErrModel)
	}
	r := &dec{b: b[6:]}
	n := r.u32()
	if n > len(r.b) {
		return fmt.Errorf("%d signatures in %d bytes: %w", n, len(r.b), ErrModel)
	}
	type entry struct {
		sig string
		st  sigState
	}
	got := make([]entry, 0, n)
	for range n {
		var x entry
		x.sig = r.str()
		x.st.code = r.str()
		x.st.live = r.u8() == 1
		for d := range resource.NumDims {
			k := int(r.u8())
			if k > 0 {
				x.st.cost[d] = make([]float64, k)
				for i := range k {
					x.st.cost[d][i] = r.finite("cost", r.f64())
				}
			}
			x.st.theta[d] = r.finite("theta", r.f64())
		}
		for c := range numCands {
			x.st.score[c] = r.finite("score", r.f64())
			x.st.scored[c] = r.u32()
			for j := range numMarginSlots {
				k := int(r.u8())
				if k > e.cfg.MaxRuns {
					r.fail("%d margins kept, at most %d", k, e.cfg.MaxRuns)
				}
				if k > 0 && r.err == nil {
					x.st.conf[c][j] = make([]float32, k)
					for i := range k {
						x.st.conf[c][j][i] = float32(r.finite("margin", float64(r.f32())))
					}
				}
			}
		}
		if r.err != nil {
			return r.err
		}
		got = append(got, x)
	}
	var g globalScore
	for c := range numCands {
		g.sum[c] = r.finite("score sum", r.f64())
		g.n[c] = r.u32()
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d trailing bytes: %w", len(r.b), ErrModel)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range got {
		s := e.sigs[x.sig]
		if s == nil {
			s = &sigState{code: x.st.code}
			e.sigs[x.sig] = s
		}
		s.cost, s.theta, s.live = x.st.cost, x.st.theta, x.st.live
		s.score, s.scored, s.conf = x.st.score, x.st.scored, x.st.conf
	}
	e.g = g
	return nil
}
