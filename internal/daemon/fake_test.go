package daemon

import (
	"context"
	"errors"
	"runtime"

	"sync"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
	"go.uber.org/goleak"
)

// fakeRunner runs nothing: each Start makes a fakeRun that the test drives
// (start, exit, die). It keeps to what a real runner can do: a run ends
// once, a cancelled run ends killed, Release and Forget are idempotent.
type fakeRunner struct {
	mu       sync.Mutex
	runs     map[string]*fakeRun // the newest run of each task
	starts   map[string]int
	left     map[string]leftover // what Inspect reports (recovery tests)
	startErr error               // Start fails with it
	released map[string]int
	autoRun  bool // Start starts the run at once (else the test calls begin)
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{runs: map[string]*fakeRun{}, starts: map[string]int{}, left: map[string]leftover{}, released: map[string]int{}}
}

type fakeRun struct {
	id                    string
	started, exited, done chan struct{}
	startedAt             time.Time
	end                   task.End
	limits                task.Limits // what the run was started with
	once                  sync.Once
	cancelled             bool
	mu                    sync.Mutex
}

func (r *fakeRun) Started() <-chan struct{} { return r.started }
func (r *fakeRun) StartedAt() time.Time     { return r.startedAt }
func (r *fakeRun) Exited() <-chan struct{}  { return r.exited }
func (r *fakeRun) Done() <-chan struct{}    { return r.done }
func (r *fakeRun) Ack()                     {}
func (r *fakeRun) End() task.End            { return r.end }
func (r *fakeRun) Close()                   {}

// Cancel kills the run as a shim would: it ends killed.
func (r *fakeRun) Cancel() {
	r.mu.Lock()
	r.cancelled = true
	r.mu.Unlock()
	started := false
	select {
	case <-r.started:
		started = true
	default:
	}
	if started {
		r.finish(task.End{Started: true, StartedAt: r.startedAt, Code: -1, Signal: "SIGKILL", Killed: true, Cancelled: true})
	} else {
		r.finish(task.End{StartError: "cancelled before it started", Killed: true, Cancelled: true})
	}
}

// begin marks the run's processes started.
func (r *fakeRun) begin() {
	r.startedAt = time.Now()
	close(r.started)
}

// finish ends the run (once).
func (r *fakeRun) finish(e task.End) {
	r.once.Do(func() {
		if e.FinishedAt.IsZero() {
			e.FinishedAt = time.Now()
		}
		r.end = e
		close(r.exited)
		close(r.done)
	})
}

func (f *fakeRunner) Start(req shimRequest) (runHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	r := &fakeRun{id: req.ID, limits: req.Limits, started: make(chan struct{}), exited: make(chan struct{}), done: make(chan struct{})}
	f.runs[req.ID] = r
	f.starts[req.ID]++
	if f.autoRun {
		r.begin()
	}
	return r, nil
}

func (f *fakeRunner) run(id string) *fakeRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[id]
}

func (f *fakeRunner) startCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts[id]
}

func (f *fakeRunner) Inspect(id string) leftover {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.left[id]
}

func (f *fakeRunner) Reattach(id string) runHandle {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &fakeRun{id: id, started: make(chan struct{}), exited: make(chan struct{}), done: make(chan struct{})}
	f.runs[id] = r
	return r
}

func (f *fakeRunner) Adopt(id string, started time.Time) (runHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &fakeRun{id: id, started: make(chan struct{}), exited: make(chan struct{}), done: make(chan struct{}), startedAt: started}
	close(r.started)
	f.runs[id] = r
	return r, nil
}

func (f *fakeRunner) Sampler(id string) (sampler, error) { return fakeSampler{}, nil }

func (f *fakeRunner) Release(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released[id]++
	return nil
}

func (f *fakeRunner) Forget(string) error                 { return nil }
func (f *fakeRunner) Close()                              {}
func (f *fakeRunner) Update(string, task.Limits) error    { return nil }
func (f *fakeRunner) SetSoftMemory(string, float64) error { return nil }
func (f *fakeRunner) Kill(id string) error                { return nil }
func (f *fakeRunner) Evict(id string) error               { return nil }
func (fakeSampler) Sample(now time.Time) resource.Sample  { return resource.Sample{Time: now} }
func (fakeSampler) Close() error                          { return nil }

type fakeSampler struct{}

// countingPolicy wraps a Policy and checks the contract the daemon owes
// it: every task it runs (Schedule, Restore) is finished exactly once per
// run, and nothing it does not run is finished.
type countingPolicy struct {
	Policy
	t        *testing.T
	mu       sync.Mutex
	running  map[string]bool
	finishes map[string]int
}

func (p *countingPolicy) Schedule(n int) []sched.Start {
	st := p.Policy.Schedule(n)
	p.mu.Lock()
	for _, s := range st {
		if p.running[s.ID] {
			p.t.Errorf("policy: %s scheduled while running", s.ID)
		}
		p.running[s.ID] = true
	}
	p.mu.Unlock()
	return st
}

func (p *countingPolicy) Restore(q Queued, at time.Time, l task.Limits) error {
	p.mu.Lock()
	p.running[q.ID] = true
	p.mu.Unlock()
	return p.Policy.Restore(q, at, l)
}

func (p *countingPolicy) Finish(id string, r Run) sched.Result {
	p.mu.Lock()
	if !p.running[id] {
		p.t.Errorf("policy: %s finished while not running", id)
	}
	p.running[id] = false
	p.finishes[id]++
	p.mu.Unlock()
	return p.Policy.Finish(id, r)
}

// fixture is a daemon on a fake runner, with a counting fit policy.
type fixture struct {
	t   *testing.T
	d   *Daemon
	rt  *fakeRunner
	pol *countingPolicy
	who identity
}

func newFixture(t *testing.T, rt *fakeRunner, state string, cfg func(*Config)) *fixture {
	t.Helper()
	if state == "" {
		state = t.TempDir()
	}
	c := Config{StateDir: state, Policy: PolicyFit, ShimCommand: []string{"/bin/false"}, runner: rt, MaxAttempts: 3, CPU: 1, MemoryMB: 1000}
	if cfg != nil {
		cfg(&c)
	}
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	cp := &countingPolicy{Policy: d.pol, t: t, running: map[string]bool{}, finishes: map[string]int{}}
	d.pol = cp
	leaks := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		// Every goroutine the daemon started is joined by Close.
		goleak.VerifyNone(t, leaks)
	})
	return &fixture{t: t, d: d, rt: rt, pol: cp, who: identity{UID: 0}}
}

func (f *fixture) submit(argv ...string) string {
	f.t.Helper()
	t, err := f.d.Submit(f.who, &api.SubmitRequest{
		Spec:     api.Spec{Argv: argv, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/tmp"},
		Requests: &api.Limits{CPUCores: 0.5, MemoryMB: 100},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return t.ID
}

// runOf waits for the fake run of id (its shim started).
func (f *fixture) runOf(id string) *fakeRun {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := f.rt.run(id); r != nil {
			return r
		}
		time.Sleep(time.Millisecond)
	}
	f.t.Fatalf("task %s never started", id)
	return nil
}

// state waits until id is in state s and returns the task.
func (f *fixture) waitFor(id string, s string) *api.Task {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last *api.Task
	for time.Now().Before(deadline) {
		t, err := f.d.Get(f.who, id)
		if err != nil {
			f.t.Fatal(err)
		}
		last = t
		if t.State == s && (api.TerminalState(s) == !f.d.active(id)) {
			return t
		}
		time.Sleep(time.Millisecond)
	}
	f.t.Fatalf("task %s: state %s (%s), want %s", id, last.State, last.Error, s)
	return nil
}

// idle checks the node holds nothing: no task queued or running, nothing
// committed.
func (f *fixture) idle() {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := f.d.Node()
		if n.Running == 0 && n.Queued == 0 && n.Used.CPUCores == 0 && n.Used.MemoryMB == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("node not idle: %+v", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) finishes(id string) int {
	f.pol.mu.Lock()
	defer f.pol.mu.Unlock()
	return f.pol.finishes[id]
}

// waitStarts waits until id's run has been started n times.
func (f *fixture) waitStarts(id string, n int) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.rt.startCount(id) < n {
		if time.Now().After(deadline) {
			tk, _ := f.d.Get(f.who, id)
			f.t.Fatalf("task %s started %d times, want %d: %+v; node %+v", id, f.rt.startCount(id), n, tk, f.d.Node())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCapacityHonoured: an explicit --cpu/--memory is what tasks get, even
// into the system reserve (with a warning); more than the machine is
// refused.
func TestCapacityHonoured(t *testing.T) {
	cores := float64(runtime.NumCPU())
	c, warn, err := Capacity(cores, 0)
	if err != nil || c.CPUCores != cores || len(warn) != 1 {
		t.Errorf("Capacity(%g) = %+v, %v, %v; want all the cores and a warning", cores, c, warn, err)
	}
	if c, warn, err := Capacity(0.5, 100); err != nil || c.CPUCores != 0.5 || c.MemoryMB != 100 || len(warn) != 0 {
		t.Errorf("Capacity(0.5, 100) = %+v, %v, %v", c, warn, err)
	}
	if _, _, err := Capacity(cores+1, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("Capacity above the machine: %v, want ErrConfig", err)
	}
}
