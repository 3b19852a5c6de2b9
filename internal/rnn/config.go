package rnn

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Errors returned by this package. Callers match them with errors.Is.
var (
	// ErrConfig means a Config value is out of range.
	ErrConfig = errors.New("rnn: invalid config")
	// ErrExample means a training or evaluation example has the wrong shape
	// or non-finite inputs.
	ErrExample = errors.New("rnn: invalid example")
	// ErrFormat means UnmarshalBinary was given bytes that are not a model
	// written by MarshalBinary (wrong magic, truncated, corrupt, bad values).
	ErrFormat = errors.New("rnn: malformed model data")
	// ErrVersion means the data is a model of a format version this build
	// does not read.
	ErrVersion = errors.New("rnn: unsupported model format version")
	// ErrDiverged means training produced a non-finite loss or gradient; the
	// weights are left as they were before the failing update.
	ErrDiverged = errors.New("rnn: training diverged")
)

// Cell names accepted in Config.Cell.
const (
	CellGRU  = "gru"
	CellLSTM = "lstm"
)

// Defaults filled in by New for zero Config fields.
const (
	DefaultLearningRate = 0.01
	DefaultClip         = 5.0
)

const (
	maxDim       = 1 << 16 // Inputs, Hidden and Outputs each at most this
	maxQuantiles = 1 << 10
	maxParams    = 1 << 26 // 512 MiB of weights; more is surely a mistake
)

// Config describes a model. The zero values of LearningRate, Clip and Cell
// mean the defaults; Inputs, Hidden and Outputs are required.
type Config struct {
	Inputs, Hidden, Outputs int
	// Seed drives weight initialisation and minibatch shuffling.
	Seed int64
	// LearningRate is Adam's step size (default DefaultLearningRate).
	LearningRate float64
	// Quantiles, if set, must be strictly increasing in (0, 1); then Outputs
	// must be targets x len(Quantiles), output target*len(Quantiles)+q
	// predicts quantile Quantiles[q] of target, and the loss is pinball.
	// Otherwise the loss is mean squared error.
	Quantiles []float64
	// Clip is the maximum L2 norm of a minibatch gradient (default
	// DefaultClip); use math.Inf(1) to disable clipping.
	Clip float64
	// Cell is "gru" (default) or "lstm", case-insensitive.
	Cell string
	// L2 is the weight-decay coefficient: the objective gains
	// L2/2 * sum of squared weights (not biases). Zero disables it.
	L2 float64
}

// validate fills defaults and rejects bad values. It copies Quantiles so the
// model does not alias the caller's slice.
func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrConfig)
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"inputs", c.Inputs}, {"hidden", c.Hidden}, {"outputs", c.Outputs}} {
		if d.v < 1 || d.v > maxDim {
			return bad("%s %d not in [1, %d]", d.name, d.v, maxDim)
		}
	}
	if c.LearningRate == 0 {
		c.LearningRate = DefaultLearningRate
	}
	if !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0) {
		return bad("learning rate %v must be positive and finite", c.LearningRate)
	}
	if c.Clip == 0 {
		c.Clip = DefaultClip
	}
	if !(c.Clip > 0) { // also rejects NaN; +Inf means no clipping
		return bad("clip %v must be positive", c.Clip)
	}
	if !(c.L2 >= 0) || math.IsInf(c.L2, 0) {
		return bad("l2 %v must be non-negative and finite", c.L2)
	}
	switch strings.ToLower(c.Cell) {
	case "", CellGRU:
		c.Cell = CellGRU
	case CellLSTM:
		c.Cell = CellLSTM
	default:
		return bad("cell %q is not %q or %q", c.Cell, CellGRU, CellLSTM)
	}
	if len(c.Quantiles) > 0 {
		if len(c.Quantiles) > maxQuantiles {
			return bad("%d quantiles, at most %d", len(c.Quantiles), maxQuantiles)
		}
		for i, q := range c.Quantiles {
			if !(q > 0 && q < 1) {
				return bad("quantile %v not in (0, 1)", q)
			}
			if i > 0 && !(q > c.Quantiles[i-1]) {
				return bad("quantiles must be strictly increasing: %v after %v", q, c.Quantiles[i-1])
			}
		}
		if c.Outputs%len(c.Quantiles) != 0 {
			return bad("outputs %d is not a multiple of %d quantiles", c.Outputs, len(c.Quantiles))
		}
		c.Quantiles = append([]float64(nil), c.Quantiles...)
	} else {
		c.Quantiles = nil
	}
	if n := numParams(c.Inputs, c.Hidden, c.Outputs, gatesOf(c.Cell)); n > maxParams {
		return bad("%d parameters, at most %d", n, maxParams)
	}
	return nil
}

func gatesOf(cell string) int {
	if cell == CellLSTM {
		return 4
	}
	return 3
}

// numParams counts W (gH x I), U (gH x H), b (gH), V (O x H) and c (O).
// Arguments are at most maxDim, so the int64 arithmetic cannot overflow.
func numParams(in, hid, out, gates int) int64 {
	i, h, o, g := int64(in), int64(hid), int64(out), int64(gates)
	return g*h*(i+h+1) + o*(h+1)
}
