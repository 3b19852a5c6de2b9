package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
)

// The adapter for internal/predict. The engine measures CPU in cores and
// memory in MiB (internal/resource); this file converts memory to and from
// the bytes Kubernetes quantities use.

const bytesPerMiB = 1 << 20

// ErrNoHistory reports that the engine knows nothing to predict from, not
// even a global prior.
var ErrNoHistory = errors.New("core: no history")

// Features identify what is predicted: a signature, the code it runs and
// its declared inputs.
type Features struct {
	Signature  string  // SHA-256 hex of the whole signature
	Code       string  // SHA-256 hex of the code part: other input sizes share it
	InputBytes float64 // total declared input size
	InputType  string
}

// Load is the node's state when the prediction is made.
type Load struct {
	CPU, Memory float64 // utilisation, 0…1
	Running     int     // pods running
}

// Sample is one step of a run's use.
type Sample struct {
	CPU     float64 // cores
	Memory  float64 // bytes (working set)
	IO      float64 // operations per second
	Network float64 // Mbps, both directions
}

// Run is a finished run: its samples, one per Step from Start.
type Run struct {
	Features
	Start   time.Time
	Samples []Sample
}

// Source says which rung of the cold-start chain answered.
type Source string

// The cold-start chain, most specific first.
const (
	SourceExact Source = Source(predict.SourceExact) // earlier runs of this signature
	SourceSize  Source = Source(predict.SourceSize)  // same code at other input sizes, scaled
	SourceCode  Source = Source(predict.SourceCode)  // same code, unscaled
	SourcePrior Source = Source(predict.SourcePrior) // every run seen, with a margin on top
)

// Curve is a whole-run curve per dimension: bucket i covers [i·Step,
// (i+1)·Step) since the run's start; P50 is the median over runs of the
// bucket's mean, Upper the max over runs of the bucket's max (margin
// included).
type Curve struct {
	Step       time.Duration
	P50, Upper []float64
}

// Peak is the largest point of a curve.
func (c Curve) Peak() (p50, upper float64) {
	for i := range c.P50 {
		p50 = max(p50, c.P50[i])
	}
	for i := range c.Upper {
		upper = max(upper, c.Upper[i])
	}
	return p50, upper
}

// Prediction is the engine's answer in Kubernetes units.
type Prediction struct {
	Source                  Source
	Model                   string
	UpperQ                  float64
	CPU, Memory, IO, Net    Curve // cores, bytes, ops/s, Mbps
	Duration, DurationUpper time.Duration
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	Step    time.Duration // the runs' sampling step; default 1 s
	MaxRuns int           // runs kept per signature; default 8
}

// Engine is the predictor engine of internal/predict behind the types of
// this package. Safe for concurrent use (the engine locks itself).
type Engine struct {
	eng  *predict.Engine
	step time.Duration
}

// NewEngine returns an empty engine. log may be nil.
func NewEngine(cfg EngineConfig, log *slog.Logger) (*Engine, error) {
	if cfg.Step == 0 {
		cfg.Step = time.Second
	}
	eng, err := predict.NewEngine(predict.Config{Step: cfg.Step, MaxRuns: cfg.MaxRuns}, log)
	if err != nil {
		return nil, fmt.Errorf("predictor engine: %w", err)
	}
	return &Engine{eng: eng, step: cfg.Step}, nil
}

// Step is the sampling step every recorded run must use.
func (e *Engine) Step() time.Duration { return e.step }

// AddRun records a finished run; a run without samples is ignored.
func (e *Engine) AddRun(r Run) {
	ss := make([]resource.Sample, len(r.Samples))
	for i, s := range r.Samples {
		ss[i] = resource.Sample{
			Time:      r.Start.Add(time.Duration(i) * e.step),
			CPU:       s.CPU, // cores, as inside Prescient
			MemoryMB:  s.Memory / bytesPerMiB,
			IOPS:      s.IO,
			NetInMbps: s.Network,
			Avail:     resource.Set(0).With(resource.CPU).With(resource.Memory).With(resource.IO).With(resource.Net),
		}
	}
	e.eng.AddRun(predict.Run{Features: features(r.Features), Start: r.Start, Samples: ss})
}

// MarshalState is what the engine learned online per signature (scores
// and margins of its whole-run models), for LoadState after a restart:
// replaying the kept runs alone would forget what older, dropped runs
// taught the margins.
func (e *Engine) MarshalState() []byte { return e.eng.MarshalState() }

// LoadState restores MarshalState's bytes; call it after the runs are
// added. On error the engine is unchanged.
func (e *Engine) LoadState(b []byte) error { return e.eng.LoadState(b) }

// Predict returns the whole-run curves for f under load l, or ErrNoHistory.
func (e *Engine) Predict(ctx context.Context, f Features, l Load) (Prediction, error) {
	p, err := e.eng.Predict(ctx, predict.Query{Features: features(f), Load: predict.Load{CPU: l.CPU, Memory: l.Memory, Running: l.Running}})
	if errors.Is(err, predict.ErrNoData) {
		return Prediction{}, fmt.Errorf("signature %.12s: %w", f.Signature, ErrNoHistory)
	}
	if err != nil {
		return Prediction{}, fmt.Errorf("predict: %w", err)
	}
	return Prediction{
		Source: Source(p.Source), Model: p.Model, UpperQ: p.UpperQ,
		CPU:      scaled(p.Whole[resource.CPU], 1),
		Memory:   scaled(p.Whole[resource.Memory], bytesPerMiB),
		IO:       scaled(p.Whole[resource.IO], 1),
		Net:      scaled(p.Whole[resource.Net], 1),
		Duration: p.Duration, DurationUpper: p.DurationUpper,
	}, nil
}

func features(f Features) predict.Features {
	return predict.Features{Signature: f.Signature, Code: f.Code, InputSize: f.InputBytes, InputType: f.InputType}
}

func scaled(c predict.Curve, k float64) Curve {
	out := Curve{Step: c.Step, P50: make([]float64, len(c.P50)), Upper: make([]float64, len(c.Upper))}
	for i, v := range c.P50 {
		out.P50[i] = v * k
	}
	for i, v := range c.Upper {
		out.Upper[i] = v * k
	}
	return out
}
