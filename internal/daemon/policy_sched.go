package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
)

// schedPolicy is what both policies share: internal/sched's queue, plan,
// commit and release over the ledger's capacity calendar, with live limits
// through a Control. fitPolicy is it with a predictor that knows nothing
// and static limits; predictPolicy feeds it predicted curves and live
// forecasts.
type schedPolicy struct {
	name   string
	static bool // requests are fixed limits (sched.Config.Static)
	sch    *sched.Scheduler
	led    *ledger.Ledger
	log    *slog.Logger
	m      atomic.Pointer[metrics] // nil until instrument; read by the scheduler's callback
}

// newSchedPolicy builds the ledger and the scheduler for a node of the
// given capacity. cfg's Ledger, Executor and Log are filled in here.
func newSchedPolicy(name string, capacity resource.Vector, ctl Control, cfg sched.Config, log *slog.Logger) (*schedPolicy, error) {
	led, err := ledger.New(ledger.Config{
		Capacity:  capacity,
		SlotWidth: time.Second,
		// 16,384 slots (2.6 MB); longer curves are planned in part (see
		// sched's planSpan).
		Horizon: 4 * time.Hour,
		Start:   time.Now(),
	}, log)
	if err != nil {
		return nil, err
	}
	p := &schedPolicy{name: name, static: cfg.Static, led: led, log: log}
	cfg.Ledger, cfg.Log, cfg.OnAllocation = led, log, p.onAllocation
	if ctl != nil {
		cfg.Executor = schedControl{ctl}
	}
	if p.sch, err = sched.New(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// instrument makes the policy count into m (allocations by reason, queue
// waits, runs scored against their predictions).
func (p *schedPolicy) instrument(m *metrics) { p.m.Store(m) }

// onAllocation is the scheduler's OnAllocation: it runs under the
// scheduler's lock and only counts.
func (p *schedPolicy) onAllocation(reason string) {
	if m := p.m.Load(); m != nil {
		m.allocations.WithLabelValues(reason).Inc()
	}
}

func (p *schedPolicy) Name() string { return p.name }

func (p *schedPolicy) RequestsAreLimits() bool { return p.static }

func (p *schedPolicy) Enqueue(q Queued) error {
	if _, err := p.sch.Enqueue(schedTask(q)); err != nil && !errors.Is(err, sched.ErrExists) {
		return err
	}
	return nil
}

func (p *schedPolicy) Schedule(n int) []sched.Start {
	starts := p.sch.Schedule(n)
	if m := p.m.Load(); m != nil {
		for _, s := range starts {
			m.queueWait.Observe(s.Waited.Seconds())
		}
	}
	return starts
}

func (p *schedPolicy) Cancel(id string) bool { return p.sch.Cancel(id) }

func (p *schedPolicy) Restore(q Queued, started time.Time, limits task.Limits) error {
	if limits.IsZero() {
		limits = q.Requests
	}
	return p.sch.Restore(schedTask(q), started, limits, ledger.Curve{}, "")
}

func (p *schedPolicy) Started(string, Queued) {}

func (p *schedPolicy) Observe(id string, s resource.Sample) {
	p.observe(id, s, resource.Vector{})
}

func (p *schedPolicy) observe(id string, s resource.Sample, ahead resource.Vector) {
	used := s.Vector().Finite()
	if _, err := p.sch.Observe(id, sched.Observation{At: s.Time, Used: used, Ahead: ahead}); err != nil {
		p.log.Debug("monitor", "task", id, "err", err)
	}
}

func (p *schedPolicy) Finish(id string, r Run) sched.Result {
	res, err := p.sch.Finish(id, outcome(r))
	if err != nil {
		// Not running for the scheduler: never dispatched (a start that
		// failed before Schedule) or already finished. Nothing is held.
		p.log.Debug("scheduler finish", "task", id, "err", err)
		return res
	}
	if !res.Requeued && r.End.Outcome().State == task.Succeeded {
		p.m.Load().scoreRun(res.View, r.Task.Requests, r.Curve)
	}
	return res
}

func (p *schedPolicy) Describe(id string, t *api.Task) bool {
	v, ok := p.sch.Get(id)
	if ok {
		describe(v, t)
	}
	return ok
}

func (p *schedPolicy) Node(n *api.NodeStatus) {
	u := p.sch.Usage()
	n.Policy = p.name
	n.Capacity = api.Resources{CPUCores: u.Capacity[resource.CPU], MemoryMB: u.Capacity[resource.Memory]}
	n.Used = api.Resources{CPUCores: u.Committed[resource.CPU], MemoryMB: u.Committed[resource.Memory]}
	n.Reserved = u.Reserved
	n.Dims = map[string]api.DimUsage{}
	for dim := range resource.NumDims {
		n.Dims[apiDimKey(dim)] = api.DimUsage{Capacity: u.Capacity[dim], Committed: u.Committed[dim],
			SoftReserved: u.SoftNow[dim], SoftPeak: u.SoftPeak[dim], Used: u.Used[dim]}
	}
}

func (p *schedPolicy) Wake() <-chan struct{} { return p.led.Notify() }

func (p *schedPolicy) Run(ctx context.Context) { <-ctx.Done() }

func (p *schedPolicy) Counts() (int, int) { return p.sch.Counts() }

// schedControl is the scheduler's Executor over a Control.
type schedControl struct{ c Control }

var (
	_ sched.Executor    = schedControl{}
	_ sched.SoftLimiter = schedControl{}
	_ sched.Evictor     = schedControl{}
)

func (x schedControl) Update(id string, l task.Limits) error     { return x.c.Update(id, l) }
func (x schedControl) SetSoftMemory(id string, mb float64) error { return x.c.SetSoftMemory(id, mb) }
func (x schedControl) Evict(id string) error                     { return x.c.Evict(id) }

// fitPolicy starts tasks by their declared requests and holds each task's
// own limits, unchanged, until it ends; no OOM retry. The scheduler without
// predictions does exactly that (every curve is the declared requests,
// flat for sched.DefaultFallbackDuration, for planning); Static turns off
// live adjustment and admission by measured use.
type fitPolicy struct{ *schedPolicy }

// declared is a predictor that knows nothing: every task is sized by its
// declared requests.
type declared struct{}

func (declared) Predict(sched.Features) (ledger.Curve, string) { return ledger.Curve{}, "" }

func newFitPolicy(capacity resource.Vector, ctl Control, log *slog.Logger) (*fitPolicy, error) {
	p, err := newSchedPolicy(PolicyFit, capacity, ctl, sched.Config{Predictor: declared{}, Static: true, RetryLimit: -1, BurstWindow: -1}, log)
	if err != nil {
		return nil, err
	}
	return &fitPolicy{p}, nil
}

var (
	_ Policy = (*fitPolicy)(nil)
	_ Policy = (*predictPolicy)(nil)
)
