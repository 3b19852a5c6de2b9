package rnn

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Adam's fixed hyper-parameters (Kingma and Ba 2015 defaults).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// Example is one training sequence. Seq is T x Inputs. Target is T rows of
// Targets() values (each compared with all the quantile outputs of that
// target) or of Outputs values (one per output); a NaN value, or a nil row,
// means no loss there. Target must have T rows.
type Example struct {
	Seq    [][]float64
	Target [][]float64
}

// TrainStats reports a Train call. Loss[e] is the mean data loss (without
// the L2 term) over epoch e, measured on each minibatch before its update.
type TrainStats struct {
	Epochs   int
	Loss     []float64
	Duration time.Duration
}

// workspace holds the per-step activations of one sequence for BPTT and the
// gradient scratch vectors; Train grows it to the longest sequence.
type workspace struct {
	hs, cs  []float64 // (T+1) x H: states before/after each step (cs: LSTM only)
	gates   []float64 // T x gates*H activated gates
	aux     []float64 // T x H: Un h (GRU) or tanh(c') (LSTM)
	ys      []float64 // T x O raw outputs
	a, u    []float64 // gates*H scratch (forward)
	da, du  []float64 // gates*H pre-activation gradients
	dy      []float64 // O
	dh, dhp []float64 // H: gradient w.r.t. h_t and h_{t-1}
	dc, dcp []float64 // H: same for the LSTM cell
}

func (m *Model) newWorkspace(steps int) workspace {
	h, gh, o := m.cfg.Hidden, m.gates*m.cfg.Hidden, m.cfg.Outputs
	ws := workspace{
		hs: make([]float64, (steps+1)*h), gates: make([]float64, steps*gh),
		aux: make([]float64, steps*h), ys: make([]float64, steps*o),
		a: make([]float64, gh), u: make([]float64, gh), da: make([]float64, gh), du: make([]float64, gh),
		dy: make([]float64, o), dh: make([]float64, h), dhp: make([]float64, h),
	}
	if m.lstm {
		ws.cs = make([]float64, (steps+1)*h)
		ws.dc, ws.dcp = make([]float64, h), make([]float64, h)
	}
	return ws
}

func (ws *workspace) steps(h int) int { return len(ws.hs)/h - 1 }

// forwardSeq runs seq from a zero state, keeping every activation and raw
// (unsorted) output in ws.
func (m *Model) forwardSeq(seq [][]float64, ws *workspace) {
	h, gh, o := m.cfg.Hidden, m.gates*m.cfg.Hidden, m.cfg.Outputs
	clear(ws.hs[:h])
	if m.lstm {
		clear(ws.cs[:h])
	}
	for t, x := range seq {
		hp, hn := ws.hs[t*h:(t+1)*h], ws.hs[(t+1)*h:(t+2)*h]
		g, aux := ws.gates[t*gh:(t+1)*gh], ws.aux[t*h:(t+1)*h]
		if m.lstm {
			m.lstmStep(x, hp, ws.cs[t*h:(t+1)*h], hn, ws.cs[(t+1)*h:(t+2)*h], ws.a, g, aux)
		} else {
			m.gruStep(x, hp, hn, ws.a, ws.u, g, aux)
		}
		m.output(hn, ws.ys[t*o:(t+1)*o])
	}
}

// targetAt returns the target for output o in row, or NaN if none.
func (m *Model) targetAt(row []float64, o int) float64 {
	switch len(row) {
	case 0:
		return math.NaN()
	case m.cfg.Outputs:
		return row[o]
	default: // Targets() values, checked by checkExample
		return row[o/m.nq]
	}
}

// stepLoss returns the summed loss of the raw outputs y against row, and if
// dy is not nil writes scale * dLoss/dy to it (0 where there is no target).
func (m *Model) stepLoss(y, row, dy []float64, scale float64) float64 {
	var loss float64
	for o, yo := range y {
		t := m.targetAt(row, o)
		if math.IsNaN(t) {
			if dy != nil {
				dy[o] = 0
			}
			continue
		}
		var g float64
		if len(m.cfg.Quantiles) > 0 {
			tau := m.cfg.Quantiles[o%m.nq]
			if d := t - yo; d >= 0 {
				loss += tau * d
				g = -tau
			} else {
				loss += (tau - 1) * d
				g = 1 - tau
			}
		} else {
			e := yo - t
			loss += e * e
			g = 2 * e
		}
		if dy != nil {
			dy[o] = scale * g
		}
	}
	return loss
}

// countTargets is the number of (step, output) pairs of ex that carry loss.
func (m *Model) countTargets(ex Example) int {
	n := 0
	for _, row := range ex.Target {
		for o := range m.cfg.Outputs {
			if !math.IsNaN(m.targetAt(row, o)) {
				n++
			}
		}
	}
	return n
}

// accumulate runs BPTT over one example: it adds scale * dLoss/dparams to
// grad and returns the example's summed (unscaled) loss.
func (m *Model) accumulate(ex Example, grad []float64, scale float64, ws *workspace) float64 {
	m.forwardSeq(ex.Seq, ws)
	h, gh, o := m.cfg.Hidden, m.gates*m.cfg.Hidden, m.cfg.Outputs
	gW, gU, gb, gV, gc := m.views(grad)
	clear(ws.dh)
	if m.lstm {
		clear(ws.dc)
	}
	var loss float64
	for t := len(ex.Seq) - 1; t >= 0; t-- {
		hp, hn := ws.hs[t*h:(t+1)*h], ws.hs[(t+1)*h:(t+2)*h]
		loss += m.stepLoss(ws.ys[t*o:(t+1)*o], ex.Target[t], ws.dy, scale)
		// Output layer: y = V h + c.
		matTVecAdd(ws.dh, m.v, ws.dy)
		outerAdd(gV, ws.dy, hn)
		axpy(1, ws.dy, gc)

		g, aux := ws.gates[t*gh:(t+1)*gh], ws.aux[t*h:(t+1)*h]
		if m.lstm {
			cp := ws.cs[t*h : (t+1)*h]
			for j := range h {
				i, f, gg, og := g[j], g[h+j], g[2*h+j], g[3*h+j]
				tc := aux[j]
				dh := ws.dh[j]
				dct := ws.dc[j] + dh*og*(1-tc*tc)
				ws.da[j] = dct * gg * i * (1 - i)
				ws.da[h+j] = dct * cp[j] * f * (1 - f)
				ws.da[2*h+j] = dct * i * (1 - gg*gg)
				ws.da[3*h+j] = dh * tc * og * (1 - og)
				ws.dcp[j] = dct * f
			}
			outerAdd(gW, ws.da, ex.Seq[t])
			outerAdd(gU, ws.da, hp)
			axpy(1, ws.da, gb)
			clear(ws.dhp)
			matTVecAdd(ws.dhp, m.u, ws.da)
			ws.dc, ws.dcp = ws.dcp, ws.dc
		} else {
			for j := range h {
				z, r, n := g[j], g[h+j], g[2*h+j]
				dh := ws.dh[j]
				dan := dh * (1 - z) * (1 - n*n)
				daz := dh * (hp[j] - n) * z * (1 - z)
				dar := dan * aux[j] * r * (1 - r)
				ws.da[j], ws.da[h+j], ws.da[2*h+j] = daz, dar, dan
				ws.du[j], ws.du[h+j], ws.du[2*h+j] = daz, dar, dan*r
				ws.dhp[j] = dh * z
			}
			outerAdd(gW, ws.da, ex.Seq[t])
			outerAdd(gU, ws.du, hp)
			axpy(1, ws.da, gb)
			matTVecAdd(ws.dhp, m.u, ws.du)
		}
		ws.dh, ws.dhp = ws.dhp, ws.dh
	}
	return loss
}

// l2 returns L2/2 * sum of squared weights and, if grad is not nil, adds
// its gradient L2 * w to grad.
func (m *Model) l2(grad []float64) float64 {
	if m.cfg.L2 == 0 {
		return 0
	}
	s := dot(m.w, m.w) + dot(m.u, m.u) + dot(m.v, m.v)
	if grad != nil {
		gW, gU, _, gV, _ := m.views(grad)
		axpy(m.cfg.L2, m.w, gW)
		axpy(m.cfg.L2, m.u, gU)
		axpy(m.cfg.L2, m.v, gV)
	}
	return m.cfg.L2 / 2 * s
}

// checkExample validates the shape and values of ex.
func (m *Model) checkExample(ex Example) error {
	if len(ex.Seq) == 0 {
		return fmt.Errorf("empty sequence: %w", ErrExample)
	}
	if len(ex.Target) != len(ex.Seq) {
		return fmt.Errorf("%d target rows for %d steps: %w", len(ex.Target), len(ex.Seq), ErrExample)
	}
	for t, x := range ex.Seq {
		if len(x) != m.cfg.Inputs {
			return fmt.Errorf("step %d has %d inputs, want %d: %w", t, len(x), m.cfg.Inputs, ErrExample)
		}
		for _, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("step %d input %v is not finite: %w", t, v, ErrExample)
			}
		}
		row := ex.Target[t]
		if n := len(row); n != 0 && n != m.targets && n != m.cfg.Outputs {
			return fmt.Errorf("step %d has %d targets, want %d or %d: %w", t, n, m.targets, m.cfg.Outputs, ErrExample)
		}
		for _, v := range row {
			if math.IsInf(v, 0) {
				return fmt.Errorf("step %d target %v is infinite: %w", t, v, ErrExample)
			}
		}
	}
	return nil
}

// Train fits the model to data for the given number of epochs with
// minibatches of batch examples (the last may be smaller), shuffled each
// epoch from Config.Seed. Each minibatch takes one Adam step on the mean
// loss of its targets plus the L2 term, its gradient clipped to norm
// Config.Clip. Adam's moments persist across Train calls on one Model (not
// across MarshalBinary). Train is deterministic.
//
// If ctx is done Train stops before the next minibatch and returns the
// stats so far (Epochs counts whole epochs) and an error wrapping
// ctx.Err(); the weights are those after the last completed minibatch.
func (m *Model) Train(ctx context.Context, data []Example, epochs, batch int) (st TrainStats, err error) {
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	if len(data) == 0 {
		return st, fmt.Errorf("rnn: train: no examples: %w", ErrExample)
	}
	if epochs < 1 || batch < 1 {
		return st, fmt.Errorf("rnn: train: epochs %d and batch %d must be positive: %w", epochs, batch, ErrConfig)
	}
	counts := make([]int, len(data))
	maxT := 0
	for i, ex := range data {
		if err := m.checkExample(ex); err != nil {
			return st, fmt.Errorf("rnn: train: example %d: %w", i, err)
		}
		counts[i] = m.countTargets(ex)
		maxT = max(maxT, len(ex.Seq))
	}
	if m.grad == nil {
		m.grad = make([]float64, len(m.params))
		m.adamM = make([]float64, len(m.params))
		m.adamV = make([]float64, len(m.params))
	}
	if m.ws.hs == nil || m.ws.steps(m.cfg.Hidden) < maxT {
		m.ws = m.newWorkspace(maxT)
	}
	perm := make([]int, len(data))
	for i := range perm {
		perm[i] = i
	}
	for e := 0; e < epochs; e++ {
		m.shufflePerm(perm)
		var lossSum float64
		var n int
		for lo := 0; lo < len(perm); lo += batch {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("rnn: train: stopped in epoch %d: %w", e, err)
			}
			idx := perm[lo:min(lo+batch, len(perm))]
			bn := 0
			for _, i := range idx {
				bn += counts[i]
			}
			if bn == 0 {
				continue
			}
			clear(m.grad)
			scale := 1 / float64(bn)
			var bl float64
			for _, i := range idx {
				bl += m.accumulate(data[i], m.grad, scale, &m.ws)
			}
			m.l2(m.grad)
			if math.IsNaN(bl) || math.IsInf(bl, 0) || m.update() != nil {
				return st, fmt.Errorf("rnn: train: epoch %d: %w", e, ErrDiverged)
			}
			lossSum += bl
			n += bn
		}
		l := math.NaN()
		if n > 0 {
			l = lossSum / float64(n)
		}
		st.Loss = append(st.Loss, l)
		st.Epochs++
	}
	return st, nil
}

// shufflePerm is a Fisher–Yates shuffle drawing from the model's PCG stream
// with Lemire's multiply-shift reduction: written out so the order depends
// only on the PCG algorithm, not on math/rand helpers that may change.
func (m *Model) shufflePerm(p []int) {
	for i := len(p) - 1; i > 0; i-- {
		hi, _ := bits.Mul64(m.shuffle.Uint64(), uint64(i+1))
		j := int(hi)
		p[i], p[j] = p[j], p[i]
	}
}

// update clips m.grad to norm Clip and applies one Adam step. It returns
// ErrDiverged, leaving the weights untouched, if the gradient is not finite.
func (m *Model) update() error {
	norm := math.Sqrt(dot(m.grad, m.grad))
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return ErrDiverged
	}
	gs := 1.0
	if norm > m.cfg.Clip {
		gs = m.cfg.Clip / norm
	}
	m.adamT++
	t := float64(m.adamT)
	c1 := 1 - math.Pow(adamBeta1, t)
	c2 := 1 - math.Pow(adamBeta2, t)
	lr := m.cfg.LearningRate * math.Sqrt(c2) / c1
	eps := adamEps * math.Sqrt(c2) // keeps ε relative to the bias-corrected v
	mm, vv, p := m.adamM, m.adamV[:len(m.adamM)], m.params[:len(m.adamM)]
	for i, g := range m.grad[:len(m.adamM)] {
		g *= gs
		mi := adamBeta1*mm[i] + (1-adamBeta1)*g
		vi := adamBeta2*vv[i] + (1-adamBeta2)*g*g
		mm[i], vv[i] = mi, vi
		p[i] -= lr * mi / (math.Sqrt(vi) + eps)
	}
	return nil
}

// CheckExamples reports the first malformed example in data (wrong
// widths, a Target without one row per step, non-finite inputs, infinite
// targets), as Train would, wrapping ErrExample.
func (m *Model) CheckExamples(data []Example) error {
	for i, ex := range data {
		if err := m.checkExample(ex); err != nil {
			return fmt.Errorf("rnn: example %d: %w", i, err)
		}
	}
	return nil
}

// Loss returns the mean data loss (MSE, or pinball with Quantiles) of the
// raw outputs over all targets in data, without the L2 term: the quantity
// Train minimises and reports. It is NaN if data holds no target, and it
// panics if an example is malformed (see CheckExamples).
func (m *Model) Loss(data []Example) float64 {
	maxT := 0
	for i, ex := range data {
		if err := m.checkExample(ex); err != nil {
			panic(fmt.Sprintf("rnn: loss: example %d: %v", i, err))
		}
		maxT = max(maxT, len(ex.Seq))
	}
	ws := m.newWorkspace(maxT)
	var sum float64
	var n int
	o := m.cfg.Outputs
	for _, ex := range data {
		m.forwardSeq(ex.Seq, &ws)
		for t := range ex.Seq {
			sum += m.stepLoss(ws.ys[t*o:(t+1)*o], ex.Target[t], nil, 0)
		}
		n += m.countTargets(ex)
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}
