package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// SchedConfig tunes the predictive scheduler. Zero fields take defaults.
type SchedConfig struct {
	// CommitWindow and MonitorWindow: see sched.Config (defaults 30 s and
	// 10 s).
	CommitWindow, MonitorWindow time.Duration
	// RetryLimit bounds OOM retries per task (default 3).
	RetryLimit int
	// PlanDepth: how many queued tasks hold soft reservations (default
	// sched.DefaultPlanDepth); the rest wait deferred.
	PlanDepth int
	// WholeStep is the step of the predicted whole-run curves (default
	// 10 × the sampling interval, at least 1 s).
	WholeStep time.Duration
	// TrainEvery is how often the background trainer refits the sequence
	// models when new runs arrived (default 10 min; negative: never).
	TrainEvery time.Duration
	// MaxHistory bounds the finished runs loaded into the predictor at
	// start (default 4096, newest first).
	MaxHistory int
	// BurstWindow: a user's tasks queued within it of each other start
	// longest predicted first (sched.Config.BurstWindow; default 5 s,
	// negative: strictly first come, first served).
	BurstWindow time.Duration
	// WideStretch: a task predicted to use more than one core is planned,
	// admitted and weighted at its use / WideStretch, at least one core,
	// so it starts on a free core instead of waiting for its whole width
	// (sched.Config.WideStretch; default 2, 1: full width).
	WideStretch float64
	// MemoryHold: how long a task held at a memory limit lowered under
	// its history's need waits for a raise before the kernel's OOM killer
	// decides (sched.Config.MemoryHoldFor; default 10 s, negative: no
	// holds, a task over a lowered limit is OOM-killed and retried).
	MemoryHold time.Duration
}

// modelsDir holds the persisted models, models-NNNNNN.bin, newest highest,
// and stateFile, what the predictor learned per signature online.
const (
	modelsDir = "models"
	stateFile = "state.bin"
)

// loadRingSize is how many of the node's recent loads are kept for the
// runs that end (at the default interval, 2¼ hours; a longer run takes
// the oldest kept for its earlier samples).
const loadRingSize = 8192

// predictPolicy plans, starts and follows tasks by their predicted curves:
// the scheduler is fed the predictor's whole-run curve at enqueue and, on
// every sample, the live session's short-horizon forecast; finished runs
// become history, and a background trainer refits the sequence models.
type predictPolicy struct {
	*schedPolicy
	eng      *predict.Engine
	st       *store.Store
	stateDir string
	cfg      SchedConfig
	window   time.Duration // monitor window
	ctl      Control

	newRuns      atomic.Int64 // finished runs since the last training
	modelVersion atomic.Int64 // written by the trainer (and at load); read by Node

	// The node's load: measured at the last tick, and planned for the
	// window ahead (measured plus the soft reservations due now), which
	// the enqueue-time prediction reads.
	load    atomic.Pointer[predict.Load]
	planned atomic.Pointer[predict.Load]
	loads   *loadRing

	mu       sync.Mutex // guards sessions
	sessions map[string]*predict.Session
}

func newPredictPolicy(capacity resource.Vector, ctl Control, st *store.Store, stateDir string, interval time.Duration, sc SchedConfig, log *slog.Logger) (*predictPolicy, error) {
	if sc.WholeStep <= 0 {
		sc.WholeStep = max(10*interval, time.Second)
	}
	if sc.TrainEvery == 0 {
		sc.TrainEvery = 10 * time.Minute
	}
	if sc.MaxHistory <= 0 {
		sc.MaxHistory = 4096
	}
	// One predictor step per sample.
	eng, err := predict.NewEngine(predict.DaemonConfig(interval, sc.WholeStep), log)
	if err != nil {
		return nil, fmt.Errorf("predictor: %w", err)
	}
	p := &predictPolicy{eng: eng, st: st, stateDir: stateDir, cfg: sc, ctl: ctl, sessions: map[string]*predict.Session{}, loads: newLoadRing(loadRingSize)}
	p.load.Store(&predict.Load{})
	p.planned.Store(&predict.Load{})
	p.window = sc.MonitorWindow
	if p.window <= 0 {
		p.window = sched.DefaultMonitorWindow
	}
	base, err := newSchedPolicy(PolicyPredict, capacity, ctl, sched.Config{
		Predictor: enginePredictor{eng, &p.planned}, CommitWindow: sc.CommitWindow, MonitorWindow: sc.MonitorWindow,
		RetryLimit: sc.RetryLimit, PlanDepth: sc.PlanDepth, BurstWindow: sc.BurstWindow, WideStretch: sc.WideStretch,
		MemoryHoldFor: sc.MemoryHold,
		MinCPU:        0.1, // a task's own start-up (page faults, runtime init) needs more than a sliver
	}, log)
	if err != nil {
		return nil, err
	}
	p.schedPolicy = base
	p.loadModels()
	p.loadHistory()
	p.loadFloors()
	p.loadState()
	return p, nil
}

// enginePredictor adapts predict.Engine to sched.Predictor: the whole-run
// curve the engine sizes a run of the signature with before it starts —
// under the load planned for the node now — from the whole-run model that
// scores best on the signature's runs (history statistics or the run-level
// sequence model), with the signature's conformal margin; through the
// cold-start chain, from the same code. A signature known only through the
// global prior gets no curve: its declared requests are the better guess.
// The model is named "<history|seq>/<source>".
type enginePredictor struct {
	eng     *predict.Engine
	planned *atomic.Pointer[predict.Load]
}

func (p enginePredictor) Predict(f sched.Features) (ledger.Curve, string) {
	pr, err := p.eng.Whole(predict.Features{Signature: f.Signature, Code: f.Code, InputSize: f.InputSize, InputType: f.InputType},
		time.Now(), *p.planned.Load())
	if err != nil || pr.Source == predict.SourcePrior {
		return ledger.Curve{}, ""
	}
	return curveOf(pr), pr.Model + "/" + string(pr.Source)
}

var _ nodeObserver = (*predictPolicy)(nil)

// ObserveNode takes the node's load of this tick: for the live sessions,
// the runs that end, and the load planned for runs enqueued now.
func (p *predictPolicy) ObserveNode(s profile.NodeSample) {
	l := loadOf(s)
	p.load.Store(&l)
	p.loads.add(s.Time, l)
	u := p.sch.Usage()
	planned := l
	planned.CPU += u.SoftNow[resource.CPU] // runs the plan starts now
	planned.Running = u.Running
	p.planned.Store(&planned)
}

// curveOf converts a prediction's whole-run curves to a ledger curve.
func curveOf(pr predict.Prediction) ledger.Curve {
	n := 0
	for d := range resource.NumDims {
		n = max(n, len(pr.Whole[d].P50))
	}
	step := pr.Whole[resource.Memory].Step
	if n == 0 || step <= 0 {
		return ledger.Curve{}
	}
	per := (n + ledger.MaxSteps - 1) / ledger.MaxSteps // merge buckets beyond MaxSteps
	c := ledger.Curve{}
	if pr.UpperQ > 0.5 && pr.UpperQ < 1 {
		c.HiQ = pr.UpperQ
	}
	// The reservation lasts the upper duration: the last bucket is cut
	// there (a 5 s run in 10 s buckets holds 5 s, not 10).
	total := step * time.Duration(n)
	if d := pr.DurationUpper; d > 0 && d < total {
		total = d
	}
	var off time.Duration
	for i := 0; i < n && off < total; i += per {
		st := ledger.Step{Dur: min(step*time.Duration(min(per, n-i)), total-off)}
		off += st.Dur
		for d := range resource.NumDims {
			w := pr.Whole[d]
			for k := i; k < min(i+per, len(w.P50)); k++ {
				st.P50[d] = max(st.P50[d], finite(w.P50[k]))
				st.PHi[d] = max(st.PHi[d], finite(w.Upper[k]))
			}
			st.PHi[d] = max(st.PHi[d], st.P50[d])
		}
		c.Steps = append(c.Steps, st)
	}
	return c
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0
	}
	return x
}

// Started applies the soft memory limit the commit chose and opens the
// predictor's live session for the run.
func (p *predictPolicy) Started(id string, q Queued) {
	if v, ok := p.sch.Get(id); ok && len(v.Allocs) > 0 {
		if soft := v.Allocs[len(v.Allocs)-1].SoftMemoryMB; soft > 0 && p.ctl != nil {
			if err := p.ctl.SetSoftMemory(id, soft); err == nil {
				p.sch.MarkSoftApplied(id)
			} else {
				p.log.Debug("soft memory limit", "task", id, "err", err)
			}
		}
	}
	s, err := p.eng.Start(predict.Features{Signature: q.Signature, Code: q.Code, InputSize: q.InputSize}, time.Now(), *p.planned.Load())
	if err != nil {
		p.log.Debug("predictor session", "task", id, "err", err)
		return
	}
	p.mu.Lock()
	if old := p.sessions[id]; old != nil {
		old.Close()
	}
	p.sessions[id] = s
	p.mu.Unlock()
}

// Observe feeds the sample to the live session and hands its upper
// forecast over the monitor window to the scheduler.
func (p *predictPolicy) Observe(id string, s resource.Sample) {
	var ahead resource.Vector
	p.mu.Lock()
	if sess := p.sessions[id]; sess != nil {
		sess.SetLoad(*p.load.Load())
		sess.Observe(s)
		pr := sess.Predict(p.window)
		for dim := range resource.NumDims {
			for _, x := range pr.Short[dim].Upper {
				ahead[dim] = max(ahead[dim], finite(x))
			}
		}
	}
	p.mu.Unlock()
	p.observe(id, s, ahead)
}

// Finish closes the live session, releases the run and learns from it.
func (p *predictPolicy) Finish(id string, r Run) sched.Result {
	p.mu.Lock()
	if sess := p.sessions[id]; sess != nil {
		sess.Close()
		delete(p.sessions, id)
	}
	p.mu.Unlock()
	res := p.schedPolicy.Finish(id, r)
	if !res.Requeued && len(r.Curve) > 0 && r.End.Outcome().State == task.Succeeded {
		q := r.Task
		ts := make([]time.Time, len(r.Curve))
		for i, x := range r.Curve {
			ts[i] = x.Time
		}
		p.eng.AddRun(predict.Run{Features: predict.Features{Signature: q.Signature, Code: q.Code, InputSize: q.InputSize},
			Start: r.End.StartedAt, Samples: r.Curve, Load: p.loads.loadsAt(ts)})
		p.newRuns.Add(1)
	}
	return res
}

func (p *predictPolicy) Node(n *api.NodeStatus) {
	p.schedPolicy.Node(n)
	n.ModelVersion = int(p.modelVersion.Load())
}

// loadHistory feeds the predictor the newest succeeded runs, at most
// MaxRuns per signature (the engine keeps no more), oldest first, with the
// node's load during each.
func (p *predictPolicy) loadHistory() {
	runs, err := History(p.st, p.cfg.MaxHistory, p.eng.Config().MaxRuns)
	if err != nil {
		p.log.Warn("load history", "err", err)
		return
	}
	sigs := map[string]bool{}
	for _, r := range runs {
		p.eng.AddRun(r)
		sigs[r.Signature] = true
	}
	p.log.Info("predictor history loaded", "runs", len(runs), "signatures", len(sigs))
}

// loadState restores what the predictor learned per signature online.
func (p *predictPolicy) loadState() {
	b, err := os.ReadFile(filepath.Join(p.stateDir, modelsDir, stateFile))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.log.Warn("load predictor state", "err", err)
		}
		return
	}
	if err := p.eng.LoadState(b); err != nil {
		p.log.Warn("load predictor state", "err", err)
	}
}

// loadFloors teaches the scheduler what OOM kills showed before this
// start: a signature whose newest run was OOM-killed for good starts its
// next task at twice the limit it died at (as its retries would have).
func (p *predictPolicy) loadFloors() {
	recs, err := p.st.Tasks.List(store.Filter{Limit: p.cfg.MaxHistory})
	if err != nil {
		p.log.Warn("load OOM floors", "err", err)
		return
	}
	seen := map[string]bool{}
	n := 0
	for _, r := range recs { // newest first
		if !r.State.Terminal() || seen[r.Signature] {
			continue
		}
		seen[r.Signature] = true
		if r.State == task.Failed && r.OOMKilled && r.Limits.MemoryMB > 0 {
			p.sch.SetFloor(r.Signature, 2*r.Limits.MemoryMB)
			n++
		}
	}
	if n > 0 {
		p.log.Info("OOM floors loaded", "signatures", n)
	}
}

// saveState persists what the predictor learned per signature online.
func (p *predictPolicy) saveState() error {
	dir := filepath.Join(p.stateDir, modelsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), p.eng.MarshalState(), false)
}

// loadModels installs the newest persisted model set that loads.
func (p *predictPolicy) loadModels() {
	files := p.modelFiles()
	for i := len(files) - 1; i >= 0; i-- {
		b, err := os.ReadFile(files[i])
		if err == nil {
			err = p.eng.LoadModels(b)
		}
		if err == nil {
			p.log.Info("models loaded", "file", files[i])
			p.modelVersion.Store(int64(modelVersion(files[i])))
			return
		}
		p.log.Warn("skip model file", "file", files[i], "err", err)
	}
}

func (p *predictPolicy) modelFiles() []string {
	fs, _ := filepath.Glob(filepath.Join(p.stateDir, modelsDir, "models-*.bin"))
	sort.Strings(fs) // zero-padded versions sort numerically
	return fs
}

func modelVersion(path string) int {
	return atoiOr0(strings.TrimPrefix(filepath.Base(path), "models-"))
}

// Run refits the sequence models in the background: on a ticker, only
// when new runs arrived, at a low CPU priority (nice). A set that trains
// and persists becomes the next version; on failure the last good set is
// put back.
func (p *predictPolicy) Run(ctx context.Context) {
	if p.cfg.TrainEvery < 0 {
		<-ctx.Done()
		return
	}
	lowerPriority(p.log)
	tick := time.NewTicker(p.cfg.TrainEvery)
	defer tick.Stop()
	defer func() {
		if err := p.saveState(); err != nil {
			p.log.Warn("save predictor state", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if p.newRuns.Swap(0) == 0 {
			continue
		}
		t0 := time.Now()
		p.log.Info("training models")
		err := p.trainOnce(ctx)
		if m := p.m.Load(); m != nil {
			m.trainSecs.Observe(time.Since(t0).Seconds())
			m.trainings.WithLabelValues(map[bool]string{true: "ok", false: "failed"}[err == nil]).Inc()
		}
		if err != nil {
			p.log.Warn("train models", "err", err, "took", time.Since(t0).Round(time.Millisecond))
			p.loadModels() // back to the last good set
		}
	}
}

func (p *predictPolicy) trainOnce(ctx context.Context) error {
	st, err := p.eng.Train(ctx, predict.TrainConfig{Seq: predict.SeqConfig{Seed: 1}})
	if err != nil {
		return err
	}
	b, err := p.eng.MarshalModels()
	if err != nil {
		return err
	}
	dir := filepath.Join(p.stateDir, modelsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v := p.modelVersion.Load() + 1
	path := filepath.Join(dir, fmt.Sprintf("models-%06d.bin", v))
	if err := writeFileAtomic(path, b, false); err != nil {
		return err
	}
	p.modelVersion.Store(v)
	// Keep the three newest sets.
	if fs := p.modelFiles(); len(fs) > 3 {
		for _, f := range fs[:len(fs)-3] {
			_ = os.Remove(f)
		}
	}
	if err := p.saveState(); err != nil {
		p.log.Warn("save predictor state", "err", err)
	}
	p.log.Info("models trained", "version", v, "bytes", len(b), "runs", st.Runs, "signatures", st.Signatures, "run_model", st.RunModel, "took", st.Took)
	return nil
}
