package daemon

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// auxTable is the store side table holding each task's meta.
const auxTable = "daemon"

// meta is the daemon's durable bookkeeping of a task, kept beside its
// record (store.Tasks.PutBatchAux) in the same transaction.
type meta struct {
	UID      uint32      `json:"uid"`
	GID      uint32      `json:"gid"`
	Groups   []uint32    `json:"groups,omitempty"`
	SetCred  bool        `json:"set_cred"`
	Attempt  int         `json:"attempt"`
	Requests task.Limits `json:"requests"`
	// Scheduler bookkeeping (PolicyPredict).
	Code        string           `json:"code,omitempty"` // signature's code hash, for the predictor
	Priority    int              `json:"priority,omitempty"`
	Retries     int              `json:"retries,omitempty"`
	Prediction  *api.Prediction  `json:"prediction,omitempty"`
	Allocations []api.Allocation `json:"allocations,omitempty"`
}

// job is a task the daemon has accepted and not yet finished.
type job struct {
	rec  *task.Record // guarded by Daemon.mu once the job is shared
	meta meta
	elem *list.Element // in Daemon.queue while queued

	// Guarded by Daemon.mu:
	softMB    float64 // soft memory limit the scheduler intends at start
	started   bool    // dispatched to a shim (or re-attached)
	shimPID   int
	cancelled bool
	finishing bool

	smu     sync.Mutex // guards sampler and sess
	sampler *profile.Sampler
	sess    *predict.Session // the predictor's live session (PolicyPredict)
}

// Daemon owns the queue, the shims that run tasks, the profiler and the
// store. Create it with New, run it with Run, then Close it.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	st     *store.Store
	ex     *executor.Executor
	net    *profile.NetMonitor
	signer *task.Signer
	adm    Admitter // nil under PolicyPredict
	cap    api.Resources

	// The predictive scheduler (PolicyPredict); nil otherwise. sch has its
	// own lock: never call it while holding mu.
	sch          *sched.Scheduler
	led          *ledger.Ledger
	eng          *predict.Engine
	newRuns      atomic.Int64 // finished runs since the last training
	modelVersion atomic.Int64 // written by the trainer (and Run before it starts); read by Node
	// handoff serialises the two places a task passes between the
	// scheduler and the daemon's queue — dispatchSched (scheduler →
	// running) and finishSched (running → requeued) — so neither sees the
	// other's half-done move. Order: handoff, then sch, then mu.
	handoff sync.Mutex
	pmu     sync.Mutex // guards procs
	procs   map[string]*executor.Process
	start   time.Time

	writes     chan *writeReq
	wake       chan struct{}
	stop       chan struct{} // closed when the internal loops must end
	stopOnce   sync.Once
	commitDone chan struct{} // closed when the committer has exited
	loops      sync.WaitGroup

	mu      sync.Mutex // guards the fields below and job fields marked so
	queue   *list.List // of *job, submission order
	jobs    map[string]*job
	running int
	subs    map[*subscriber]struct{}
	closed  bool
}

// New opens the state directory and the executor. It does not start
// anything; Run does.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	capacity, err := Capacity(cfg.CPU, cfg.MemoryMB)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg: cfg, log: cfg.Logger, cap: capacity, start: time.Now(),
		writes: make(chan *writeReq, 8192), commitDone: make(chan struct{}), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		queue: list.New(), jobs: map[string]*job{}, subs: map[*subscriber]struct{}{},
	}
	d.adm = cfg.Admitter
	if d.adm == nil && cfg.Policy == PolicyFit {
		d.adm = NewFitAdmitter(capacity)
	}
	if d.adm == nil {
		if err := d.setupSched(); err != nil {
			return nil, err
		}
	}
	for _, sub := range []string{"run", "logs"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(cfg.StateDir, "run"), 0o700); err != nil {
		return nil, err
	}
	if d.signer, err = task.NewSigner(task.SignerConfig{Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	if d.ex, err = executor.New(executor.Config{Root: cfg.CgroupRoot, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	if blkio := d.ex.V1Root("blkio"); blkio != "" {
		// v1 counts block IO per cgroup only once blk-throttle is set up for the disk.
		if err := profile.EnableV1IOAccounting(blkio, cfg.StateDir); err != nil {
			d.log.Info("block IO accounting unavailable", "err", err)
		}
	}
	if root := d.ex.V2Root(); root != "" {
		if d.net, err = profile.OpenNetMonitor(root, cfg.Logger); err != nil {
			d.log.Info("network profiling unavailable", "err", err)
			d.net = nil
		}
	}
	if d.st, err = store.Open(cfg.StateDir, store.WithLogger(cfg.Logger), store.WithRegisterer(cfg.Registerer)); err != nil {
		d.closeExec()
		return nil, err
	}
	d.m = newMetrics(cfg.Registerer, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return float64(d.queue.Len())
	}, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return float64(d.running)
	})
	return d, nil
}

func (d *Daemon) closeExec() {
	if d.net != nil {
		_ = d.net.Close()
	}
	if err := d.ex.Close(); err != nil && !errors.Is(err, executor.ErrBusy) {
		d.log.Warn("close executor", "err", err)
	}
}

// Close stops the internal loops (if Run did not) and closes the store
// and the executor. Running tasks go on under their shims; the next daemon
// on this state directory picks them up. Close is idempotent.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stopLoops()
	d.loops.Wait()
	d.mu.Lock()
	for _, j := range d.jobs {
		j.smu.Lock()
		if j.sampler != nil {
			_ = j.sampler.Close()
			j.sampler = nil
		}
		j.smu.Unlock()
	}
	d.mu.Unlock()
	err := d.st.Close()
	d.closeExec()
	return err
}

func (d *Daemon) stopLoops() { d.stopOnce.Do(func() { close(d.stop) }) }

// --- durable writes: group commit -----------------------------------------

// writeReq is records (and optional metas) to commit in one batch.
type writeReq struct {
	recs []*task.Record
	aux  [][]byte
	done chan error
}

// commit stores recs durably: it returns after the fsync of the batch
// they were part of.
func (d *Daemon) commit(recs []*task.Record, aux [][]byte) error {
	w := &writeReq{recs: recs, aux: aux, done: make(chan error, 1)}
	select {
	case d.writes <- w:
	case <-d.stop:
		return errStopping
	}
	select {
	case err := <-w.done:
		return err
	case <-d.commitDone:
		select {
		case err := <-w.done:
			return err
		default:
			return errStopping
		}
	}
}

var errStopping = errors.New("daemon: shutting down")

// committer batches concurrent writes into one bbolt transaction: while
// one fsync runs, the next requests queue up and go together.
func (d *Daemon) committer() {
	defer d.loops.Done()
	defer close(d.commitDone)
	const maxBatch = 4096
	for {
		var first *writeReq
		select {
		case first = <-d.writes:
		case <-d.stop:
			// Commit what was handed over before the stop.
			for {
				select {
				case w := <-d.writes:
					w.done <- d.st.Tasks.PutBatchAux(auxTable, w.recs, w.aux)
				default:
					return
				}
			}
		}
		batch := []*writeReq{first}
		n := len(first.recs)
	drain:
		for n < maxBatch {
			select {
			case w := <-d.writes:
				batch = append(batch, w)
				n += len(w.recs)
			default:
				break drain
			}
		}
		recs := make([]*task.Record, 0, n)
		aux := make([][]byte, 0, n)
		for _, w := range batch {
			recs = append(recs, w.recs...)
			for i := range w.recs {
				var a []byte
				if i < len(w.aux) {
					a = w.aux[i]
				}
				aux = append(aux, a)
			}
		}
		start := time.Now()
		err := d.st.Tasks.PutBatchAux(auxTable, recs, aux)
		d.m.commitSecs.Observe(time.Since(start).Seconds())
		d.m.batchSize.Observe(float64(len(recs)))
		if err != nil && len(batch) > 1 {
			// One bad record must not fail the others: retry one by one.
			for _, w := range batch {
				w.done <- d.st.Tasks.PutBatchAux(auxTable, w.recs, w.aux)
			}
			continue
		}
		for _, w := range batch {
			w.done <- err
		}
	}
}

func encodeMeta(m meta) []byte {
	b, _ := json.Marshal(m) // plain fields: cannot fail
	return b
}

func decodeMeta(b []byte) (meta, bool) {
	var m meta
	if b == nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	return m, true
}

// cloneRec copies a record for the committer and for readers, so that
// later changes to the job's record do not race with them.
func cloneRec(r *task.Record) *task.Record {
	c := *r
	return &c
}

func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}
