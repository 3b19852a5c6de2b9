package daemon

import (
	"context"
	"fmt"
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
}

// modelsDir holds the persisted models, models-NNNNNN.bin, newest highest.
const modelsDir = "models"

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
	step := interval // one predictor step per sample
	eng, err := predict.NewEngine(predict.Config{Step: step, WholeStep: max(sc.WholeStep.Round(step), step)}, log)
	if err != nil {
		return nil, fmt.Errorf("predictor: %w", err)
	}
	p := &predictPolicy{eng: eng, st: st, stateDir: stateDir, cfg: sc, ctl: ctl, sessions: map[string]*predict.Session{}}
	p.window = sc.MonitorWindow
	if p.window <= 0 {
		p.window = sched.DefaultMonitorWindow
	}
	base, err := newSchedPolicy(PolicyPredict, capacity, ctl, sched.Config{
		Predictor: enginePredictor{eng}, CommitWindow: sc.CommitWindow, MonitorWindow: sc.MonitorWindow,
		RetryLimit: sc.RetryLimit, PlanDepth: sc.PlanDepth,
		MinCPU: 0.1, // a task's own start-up (page faults, runtime init) needs more than a sliver
	}, log)
	if err != nil {
		return nil, err
	}
	p.schedPolicy = base
	p.loadHistory()
	p.loadModels()
	return p, nil
}

// enginePredictor adapts predict.Engine to sched.Predictor: the whole-run
// curve of the signature's history (or, through the cold-start chain, of
// the same code). A signature known only through the global prior gets no
// curve: its declared requests are the better guess.
type enginePredictor struct{ eng *predict.Engine }

func (p enginePredictor) Predict(f sched.Features) (ledger.Curve, string) {
	pr, err := p.eng.Predict(context.Background(), predict.Query{Features: predict.Features{
		Signature: f.Signature, Code: f.Code, InputSize: f.InputSize, InputType: f.InputType}})
	if err != nil || pr.Source == predict.SourcePrior {
		return ledger.Curve{}, ""
	}
	return curveOf(pr), "history/" + string(pr.Source)
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
	for i := 0; i < n; i += per {
		st := ledger.Step{Dur: step * time.Duration(min(per, n-i))}
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
	u := p.sch.Usage()
	load := predict.Load{CPU: u.Used[resource.CPU] / u.Capacity[resource.CPU], Memory: u.Used[resource.Memory] / u.Capacity[resource.Memory], Running: u.Running}
	s, err := p.eng.Start(predict.Features{Signature: q.Signature, Code: q.Code, InputSize: q.InputSize}, load)
	if err != nil {
		return // nothing known of the signature: the scheduler follows the requests
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
		p.eng.AddRun(predict.Features{Signature: q.Signature, Code: q.Code, InputSize: q.InputSize}, r.End.StartedAt, r.Curve)
		p.newRuns.Add(1)
	}
	return res
}

func (p *predictPolicy) Node(n *api.NodeStatus) {
	p.schedPolicy.Node(n)
	n.ModelVersion = int(p.modelVersion.Load())
}

// loadHistory feeds the predictor the newest succeeded runs, at most
// MaxRuns per signature (the engine keeps no more), oldest first.
func (p *predictPolicy) loadHistory() {
	recs, err := p.st.Tasks.List(store.Filter{State: task.Succeeded, Limit: p.cfg.MaxHistory})
	if err != nil {
		p.log.Warn("load history", "err", err)
		return
	}
	per := map[string]int{}
	var keep []*task.Record
	for _, r := range recs { // newest first
		if r.StartedAt == nil || per[r.Signature] >= 8 {
			continue
		}
		per[r.Signature]++
		keep = append(keep, r)
	}
	ids := make([]string, len(keep))
	for i, r := range keep {
		ids[i] = r.ID
	}
	aux, err := p.st.Tasks.Aux(auxTable, ids...)
	if err != nil {
		p.log.Warn("load history", "err", err)
		return
	}
	n := 0
	for i := len(keep) - 1; i >= 0; i-- {
		r := keep[i]
		m, _ := decodeMeta(aux[i])
		ss, err := p.st.Samples.Curve(r.ID)
		if err != nil || len(ss) == 0 {
			continue
		}
		p.eng.AddRun(predict.Features{Signature: r.Signature, Code: m.Code, InputSize: float64(r.InputBytes)}, *r.StartedAt, ss)
		n++
	}
	p.log.Info("predictor history loaded", "runs", n, "signatures", len(per))
	p.loadFloors()
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
	if err := p.eng.Train(ctx, predict.SeqConfig{Seed: 1}); err != nil {
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
	p.log.Info("models trained", "version", v, "bytes", len(b))
	return nil
}
