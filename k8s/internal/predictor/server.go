package predictor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/k8s/internal/core"
)

// Limits on what a request may carry.
const (
	maxBodyBytes  = 16 << 20
	maxRunSamples = 1 << 17 // samples per recorded run, before resampling
	minStep       = time.Millisecond
	maxStep       = time.Hour
	stateFile     = "state.bin"      // the engine's online state, beside runs.db
	saveEvery     = 30 * time.Second // how often changed state is saved
)

// Config configures a Server.
type Config struct {
	// Dir holds the run store (runs.db); required. Put it on a volume:
	// a restart replays it, so no history is lost.
	Dir string
	// Step is the predictor's sampling step; runs recorded at another
	// step are resampled. Default 1 s.
	Step time.Duration
	// MaxRuns is how many runs are kept per signature. Default 8.
	MaxRuns int
	// MaxSamples is how many samples (at Step) are kept per run: a longer
	// run keeps its last MaxSamples. Default 4096.
	MaxSamples int
}

func (c *Config) validate() error {
	if c.Step == 0 {
		c.Step = time.Second
	}
	if c.MaxRuns == 0 {
		c.MaxRuns = 8
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = 4096
	}
	switch {
	case c.Dir == "":
		return fmt.Errorf("empty dir: %w", ErrConfig)
	case c.Step < minStep || c.Step > maxStep:
		return fmt.Errorf("step %v: %w", c.Step, ErrConfig)
	case c.MaxRuns < 1 || c.MaxSamples < 1:
		return fmt.Errorf("max runs %d, max samples %d: %w", c.MaxRuns, c.MaxSamples, ErrConfig)
	}
	return nil
}

// Server is the predictor service: the engine of internal/predict behind
// HTTP/JSON, its runs persisted in a bbolt file. A recorded run is on disk
// before the request is answered, and Open replays every kept run, so a
// restart loses no history. Safe for concurrent use; Close is idempotent.
type Server struct {
	cfg   Config
	log   *slog.Logger
	eng   *core.Engine
	store *runStore

	mu    sync.Mutex // guards dirty; serialises saves
	dirty bool       // runs were added since the state was saved

	stop      chan struct{}
	saver     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the run store in cfg.Dir and loads its runs into
// a new engine. log may be nil.
func Open(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	eng, err := core.NewEngine(core.EngineConfig{Step: cfg.Step, MaxRuns: cfg.MaxRuns}, log)
	if err != nil {
		return nil, err
	}
	st, err := openStore(cfg.Dir, cfg.MaxRuns)
	if err != nil {
		return nil, err
	}
	n := 0
	err = st.each(func(r *storedRun) error {
		if r.Step != cfg.Step {
			r.Samples = resampleTail(r.Samples, r.Step, cfg.Step, cfg.MaxSamples)
		}
		eng.AddRun(r.coreRun())
		n++
		return nil
	})
	if err != nil {
		st.close()
		return nil, fmt.Errorf("load runs: %w", err)
	}
	log.Info("predictor history loaded", "runs", n, "dir", cfg.Dir)
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, stateFile)); err == nil {
		if err := eng.LoadState(b); err != nil {
			log.Warn("predictor state not loaded: the margins start again from the kept runs", "err", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("predictor state not read", "err", err)
	}
	s := &Server{cfg: cfg, log: log, eng: eng, store: st, stop: make(chan struct{})}
	s.saver.Add(1)
	go s.saveLoop()
	return s, nil
}

// saveLoop saves the engine's state every saveEvery while runs arrive, so
// a crash loses at most that much of what the margins learned (never a
// run: runs are on disk before Record returns).
func (s *Server) saveLoop() {
	defer s.saver.Done()
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.saveState(); err != nil {
				s.log.Warn("save predictor state", "err", err)
			}
		}
	}
}

// saveState writes the engine's state (write, fsync, rename) if runs were
// added since the last save.
func (s *Server) saveState() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	path := filepath.Join(s.cfg.Dir, stateFile)
	f, err := os.CreateTemp(s.cfg.Dir, stateFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(s.eng.MarshalState()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	s.dirty = false
	return nil
}

// Close saves the engine's state and closes the run store. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.saver.Wait()
		serr := s.saveState()
		s.closeErr = errors.Join(serr, s.store.close())
	})
	return s.closeErr
}

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/predict", s.handlePredict)
	mux.HandleFunc("POST /v1/runs", s.handleRecord)
	mux.HandleFunc("GET /v1/signatures/{sig}", s.handleSignature)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

// Predict answers a PredictRequest (what POST /v1/predict serves).
func (s *Server) Predict(ctx context.Context, req PredictRequest) (PredictResponse, error) {
	if !validSig(req.Signature) {
		return PredictResponse{}, fmt.Errorf("signature %q: want 64 hex digits: %w", req.Signature, ErrBadRequest)
	}
	p, err := s.eng.Predict(ctx, core.Features{Signature: req.Signature, Code: req.Code, InputBytes: req.InputBytes, InputType: req.InputType},
		core.Load{CPU: req.Load.CPU, Memory: req.Load.Memory, Running: req.Load.Running})
	if errors.Is(err, core.ErrNoHistory) {
		return PredictResponse{}, fmt.Errorf("signature %.12s: %w", req.Signature, ErrNoHistory)
	}
	if err != nil {
		return PredictResponse{}, err
	}
	return PredictResponse{
		Source: string(p.Source), Model: p.Model, UpperQuantile: p.UpperQ,
		StepSeconds:          p.Memory.Step.Seconds(),
		DurationSeconds:      p.Duration.Seconds(),
		DurationUpperSeconds: p.DurationUpper.Seconds(),
		CPU:                  dimOf(p.CPU), Memory: dimOf(p.Memory), IO: dimOf(p.IO), Network: dimOf(p.Net),
	}, nil
}

// Record persists a run and adds it to the engine (what POST /v1/runs
// serves). The run is on disk when Record returns.
func (s *Server) Record(req RunRequest) (RunResponse, error) {
	if err := validateRun(&req); err != nil {
		return RunResponse{}, err
	}
	step := time.Duration(req.StepSeconds * float64(time.Second))
	r := &storedRun{
		Signature: req.Signature, Code: req.Code, InputBytes: req.InputBytes, InputType: req.InputType,
		Start: req.Start, Step: s.cfg.Step, Samples: resampleTail(req.Samples, step, s.cfg.Step, s.cfg.MaxSamples),
	}
	kept, err := s.store.put(r)
	if err != nil {
		return RunResponse{}, err
	}
	s.eng.AddRun(r.coreRun())
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	s.log.Debug("run recorded", "signature", req.Signature, "samples", len(r.Samples), "kept", kept)
	return RunResponse{Runs: kept}, nil
}

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	var req PredictRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.Predict(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRecord(w http.ResponseWriter, r *http.Request) {
	var req RunRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.Record(req)
	if err != nil {
		s.log.Warn("record run", "err", err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) handleSignature(w http.ResponseWriter, r *http.Request) {
	sig := r.PathValue("sig")
	if !validSig(sig) {
		writeError(w, fmt.Errorf("signature %q: want 64 hex digits: %w", sig, ErrBadRequest))
		return
	}
	runs, err := s.store.list(sig)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(runs) == 0 {
		writeError(w, fmt.Errorf("signature %.12s: %w", sig, ErrNoHistory))
		return
	}
	writeJSON(w, http.StatusOK, SignatureInfo{Signature: sig, Runs: runs})
}

// validateRun checks a run from outside.
func validateRun(r *RunRequest) error {
	step := time.Duration(r.StepSeconds * float64(time.Second))
	switch {
	case !validSig(r.Signature):
		return fmt.Errorf("signature %q: want 64 hex digits: %w", r.Signature, ErrBadRequest)
	case r.Code != "" && !validSig(r.Code):
		return fmt.Errorf("code %q: want 64 hex digits: %w", r.Code, ErrBadRequest)
	case math.IsNaN(r.StepSeconds) || step < minStep || step > maxStep:
		return fmt.Errorf("step %v s: want %v … %v: %w", r.StepSeconds, minStep, maxStep, ErrBadRequest)
	case len(r.Samples) == 0 || len(r.Samples) > maxRunSamples:
		return fmt.Errorf("%d samples: want 1 … %d: %w", len(r.Samples), maxRunSamples, ErrBadRequest)
	case r.Start.IsZero():
		return fmt.Errorf("no start time: %w", ErrBadRequest)
	case !finite(r.InputBytes) || r.InputBytes < 0:
		return fmt.Errorf("input bytes %v: %w", r.InputBytes, ErrBadRequest)
	case len(r.InputType) > 64:
		return fmt.Errorf("input type longer than 64 bytes: %w", ErrBadRequest)
	}
	for i, s := range r.Samples {
		for _, v := range [...]float64{s.CPU, s.Memory, s.IO, s.Network} {
			if !finite(v) || v < 0 {
				return fmt.Errorf("sample %d: value %v: want finite, ≥ 0: %w", i, v, ErrBadRequest)
			}
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func validSig(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// resampleTail resamples the last part of in that makes at most maxOut
// samples at step to (a longer run keeps its end, as the engine does).
func resampleTail(in []Sample, from, to time.Duration, maxOut int) []Sample {
	if keep := int((time.Duration(maxOut)*to+from-1)/from) + 1; keep < len(in) {
		in = in[len(in)-keep:]
	}
	out := resample(in, from, to)
	return out[max(0, len(out)-maxOut):]
}

// resample converts samples at step from to samples at step to: output i
// covers [i·to, (i+1)·to) and takes, per dimension, the max of the input
// samples that interval overlaps (peaks matter more than means here).
func resample(in []Sample, from, to time.Duration) []Sample {
	if from == to || len(in) == 0 {
		return in
	}
	total := time.Duration(len(in)) * from
	n := int((total + to - 1) / to)
	out := make([]Sample, n)
	for i := range out {
		lo := int(time.Duration(i) * to / from)
		hi := int((time.Duration(i+1)*to + from - 1) / from) // exclusive
		hi = min(max(hi, lo+1), len(in))
		var s Sample
		for _, x := range in[lo:hi] {
			s.CPU, s.Memory = max(s.CPU, x.CPU), max(s.Memory, x.Memory)
			s.IO, s.Network = max(s.IO, x.IO), max(s.Network, x.Network)
		}
		out[i] = s
	}
	return out
}

func dimOf(c core.Curve) Dim {
	p50, up := c.Peak()
	return Dim{Peak: Peak{P50: p50, Upper: up}, Curve: Curve{P50: nonNil(c.P50), Upper: nonNil(c.Upper)}}
}

func nonNil(v []float64) []float64 {
	if v == nil {
		return []float64{}
	}
	return v
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := decodeJSON(body, v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("body over %d bytes: %w: %w", tooBig.Limit, ErrBadRequest, err)
		}
		return err
	}
	return nil
}

// decodeJSON reads exactly one JSON value, refusing unknown fields.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode: %w: %w", ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("decode: trailing data: %w", ErrBadRequest)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNoHistory):
		code = http.StatusNotFound
	}
	writeJSON(w, code, errorResponse{Error: err.Error()})
}
