package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// Scheduling policies (Config.Policy, serve --policy).
const (
	// PolicyPredict: the predictive scheduler (internal/sched) over the
	// capacity calendar (internal/ledger), fed by the predictor
	// (internal/predict) from the store. The default.
	PolicyPredict = "predict"
	// PolicyFit: FitAdmitter, declared requests against capacity; kept for
	// comparison.
	PolicyFit = "fit"
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

// setupSched builds the ledger, the predictor and the scheduler.
func (d *Daemon) setupSched() error {
	sc := &d.cfg.Sched
	if sc.WholeStep <= 0 {
		sc.WholeStep = max(10*d.cfg.Interval, time.Second)
	}
	if sc.TrainEvery == 0 {
		sc.TrainEvery = 10 * time.Minute
	}
	if sc.MaxHistory <= 0 {
		sc.MaxHistory = 4096
	}
	step := d.cfg.Interval // one predictor step per sample
	eng, err := predict.NewEngine(predict.Config{Step: step, WholeStep: max(sc.WholeStep.Round(step), step)}, d.log)
	if err != nil {
		return fmt.Errorf("predictor: %w", err)
	}
	led, err := ledger.New(ledger.Config{
		Capacity:  resource.Vector{d.cap.CPUCores, d.cap.MemoryMB, ledger.DefaultIOPS, ledger.DefaultNetMbps},
		SlotWidth: time.Second, Horizon: 4 * time.Hour, // 16,384 slots (2.6 MB); longer curves are planned in part (sched.planSpan) Start: time.Now(),
	}, d.log)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	sch, err := sched.New(sched.Config{
		Ledger: led, Predictor: enginePredictor{eng}, Executor: schedExec{d}, Log: d.log,
		CommitWindow: sc.CommitWindow, MonitorWindow: sc.MonitorWindow, RetryLimit: sc.RetryLimit, PlanDepth: sc.PlanDepth,
		MinCPU: 0.1, // a task's own start-up (page faults, runtime init) needs more than a sliver
	})
	if err != nil {
		return err
	}
	d.eng, d.led, d.sch = eng, led, sch
	d.procs = map[string]*executor.Process{}
	return nil
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

// schedExec is the scheduler's Executor: live limit changes through the
// executor's adopted Process of each running task.
type schedExec struct{ d *Daemon }

var (
	_ sched.Executor    = schedExec{}
	_ sched.SoftLimiter = schedExec{}
	_ sched.Evictor     = schedExec{}
)

func (x schedExec) Update(id string, l task.Limits) error {
	p, err := x.d.proc(id)
	if err != nil {
		return err
	}
	return p.Update(l)
}

func (x schedExec) SetSoftMemory(id string, mb float64) error {
	p, err := x.d.proc(id)
	if err != nil {
		return err
	}
	return setSoftMemory(p.Cgroups(), mb)
}

// Evict kills the task's cgroup; its shim reports the end and finish
// requeues it.
func (x schedExec) Evict(id string) error {
	p, err := x.d.proc(id)
	if err != nil {
		return err
	}
	return p.Kill()
}

// proc returns the adopted Process of running task id.
func (d *Daemon) proc(id string) (*executor.Process, error) {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	if p := d.procs[id]; p != nil {
		return p, nil
	}
	p, err := d.ex.Adopt(id)
	if err != nil {
		return nil, err
	}
	d.procs[id] = p
	return p, nil
}

func (d *Daemon) forgetProc(id string) {
	if d.procs == nil {
		return
	}
	d.pmu.Lock()
	delete(d.procs, id)
	d.pmu.Unlock()
}

// schedTask is j as the scheduler sees it. Caller holds d.mu or owns j.
func schedTask(j *job) sched.Task {
	r := j.rec
	return sched.Task{
		ID: r.ID, Priority: j.meta.Priority,
		Features: sched.Features{Signature: r.Signature, Code: j.meta.Code, InputSize: float64(r.InputBytes),
			Requests: resource.Vector{j.meta.Requests.CPUCores, j.meta.Requests.MemoryMB}},
		Cap: r.Spec.Limits,
	}
}

// enqueueSched hands a queued job to the scheduler.
func (d *Daemon) enqueueSched(j *job) {
	d.mu.Lock()
	t := schedTask(j)
	d.mu.Unlock()
	if _, err := d.sch.Enqueue(t); err != nil && !errors.Is(err, sched.ErrExists) {
		d.log.Error("enqueue", "task", t.ID, "err", err)
	}
}

// dispatchSched runs one scheduler step and starts what it committed.
func (d *Daemon) dispatchSched() {
	d.handoff.Lock()
	defer d.handoff.Unlock()
	d.mu.Lock()
	n := d.cfg.MaxRunning - d.running
	d.mu.Unlock()
	if n <= 0 {
		return
	}
	starts := d.sch.Schedule(n)
	var start []*job
	var gone []string
	d.mu.Lock()
	for _, st := range starts {
		j := d.jobs[st.ID]
		if j == nil || j.elem == nil || j.cancelled { // cancelled while the scheduler chose it
			gone = append(gone, st.ID)
			continue
		}
		d.queue.Remove(j.elem)
		j.elem = nil
		j.started = true
		d.running++
		j.rec.Limits = st.Limits
		j.softMB = st.SoftMemoryMB
		start = append(start, j)
	}
	d.mu.Unlock()
	for _, id := range gone {
		_, _ = d.sch.Finish(id, sched.Outcome{Cancelled: true})
	}
	for _, j := range start {
		d.loops.Add(1)
		go d.supervise(j)
	}
}

// startSession applies the soft limit and opens the predictor's live
// session once a task's cgroup exists. Caller holds j.smu.
func (d *Daemon) startSession(j *job) {
	id := j.rec.ID
	d.mu.Lock()
	t, soft := schedTask(j), j.softMB
	d.mu.Unlock()
	if soft > 0 {
		if err := (schedExec{d}).SetSoftMemory(id, soft); err == nil {
			d.sch.MarkSoftApplied(id)
		} else {
			d.log.Debug("soft memory limit", "task", id, "err", err)
		}
	}
	u := d.sch.Usage()
	load := predict.Load{CPU: u.Used[resource.CPU] / u.Capacity[resource.CPU], Memory: u.Used[resource.Memory] / u.Capacity[resource.Memory], Running: u.Running}
	if s, err := d.eng.Start(predict.Features{Signature: t.Features.Signature, Code: t.Features.Code, InputSize: t.Features.InputSize}, load); err == nil {
		if j.sess != nil {
			j.sess.Close()
		}
		j.sess = s
	}
}

// observe feeds one sample to the live session and the scheduler's
// monitor. Caller holds j.smu.
func (d *Daemon) observe(j *job, s resource.Sample, now time.Time) {
	used := s.Vector().Finite()
	var ahead resource.Vector
	if j.sess != nil {
		j.sess.Observe(s)
		p := j.sess.Predict(d.monitorWindow())
		for dim := range resource.NumDims {
			for _, x := range p.Short[dim].Upper {
				ahead[dim] = max(ahead[dim], finite(x))
			}
		}
	}
	if _, err := d.sch.Observe(j.rec.ID, sched.Observation{At: now, Used: used, Ahead: ahead}); err != nil {
		d.log.Debug("monitor", "task", j.rec.ID, "err", err)
	}
}

func (d *Daemon) monitorWindow() time.Duration {
	if d.cfg.Sched.MonitorWindow > 0 {
		return d.cfg.Sched.MonitorWindow
	}
	return sched.DefaultMonitorWindow
}

// finishSched tells the scheduler how j's run ended. It returns true when
// the scheduler requeued the task (OOM retry or eviction) — then j has been
// requeued here too and the caller must not end it.
func (d *Daemon) finishSched(j *job, x *shimExit, cancelled bool, curve []resource.Sample) bool {
	id := j.rec.ID
	d.forgetProc(id)
	j.smu.Lock()
	if j.sess != nil {
		j.sess.Close()
		j.sess = nil
	}
	j.smu.Unlock()
	d.handoff.Lock()
	defer d.handoff.Unlock()
	res, err := d.sch.Finish(id, sched.Outcome{OOMKilled: x.OOMKilled, Cancelled: cancelled})
	if err != nil {
		d.log.Debug("scheduler finish", "task", id, "err", err)
		return false
	}
	d.mu.Lock()
	j.meta.Retries = res.Retries
	j.meta.Prediction, j.meta.Allocations = predictionOf(res.View), allocationsOf(res.View)
	d.mu.Unlock()
	if !res.Requeued {
		if x.Started && x.Code == 0 && x.StartError == "" && !x.Killed && len(curve) > 0 {
			d.mu.Lock()
			f := predict.Features{Signature: j.rec.Signature, Code: j.meta.Code, InputSize: float64(j.rec.InputBytes)}
			d.mu.Unlock()
			d.eng.AddRun(f, x.StartedAt, curve)
			d.newRuns.Add(1)
		}
		return false
	}
	d.st.Samples.Forget(id)
	_ = os.RemoveAll(d.runDir(id))
	d.mu.Lock()
	r := j.rec
	r.State, r.StartedAt, r.FinishedAt = task.Queued, nil, nil
	r.OOMKilled = x.OOMKilled
	r.Error = res.Detail
	if j.started {
		d.running--
	}
	j.started, j.finishing, j.shimPID = false, false, 0
	j.elem = d.queue.PushBack(j)
	rec, m := cloneRec(r), j.meta
	t := toAPI(rec, m)
	d.mu.Unlock()
	if err := d.commit([]*task.Record{rec}, [][]byte{encodeMeta(m)}); err != nil {
		d.log.Error("record requeue", "task", id, "err", err)
	}
	d.m.recovered.WithLabelValues(res.Reason).Inc()
	d.log.Info("requeued", "task", id, "reason", res.Reason, "estimate_mb", res.EstimateMB, "retries", res.Retries)
	d.publish(t)
	d.poke()
	return true
}

// predictionOf converts a scheduler view's curve.
func predictionOf(v sched.View) *api.Prediction {
	if len(v.Curve.Steps) == 0 {
		return nil
	}
	q := v.Curve.HiQ
	if q == 0 {
		q = ledger.DefaultHiQuantile
	}
	p := &api.Prediction{Model: v.Model, UpperQuantile: q, Steps: make([]api.PredictionStep, len(v.Curve.Steps))}
	for i, s := range v.Curve.Steps {
		p.Steps[i] = api.PredictionStep{DurationS: s.Dur.Seconds(), P50: amounts(s.P50), Upper: amounts(s.PHi)}
	}
	return p
}

func amounts(v resource.Vector) api.Amounts {
	return api.Amounts{CPUCores: v[resource.CPU], MemoryMB: v[resource.Memory], IOPS: v[resource.IO], NetMbps: v[resource.Net]}
}

func allocationsOf(v sched.View) []api.Allocation {
	out := make([]api.Allocation, len(v.Allocs))
	for i, a := range v.Allocs {
		out[i] = api.Allocation{Time: a.At, Limits: api.Limits(a.Limits), SoftMemoryMB: a.SoftMemoryMB, SoftApplied: a.SoftApplied, Reason: a.Reason, Detail: a.Detail}
	}
	return out
}

// withSched fills t's scheduler fields from the live scheduler.
func (d *Daemon) withSched(t *api.Task) {
	if d.sch == nil {
		return
	}
	v, ok := d.sch.Get(t.ID)
	if !ok {
		return
	}
	t.Prediction, t.Allocations, t.Retries = predictionOf(v), allocationsOf(v), v.Retries
	if v.State == sched.Queued {
		r := &api.Reservation{Held: v.Reserved, Deferred: v.Deferred, Soft: amounts(v.ResPeak)}
		if v.Reserved {
			at := v.ResStart
			r.Start = &at
		}
		t.Reservation = r
	}
}

// nodeSched fills the per-dimension view of the node.
func (d *Daemon) nodeSched(n *api.NodeStatus) {
	u := d.sch.Usage()
	n.Capacity = api.Resources{CPUCores: u.Capacity[resource.CPU], MemoryMB: u.Capacity[resource.Memory]}
	n.Used = api.Resources{CPUCores: u.Committed[resource.CPU], MemoryMB: u.Committed[resource.Memory]}
	n.Reserved = u.Reserved
	n.ModelVersion = int(d.modelVersion.Load())
	n.Dims = map[string]api.DimUsage{}
	for dim := range resource.NumDims {
		n.Dims[apiDimKey(dim)] = api.DimUsage{Capacity: u.Capacity[dim], Committed: u.Committed[dim],
			SoftReserved: u.SoftNow[dim], SoftPeak: u.SoftPeak[dim], Used: u.Used[dim]}
	}
}

// loadHistory feeds the predictor the newest succeeded runs, at most
// MaxRuns per signature (the engine keeps no more), oldest first.
func (d *Daemon) loadHistory() {
	recs, err := d.st.Tasks.List(store.Filter{State: task.Succeeded, Limit: d.cfg.Sched.MaxHistory})
	if err != nil {
		d.log.Warn("load history", "err", err)
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
	aux, err := d.st.Tasks.Aux(auxTable, ids...)
	if err != nil {
		d.log.Warn("load history", "err", err)
		return
	}
	n := 0
	for i := len(keep) - 1; i >= 0; i-- {
		r := keep[i]
		m, _ := decodeMeta(aux[i])
		ss, err := d.st.Samples.Curve(r.ID)
		if err != nil || len(ss) == 0 {
			continue
		}
		d.eng.AddRun(predict.Features{Signature: r.Signature, Code: m.Code, InputSize: float64(r.InputBytes)}, *r.StartedAt, ss)
		n++
	}
	d.log.Info("predictor history loaded", "runs", n, "signatures", len(per))
}

// loadModels installs the newest persisted model set that loads.
func (d *Daemon) loadModels() {
	files := d.modelFiles()
	for i := len(files) - 1; i >= 0; i-- {
		b, err := os.ReadFile(files[i])
		if err == nil {
			err = d.eng.LoadModels(b)
		}
		if err == nil {
			d.log.Info("models loaded", "file", files[i])
			d.modelVersion.Store(int64(modelVersion(files[i])))
			return
		}
		d.log.Warn("skip model file", "file", files[i], "err", err)
	}
}

func (d *Daemon) modelFiles() []string {
	fs, _ := filepath.Glob(filepath.Join(d.cfg.StateDir, modelsDir, "models-*.bin"))
	sort.Strings(fs) // zero-padded versions sort numerically
	return fs
}

func modelVersion(path string) int {
	return atoiOr0(strings.TrimPrefix(filepath.Base(path), "models-"))
}

// trainLoop refits the sequence models in the background: one goroutine,
// on a ticker, only when new runs arrived, at a low CPU priority (nice).
// A set that trains and persists becomes the next version; on failure the
// last good set is put back.
func (d *Daemon) trainLoop() {
	defer d.loops.Done()
	if d.cfg.Sched.TrainEvery < 0 {
		return
	}
	lowerPriority(d.log)
	tick := time.NewTicker(d.cfg.Sched.TrainEvery)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
		if d.newRuns.Swap(0) == 0 {
			continue
		}
		if err := d.trainOnce(ctx); err != nil {
			d.log.Warn("train models", "err", err)
			d.loadModels() // back to the last good set
		}
	}
}

var trainMu sync.Mutex

func (d *Daemon) trainOnce(ctx context.Context) error {
	trainMu.Lock()
	defer trainMu.Unlock()
	if err := d.eng.Train(ctx, predict.SeqConfig{Seed: 1}); err != nil {
		return err
	}
	b, err := d.eng.MarshalModels()
	if err != nil {
		return err
	}
	dir := filepath.Join(d.cfg.StateDir, modelsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v := d.modelVersion.Load() + 1
	path := filepath.Join(dir, fmt.Sprintf("models-%06d.bin", v))
	if err := writeFileAtomic(path, b, false); err != nil {
		return err
	}
	d.modelVersion.Store(v)
	// Keep the three newest sets.
	if fs := d.modelFiles(); len(fs) > 3 {
		for _, f := range fs[:len(fs)-3] {
			_ = os.Remove(f)
		}
	}
	d.log.Info("models trained", "version", v, "bytes", len(b))
	return nil
}
