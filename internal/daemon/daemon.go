package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
	"github.com/prescient-sched/prescient/internal/web"
)

// Daemon owns the accepted tasks, the policy that queues and sizes them,
// the runner that runs them (shims and cgroups), the profiler and the
// store. Create it with New, run it with Run, then Close it.
//
// Locks, in the only order they may nest: Daemon.mu, then the policy's own
// lock (the daemon calls Policy.Schedule and Policy.Cancel under mu; the
// policy never calls back), then the runner's (its Control is called under
// the policy's lock). job.smu (a running task's sampler) is never held with
// Daemon.mu, in either order; the policy may be called under it.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	st     *store.Store
	rt     runner
	signer *task.Signer
	pol    Policy
	start  time.Time

	capWarnings []string // what Capacity said of the operator's --cpu/--memory

	node atomic.Pointer[profile.NodeSample] // the node's last sample (sampleLoop)

	writes     chan *writeReq
	wake       chan struct{}
	stop       chan struct{} // closed when the internal loops must end
	stopOnce   sync.Once
	commitDone chan struct{} // closed when the committer has exited
	loops      sync.WaitGroup

	dashOnce sync.Once      // makes dash, the web dashboard (mountDashboard)
	dash     *web.Dashboard // nil without Config.Dashboard

	cmu   sync.Mutex     // guards conns
	conns map[uint32]int // open unix socket connections by uid

	lmu      sync.Mutex    // guards logEnded
	logEnded []string      // tasks ended since the retention loop last looked
	logWake  chan struct{} // wakes the retention loop (capacity 1)

	mu         sync.Mutex // guards the fields below and the job fields marked so
	jobs       map[string]*job
	running    int            // jobs dispatched and not yet ended
	perUser    map[uint32]int // jobs not ended, by owner
	subs       map[*subscriber]struct{}
	closed     bool
	retry      []*job    // ended runs whose final record could not be stored yet
	pauseUntil time.Time // no start before: the state directory was full
}

// New opens the state directory, the runner and the policy. It does not
// start anything; Run does.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	capacity, warnings, err := Capacity(cfg.CPU, cfg.MemoryMB)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg: cfg, log: cfg.Logger, start: time.Now(), capWarnings: warnings,
		writes: make(chan *writeReq, 8192), commitDone: make(chan struct{}), wake: make(chan struct{}, 1), stop: make(chan struct{}), logWake: make(chan struct{}, 1),
		jobs: map[string]*job{}, subs: map[*subscriber]struct{}{}, conns: map[uint32]int{}, perUser: map[uint32]int{},
	}
	// The state directory itself is made 0755 (with run/), so that users
	// can reach their own log files.
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "run"), 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := os.Chmod(filepath.Join(cfg.StateDir, "run"), 0o700); err != nil {
		return nil, err
	}
	// Only the daemon may create names in logs/ (see logdir.go); an older
	// daemon's directory is fixed here.
	if err := secureLogRoot(d.logRoot()); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if d.signer, err = task.NewSigner(task.SignerConfig{
		MaxEntries: cfg.Sign.MaxEntries, MaxCodeBytes: cfg.Sign.MaxCodeBytes, Timeout: cfg.Sign.Timeout,
		EnvAllow: cfg.EnvAllow, EnvDeny: cfg.EnvDeny, Logger: cfg.Logger,
	}); err != nil {
		return nil, err
	}
	rt := cfg.runner
	if rt == nil {
		srt, err := newShimRunner(cfg)
		if err != nil {
			return nil, err
		}
		rt = srt
	}
	d.rt = rt
	if d.st, err = store.Open(cfg.StateDir, store.WithLogger(cfg.Logger), store.WithRegisterer(cfg.Registerer)); err != nil {
		d.rt.Close()
		return nil, err
	}
	iops, ioFrom := cfg.IOCapacity, "--io-capacity"
	if iops == 0 {
		iops, ioFrom = nodeIOPS(cfg.StateDir)
	}
	mbps, netFrom := cfg.NetCapacity, "--net-capacity"
	if mbps == 0 {
		mbps, netFrom = nodeNetMbps("/sys/class/net")
	}
	cfg.Logger.Info("node io and network capacity", "iops", iops, "iops_from", ioFrom, "net_mbps", mbps, "net_from", netFrom)
	capv := resource.Vector{capacity.CPUCores, capacity.MemoryMB, iops, mbps}
	switch cfg.Policy {
	case PolicyFit:
		d.pol, err = newFitPolicy(capv, d.rt, cfg.Logger)
	default:
		capv[resource.CPU] *= cfg.CPUOvercommit
		d.pol, err = newPredictPolicy(capv, d.rt, d.st, cfg.StateDir, cfg.Interval, cfg.Sched, cfg.Logger)
	}
	if err != nil {
		_ = d.st.Close()
		d.rt.Close()
		return nil, err
	}
	d.m = newMetrics(cfg.Registerer, func() float64 {
		q, _ := d.pol.Counts()
		return float64(q)
	}, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return float64(d.running)
	})
	cfg.Registerer.MustRegister(newNodeCollector(d.Node))
	if ip, ok := d.pol.(instrumented); ok {
		ip.instrument(d.m)
	}
	return d, nil
}

// Close stops the internal loops (if Run did not) and closes the store
// and the runner. Running tasks go on under their shims; the next daemon
// on this state directory picks them up. Close is idempotent.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	js := make([]*job, 0, len(d.jobs))
	for _, j := range d.jobs {
		js = append(js, j)
	}
	d.mu.Unlock()
	d.stopLoops()
	d.loops.Wait()
	for _, j := range js {
		j.closeSampler()
	}
	err := d.st.Close()
	d.rt.Close()
	return err
}

func (d *Daemon) stopLoops() { d.stopOnce.Do(func() { close(d.stop) }) }

// go runs fn as one of the daemon's tracked goroutines: Close waits for it.
func (d *Daemon) goTracked(fn func()) {
	d.loops.Add(1)
	go func() {
		defer d.loops.Done()
		fn()
	}()
}

func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run recovers the state left by an earlier daemon, then serves until ctx
// is cancelled. Tasks keep running after Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	d.goTracked(d.committer)
	if err := d.recover(); err != nil {
		d.stopLoops()
		return fmt.Errorf("recover: %w", err)
	}
	d.goTracked(d.dispatcher)
	d.goTracked(d.sampleLoop)
	if d.cfg.LogTotalBytes >= 0 {
		d.goTracked(d.retentionLoop)
	}
	d.goTracked(d.trimLoop)
	pctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.goTracked(func() { d.pol.Run(pctx) })
	d.goTracked(func() {
		<-d.stop
		cancel()
	})
	err := d.serve(ctx)
	d.stopLoops()
	d.loops.Wait()
	return err
}

// job is a task the daemon has accepted and not yet ended.
type job struct {
	id string

	// Guarded by Daemon.mu:
	rec       *task.Record
	meta      meta
	phase     phase
	cancelled bool      // the user asked to cancel
	ending    bool      // the end path has it (see end)
	run       runHandle // the run being followed (dispatched or later)
	limits    task.Limits
	held      *sched.Start     // a start the policy chose while the job was requeuing
	logDrops  *api.LogsDropped // what log rotation dropped in the last run
	freeRetry bool             // the next lost run does not count as an attempt

	smu       sync.Mutex // guards sampler, sampledAt and sampled; never held with Daemon.mu
	sampler   sampler
	sampledAt time.Time // the sampler's last reading (the priming one first)
	sampled   bool      // a sample of this run was taken (not only the priming one)
	cpuSecs   float64   // the run's cgroup's CPU-seconds at its latest reading (Sample.CPUSeconds)
	cpuThr    float64   // and its CFS throttled seconds (Sample.CPUThrottledSeconds)
}

// phase is where a job is in the daemon.
type phase uint8

const (
	phaseQueued     phase = iota + 1 // in the policy's queue
	phaseDispatched                  // chosen to start: its shim is being started
	phaseRunning                     // its processes run (or a shim follows them)
	phaseEnding                      // its run is over; the end path has it
	phaseRequeuing                   // queued again in the policy; the daemon is still recording it
)

// queued is j as the policy is told of it. Caller holds d.mu or owns j.
func (j *job) queued() Queued {
	return Queued{
		ID: j.id, UID: j.meta.UID, Priority: j.meta.Priority, Signature: j.rec.Signature, Code: j.meta.Code,
		InputSize: float64(j.rec.InputBytes), Requests: j.meta.Requests, Cap: j.rec.Spec.Limits,
	}
}

func (j *job) closeSampler() {
	j.smu.Lock()
	defer j.smu.Unlock()
	if j.sampler != nil {
		_ = j.sampler.Close()
		j.sampler = nil
	}
}

// errStopping is returned to writers once the daemon is stopping.
var errStopping = errors.New("daemon: shutting down")

// The runner's sampler: a profile.Sampler on real cgroups.
type sampler interface {
	Sample(now time.Time) resource.Sample
	Close() error
}

var _ sampler = (*profile.Sampler)(nil)

// Capacity is what tasks may reserve on this node, and warnings about how
// the operator set it.
func (d *Daemon) Capacity() (api.Resources, []string) { return d.capacity(), d.capWarnings }
