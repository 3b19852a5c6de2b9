package daemon

import (
	"context"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
)

// Scheduling policies (Config.Policy, serve --policy).
const (
	// PolicyPredict: tasks are planned, started and followed by their
	// predicted curves (internal/sched over internal/ledger, fed by
	// internal/predict). The default.
	PolicyPredict = "predict"
	// PolicyFit: declared requests, fixed at start — what a scheduler that
	// trusts its users' declarations does (Slurm with cons_tres); kept as
	// the baseline the predict policy is measured against.
	PolicyFit = "fit"
)

// Policy decides when queued tasks start and with what limits, and follows
// them while they run. It owns the queue: the daemon keeps none of its own,
// only its table of accepted tasks.
//
// A task is, for the policy, queued (from Enqueue until Schedule returns it
// or Cancel removes it) or running (from Schedule or Restore until
// Finish). The daemon calls Schedule and Cancel under its own lock, so a
// task is queued in the policy exactly when the daemon thinks it is; the
// policy never calls back into the daemon, so that order (daemon lock, then
// policy lock) is the only one. Implementations are safe for concurrent
// use.
type Policy interface {
	// Name is the policy's name in the node's status (serve --policy).
	Name() string
	// Enqueue queues a task: a new one, one found queued after a restart,
	// or one whose run was lost.
	Enqueue(q Queued) error
	// Schedule removes up to n queued tasks (n ≤ 0: no bound) that may
	// start now and returns them with their limits; each is running for
	// the policy from here until Finish.
	Schedule(n int) []sched.Start
	// Cancel removes a queued task; false when it is not queued.
	Cancel(id string) bool
	// Restore accounts for a task found running after a restart, holding
	// limits since started.
	Restore(q Queued, started time.Time, limits task.Limits) error
	// Started tells that a running task's processes are in their cgroup
	// (the soft memory limit and a live model can start).
	Started(id string, q Queued)
	// Observe feeds one sample of a running task; the policy may change
	// its limits (through the Control it was built with).
	Observe(id string, s resource.Sample)
	// Finish ends a running task's run: everything it holds returns to the
	// pool at once. The Result says whether the policy queued it again (an
	// OOM retry, an eviction, a lost run) and carries the task's last view.
	Finish(id string, run Run) sched.Result
	// Describe adds what the policy knows of a task (prediction,
	// reservation, allocations) to its API view; false if it knows none.
	Describe(id string, t *api.Task) bool
	// Node adds the policy's view of the node.
	Node(n *api.NodeStatus)
	// Wake signals when capacity returns or a reservation falls due; the
	// daemon schedules then, and on its own ticker.
	Wake() <-chan struct{}
	// Run does the policy's background work (training) until ctx ends.
	Run(ctx context.Context)
	// Counts reports how many tasks are queued and running.
	Counts() (queued, running int)
	// RequestsAreLimits reports whether a task's requests are its fixed
	// limits (fit): then one larger than the node can never start and is
	// refused at submit. Otherwise requests are a first guess that history
	// replaces, and one over the node starts at most at the node's size.
	RequestsAreLimits() bool
}

// instrumented is a Policy that counts into the daemon's metrics; New
// hands them over once, before Run.
type instrumented interface{ instrument(m *metrics) }

// Queued is what a policy is told of a queued task.
type Queued struct {
	ID        string
	UID       uint32 // the owner, for fair share between users
	Priority  int
	Signature string
	Code      string // the signature's code hash
	InputSize float64
	// Requests are the declared needs; Cap the user's own limits.
	Requests task.Limits
	Cap      task.Limits
}

// Run is how a task's run ended, for Finish.
type Run struct {
	Task  Queued
	End   task.End
	Curve []resource.Sample // its samples, oldest first
	// Lost asks for a requeue as it was: the run was lost and attempts
	// remain (the daemon bounds them, Config.MaxAttempts).
	Lost bool
}

// Control changes a running task's limits: the cgroups of real tasks, or a
// fake in tests. Implementations must not call into the Policy.
type Control interface {
	Update(id string, l task.Limits) error
	SetSoftMemory(id string, mb float64) error
	Kill(id string) error
	// Evict kills the task for the scheduler, first recording in its run
	// directory that it did, so that a daemon restarted before the run's
	// end is handled still requeues it (an eviction is not the task's
	// end, and its SIGKILL must not read as one).
	Evict(id string) error
}

// schedTask is q as the scheduler sees it.
func schedTask(q Queued) sched.Task {
	return sched.Task{
		ID: q.ID, Priority: q.Priority, User: q.UID,
		Features: sched.Features{Signature: q.Signature, Code: q.Code, InputSize: q.InputSize,
			Requests: resource.Vector{q.Requests.CPUCores, q.Requests.MemoryMB}},
		Cap: q.Cap,
	}
}

// outcome is what the scheduler needs to know of a run's end.
func outcome(r Run) sched.Outcome {
	return sched.Outcome{
		Succeeded: r.End.Outcome().State == task.Succeeded,
		OOMKilled: r.End.OOMKills > 0 && !r.End.Cancelled,
		Cancelled: r.End.Cancelled,
		Lost:      r.Lost,
		Detail:    r.End.Lost,
		Evicted:   r.End.Evicted && !r.End.Cancelled,
	}
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
		out[i] = api.Allocation{Time: a.At, Limits: api.Limits(a.Limits), Held: amounts(a.Held), SoftMemoryMB: a.SoftMemoryMB, SoftApplied: a.SoftApplied, Reason: a.Reason, Detail: a.Detail}
	}
	return out
}

// describe fills t from a scheduler view.
func describe(v sched.View, t *api.Task) {
	t.Prediction, t.Allocations, t.Retries = predictionOf(v), allocationsOf(v), v.Retries
	if v.State == sched.Running && v.Used != (resource.Vector{}) {
		u := amounts(v.Used)
		t.Usage = &u
	}
	if v.State == sched.Queued {
		r := &api.Reservation{Held: v.Reserved, Deferred: v.Deferred, Soft: amounts(v.ResPeak)}
		if v.Reserved {
			at := v.ResStart
			r.Start = &at
		}
		t.Reservation = r
	}
}
