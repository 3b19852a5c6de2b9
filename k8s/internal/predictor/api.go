package predictor

import (
	"errors"
	"time"
)

// The HTTP/JSON API. Units: CPU in cores, memory in bytes, IO in
// operations per second, network in Mbps (both directions), times in
// seconds.
//
//	POST /v1/predict              PredictRequest → 200 PredictResponse | 404 no history
//	POST /v1/runs                 RunRequest     → 201 RunResponse (durable when answered)
//	GET  /v1/signatures/{sig}     → 200 SignatureInfo | 404
//	GET  /healthz                 → 200 "ok"
//
// Errors answer {"error": "..."} with 400 (bad request), 404 (no history),
// 413 (body too large) or 500.

// Errors returned by this package.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("predictor: invalid config")
	// ErrNoHistory reports that nothing is known to predict from.
	ErrNoHistory = errors.New("predictor: no history")
	// ErrBadRequest reports a request the server refuses.
	ErrBadRequest = errors.New("predictor: bad request")
	// ErrStore reports a failure of the run store.
	ErrStore = errors.New("predictor: store")
	// ErrServer reports any other failed call, as seen by the Client.
	ErrServer = errors.New("predictor: server error")
)

// Load is the node's state when a prediction is asked for.
type Load struct {
	CPU     float64 `json:"cpu,omitempty"`    // utilisation, 0…1
	Memory  float64 `json:"memory,omitempty"` // utilisation, 0…1
	Running int     `json:"running,omitempty"`
}

// PredictRequest asks for the whole-run curve of a signature.
type PredictRequest struct {
	Signature  string  `json:"signature"` // 64 hex digits
	Code       string  `json:"code,omitempty"`
	InputBytes float64 `json:"inputBytes,omitempty"`
	InputType  string  `json:"inputType,omitempty"`
	Load       Load    `json:"load"`
}

// Curve is a whole-run curve: point i covers [i·Step, (i+1)·Step) since
// the run's start.
type Curve struct {
	P50   []float64 `json:"p50"`
	Upper []float64 `json:"upper"`
}

// Peak is a curve's largest point.
type Peak struct {
	P50   float64 `json:"p50"`
	Upper float64 `json:"upper"`
}

// Dim is one dimension of a prediction.
type Dim struct {
	Peak  Peak  `json:"peak"`
	Curve Curve `json:"curve"`
}

// PredictResponse is a prediction.
type PredictResponse struct {
	// Source is the rung of the cold-start chain that answered: exact (this
	// signature's runs), size (same code at other input sizes, scaled), code
	// (same code), prior (every signature's last run, with a margin).
	Source               string  `json:"source"`
	Model                string  `json:"model"`
	UpperQuantile        float64 `json:"upperQuantile"`
	StepSeconds          float64 `json:"stepSeconds"`
	DurationSeconds      float64 `json:"durationSeconds"`
	DurationUpperSeconds float64 `json:"durationUpperSeconds"`
	CPU                  Dim     `json:"cpu"`     // cores
	Memory               Dim     `json:"memory"`  // bytes
	IO                   Dim     `json:"io"`      // ops/s
	Network              Dim     `json:"network"` // Mbps
}

// Sample is one step of a run's use.
type Sample struct {
	CPU     float64 `json:"cpu"`               // cores
	Memory  float64 `json:"memory"`            // bytes (working set)
	IO      float64 `json:"io,omitempty"`      // ops/s
	Network float64 `json:"network,omitempty"` // Mbps
}

// RunRequest records a finished run: Samples[i] covers
// [Start + i·Step, Start + (i+1)·Step). Runs at another step than the
// server's are resampled to it (the max of the samples a step overlaps).
type RunRequest struct {
	Signature   string    `json:"signature"`
	Code        string    `json:"code,omitempty"`
	InputBytes  float64   `json:"inputBytes,omitempty"`
	InputType   string    `json:"inputType,omitempty"`
	Start       time.Time `json:"start"`
	StepSeconds float64   `json:"stepSeconds"`
	Samples     []Sample  `json:"samples"`
}

// RunResponse answers a recorded run.
type RunResponse struct {
	Runs int `json:"runs"` // runs now kept for the signature
}

// SignatureInfo describes what the server keeps for a signature.
type SignatureInfo struct {
	Signature string    `json:"signature"`
	Runs      []RunInfo `json:"runs"`
}

// RunInfo is one kept run.
type RunInfo struct {
	Start   time.Time `json:"start"`
	Samples int       `json:"samples"`
}

type errorResponse struct {
	Error string `json:"error"`
}
