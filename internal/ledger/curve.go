package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// DefaultHiQuantile is the quantile a Curve's PHi stands for when HiQ is 0.
const DefaultHiQuantile = 0.95

// MaxSteps bounds the length of a Curve; a predictor wanting finer detail
// than this should use longer steps.
const MaxSteps = 4096

// Step is one piece of a Curve: for Dur, usage is predicted to stay at or
// below P50 half of the time and at or below PHi with probability Curve.HiQ.
// Amounts are in resource units (cores, MiB, IO ops/s, Mbps).
type Step struct {
	Dur time.Duration // length of the step; > 0
	P50 resource.Vector
	PHi resource.Vector // ≥ P50 in every dimension
}

// Curve is what the predictor hands the ledger: per dimension, a step
// function of usage quantiles by time since the task's start. Steps follow
// each other without gaps; the task is predicted to end after Total.
// A Curve is a value: the ledger copies what it keeps.
type Curve struct {
	// HiQ is the quantile the steps' PHi stands for, in (0.5, 1);
	// 0 means DefaultHiQuantile.
	HiQ   float64
	Steps []Step
}

// Flat is a one-step curve: p50 and pHi held for d.
func Flat(d time.Duration, p50, pHi resource.Vector) Curve {
	return Curve{Steps: []Step{{Dur: d, P50: p50, PHi: pHi}}}
}

// Total is the predicted duration: the sum of the steps' durations.
func (c Curve) Total() time.Duration {
	var t time.Duration
	for _, s := range c.Steps {
		t += s.Dur
	}
	return t
}

// hiQ returns HiQ with its default filled in.
func (c Curve) hiQ() float64 {
	if c.HiQ == 0 {
		return DefaultHiQuantile
	}
	return c.HiQ
}

// Validate rejects empty curves, non-positive steps, bad amounts, PHi below
// P50 and a HiQ outside (0.5, 1).
func (c Curve) Validate() error {
	if len(c.Steps) == 0 {
		return errors.New("curve has no steps")
	}
	if len(c.Steps) > MaxSteps {
		return fmt.Errorf("curve has %d steps, more than %d", len(c.Steps), MaxSteps)
	}
	if q := c.hiQ(); !(q > 0.5 && q < 1) {
		return fmt.Errorf("curve high quantile %v is outside (0.5, 1)", c.HiQ)
	}
	var total time.Duration
	for i, s := range c.Steps {
		if s.Dur <= 0 {
			return fmt.Errorf("step %d: duration %v is not positive", i, s.Dur)
		}
		if total += s.Dur; total < 0 {
			return fmt.Errorf("step %d: total duration overflows", i)
		}
		if err := validAmounts(s.P50); err != nil {
			return fmt.Errorf("step %d p50: %w", i, err)
		}
		if err := validAmounts(s.PHi); err != nil {
			return fmt.Errorf("step %d phi: %w", i, err)
		}
		if !s.P50.LessEq(s.PHi) {
			return fmt.Errorf("step %d: phi %v is below p50 %v", i, s.PHi, s.P50)
		}
	}
	return nil
}

// At returns the amount step s predicts at quantile q of a curve whose PHi
// is quantile hiQ: P50 at q ≤ 0.5, PHi at q ≥ hiQ, linear in q between.
// (Linear interpolation between two quantiles is the usual reading of a
// quantile function known at two points; it never leaves [P50, PHi].)
func (s Step) At(q, hiQ float64) resource.Vector {
	switch {
	case q <= 0.5:
		return s.P50
	case q >= hiQ:
		return s.PHi
	}
	f := (q - 0.5) / (hiQ - 0.5)
	var v resource.Vector
	for d := range v {
		v[d] = s.P50[d] + f*(s.PHi[d]-s.P50[d])
	}
	return v
}

// Peak returns the per-dimension maxima of the steps at quantile q.
func (c Curve) Peak(q float64) resource.Vector {
	var v resource.Vector
	for _, s := range c.Steps {
		v = v.Max(s.At(q, c.hiQ()))
	}
	return v
}

// Window returns the per-dimension maximum of P50 (hi: PHi) over the
// steps that overlap [elapsed, elapsed+window) (window ≤ 0: to the end of
// the curve); a task that outlives its curve is sized by its last step.
// It does not allocate and stops at the window's end: the scheduler calls
// it on every sample of every running task.
func (c Curve) Window(elapsed, window time.Duration, hi bool) resource.Vector {
	var v resource.Vector
	var off time.Duration
	found := false
	for i := range c.Steps {
		st := &c.Steps[i]
		end := off + st.Dur
		if end > elapsed && (window <= 0 || off < elapsed+window) {
			if hi {
				v = v.Max(st.PHi)
			} else {
				v = v.Max(st.P50)
			}
			found = true
		}
		off = end
		if window > 0 && off >= elapsed+window {
			break
		}
	}
	if !found && len(c.Steps) > 0 {
		last := &c.Steps[len(c.Steps)-1]
		v = last.P50
		if hi {
			v = last.PHi
		}
	}
	return v
}

// Hard sizes a hard allocation for a task that has run for elapsed: the
// per-dimension maximum of PHi over [elapsed, elapsed+window) (see
// Window), times 1+headroom.
func (c Curve) Hard(elapsed, window time.Duration, headroom resource.Vector) resource.Vector {
	v := c.Window(elapsed, window, true)
	for d := range v {
		v[d] *= 1 + headroom[d]
	}
	return v
}
