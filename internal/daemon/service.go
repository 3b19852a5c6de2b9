package daemon

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// identity is who is calling: from SO_PEERCRED on the unix socket, or the
// owner of the token file over TCP.
type identity struct {
	UID, GID uint32
}

func (id identity) root() bool { return id.UID == 0 }

func (id identity) owns(m meta) bool { return id.root() || m.UID == id.UID }

// Submit validates, signs and durably queues a task for who. The returned
// error is an *api.Error.
func (d *Daemon) Submit(who identity, req *api.SubmitRequest) (*api.Task, error) {
	rejected := func(status int, code, msg string) (*api.Task, error) {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: status, Code: code, Message: msg}
	}
	if q, _ := d.pol.Counts(); q >= d.cfg.MaxQueue {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeQueueFull, Limit: "max_queue",
			Message: fmt.Sprintf("the queue holds %d tasks, the most allowed (limit max_queue)", d.cfg.MaxQueue)}
	}
	if req.Priority > d.cfg.MaxUserPriority && !d.privileged(who) {
		return rejected(http.StatusForbidden, api.CodeForbidden, fmt.Sprintf(
			"priority %d is above %d, the highest a user may ask for (serve --max-user-priority); root and members of the --priority-group may", req.Priority, d.cfg.MaxUserPriority))
	}
	spec := task.Spec{
		Argv: req.Spec.Argv, Inputs: req.Spec.Inputs, Env: req.Spec.Env, Dir: req.Spec.Dir,
		Limits: task.Limits(req.Spec.Limits),
	}
	if err := spec.Limits.Validate(); err != nil {
		return rejected(http.StatusBadRequest, api.CodeBadRequest, err.Error())
	}
	if spec.Limits.MemoryHoldMB != 0 || req.Requests != nil && req.Requests.MemoryHoldMB != 0 {
		return rejected(http.StatusBadRequest, api.CodeBadRequest, "memory_hold_mb is set by the scheduler, not by a request")
	}
	if err := startable(spec.Limits); err != nil {
		return rejected(http.StatusBadRequest, api.CodeBadRequest, err.Error())
	}
	// One user's tasks not yet ended are bounded: a slot is taken now and
	// given back if the task is not accepted.
	if !d.takeSlot(who) {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeQueueFull, Limit: "max_queued_per_user",
			Message: fmt.Sprintf("you have %d tasks queued or running, the most one user may (limit max_queued_per_user)", d.cfg.MaxQueuedPerUser)}
	}
	accepted := false
	defer func() {
		if !accepted {
			d.dropSlot(who.UID)
		}
	}()
	var groups []uint32
	if !who.root() {
		groups = supplementaryGroups(who.UID, who.GID)
	}
	sig, err := d.sign(who, groups, spec)
	if err != nil {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, signError(err)
	}
	reqs := d.requestsFor(spec.Limits, req.Requests)
	capacity := d.capacity()
	if !fitsCapacity(capacity, reqs) && d.pol.RequestsAreLimits() {
		return rejected(http.StatusBadRequest, api.CodeBadRequest,
			fmt.Sprintf("requests of %.2f cores and %.0f MB can never fit the node's capacity of %.2f cores and %.0f MB",
				reqs.CPUCores, reqs.MemoryMB, capacity.CPUCores, capacity.MemoryMB))
	}
	id := store.NewID()
	rec := &task.Record{
		ID: id, Signature: sig.Hash, Spec: spec, State: task.Queued, SubmittedAt: time.Now(),
		InputBytes: sig.InputBytes, Limits: spec.Limits, LogDir: filepath.Join(d.cfg.StateDir, "logs", id),
	}
	m := meta{UID: who.UID, GID: who.GID, SetCred: !who.root(), Requests: reqs, Code: sig.Code, Priority: req.Priority}
	if m.SetCred {
		m.Groups = groups
	}
	if err := d.commit([]*task.Record{cloneRec(rec)}, []meta{m}); err != nil {
		d.m.submitted.WithLabelValues("failed").Inc()
		if noSpace(err) {
			return nil, &api.Error{Status: http.StatusInsufficientStorage, Code: api.CodeNoSpace,
				Message: fmt.Sprintf("the state directory %s is full: the task was not accepted (%v)", d.cfg.StateDir, err)}
		}
		return nil, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, Message: "store the task: " + err.Error()}
	}
	d.m.submitted.WithLabelValues("accepted").Inc()
	accepted = true
	j := &job{id: id, rec: rec, meta: m, phase: phaseQueued}
	d.mu.Lock()
	d.jobs[id] = j
	err = d.pol.Enqueue(j.queued())
	t := d.viewLocked(j)
	d.mu.Unlock()
	if err != nil {
		// The task is stored as queued: the next start queues it again.
		d.log.Error("enqueue", "task", id, "err", err)
	}
	d.publish(t)
	d.poke()
	return &t, nil
}

// privileged says whether who may ask for priorities above
// Config.MaxUserPriority: root and members of Config.PriorityGroup.
func (d *Daemon) privileged(who identity) bool {
	if who.root() {
		return true
	}
	if d.cfg.PriorityGroup == "" {
		return false
	}
	gid, err := lookupGroup(d.cfg.PriorityGroup)
	if err != nil {
		return false
	}
	return slices.Contains(supplementaryGroups(who.UID, who.GID), uint32(gid))
}

// takeSlot counts a new task of who's against Config.MaxQueuedPerUser.
func (d *Daemon) takeSlot(who identity) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !who.root() && d.perUser[who.UID] >= d.cfg.MaxQueuedPerUser {
		return false
	}
	d.perUser[who.UID]++
	return true
}

// dropSlot gives a task's slot back. Caller must not hold d.mu.
func (d *Daemon) dropSlot(uid uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropSlotLocked(uid)
}

func (d *Daemon) dropSlotLocked(uid uint32) {
	if d.perUser[uid]--; d.perUser[uid] <= 0 {
		delete(d.perUser, uid)
	}
}

// The smallest limits a task can start under. CPU: the kernel's CFS
// bandwidth minimum (1 ms per 100 ms period). Memory: below a few MiB no
// program gets as far as its first instruction (the dynamic loader and
// libc alone map more), so such a limit could only OOM-kill it at start.
const (
	minCPULimit    = 0.01
	minMemoryLimit = 4
)

// startable refuses limits no task could start under, so that they are
// refused at submit rather than failing the task later.
func startable(l task.Limits) error {
	if l.CPUCores > 0 && l.CPUCores < minCPULimit {
		return fmt.Errorf("cpu limit %g cores is below the kernel minimum of %g (1 ms per 100 ms period)", l.CPUCores, minCPULimit)
	}
	if l.MemoryMB > 0 && l.MemoryMB < minMemoryLimit {
		return fmt.Errorf("memory limit %g MB is below %d MB, under which no program can start", l.MemoryMB, minMemoryLimit)
	}
	if l.IOPS > 0 && l.IOPS < 1 {
		return fmt.Errorf("iops limit %g is below the minimum of 1", l.IOPS)
	}
	return nil
}

// requestsFor is what a task is sized by until its history says better:
// per dimension (CPU, memory) its declared request, else its cap, else the
// default request.
func (d *Daemon) requestsFor(caps task.Limits, explicit *api.Limits) task.Limits {
	r := task.Limits{CPUCores: d.cfg.DefaultRequest.CPUCores, MemoryMB: d.cfg.DefaultRequest.MemoryMB}
	var e task.Limits
	if explicit != nil {
		e = task.Limits(*explicit)
	}
	switch {
	case e.CPUCores > 0:
		r.CPUCores = e.CPUCores
	case caps.CPUCores > 0:
		r.CPUCores = caps.CPUCores
	}
	switch {
	case e.MemoryMB > 0:
		r.MemoryMB = e.MemoryMB
	case caps.MemoryMB > 0:
		r.MemoryMB = caps.MemoryMB
	}
	return r
}

// capacity is what tasks may reserve.
func (d *Daemon) capacity() api.Resources {
	var n api.NodeStatus
	d.pol.Node(&n)
	return n.Capacity
}

// fitsCapacity reports whether req could ever fit.
func fitsCapacity(capacity api.Resources, req task.Limits) bool {
	return req.CPUCores <= capacity.CPUCores+1e-9 && req.MemoryMB <= capacity.MemoryMB+1e-9
}

// Cancel cancels a queued or running task of who's.
func (d *Daemon) Cancel(who identity, id string) (*api.Task, error) {
	d.mu.Lock()
	j, ok := d.jobs[id]
	if ok && !who.owns(j.meta) {
		ok = false
	}
	if !ok || j.phase == phaseEnding {
		d.mu.Unlock()
		t, err := d.Get(who, id)
		if err != nil {
			return nil, err
		}
		if !api.TerminalState(t.State) {
			return t, nil // ending already
		}
		return nil, &api.Error{Status: http.StatusConflict, Code: api.CodeConflict,
			Message: fmt.Sprintf("task %s already ended (%s)", id, t.State)}
	}
	j.cancelled = true
	t := d.viewLocked(j)
	if j.phase == phaseQueued && d.pol.Cancel(id) {
		j.phase = phaseEnding
		d.mu.Unlock()
		d.end(j, task.End{StartError: "cancelled before it started", Cancelled: true, FinishedAt: time.Now()})
		t, _ := d.Get(who, id)
		return t, nil
	}
	h := j.run
	d.mu.Unlock()
	if h != nil {
		h.Cancel() // the shim kills the task's whole cgroup and records it as killed
	}
	// A dispatched job without a handle yet is cancelled by its starter,
	// which checks j.cancelled once the handle exists.
	return &t, nil
}

// Get returns a task of who's.
func (d *Daemon) Get(who identity, id string) (*api.Task, error) {
	d.mu.Lock()
	if j, ok := d.jobs[id]; ok && who.owns(j.meta) {
		t := d.viewLocked(j)
		d.mu.Unlock()
		return &t, nil
	}
	d.mu.Unlock()
	rec, err := d.st.Tasks.Get(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(id)
		}
		return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	aux, err := d.st.Tasks.Aux(auxTable, id)
	if err != nil {
		return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	m, _ := decodeMeta(aux[0]) // a record written without the daemon belongs to root
	if !who.owns(m) {
		return nil, notFound(id)
	}
	t := toAPI(rec, m)
	return &t, nil
}

func notFound(id string) *api.Error {
	return &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: fmt.Sprintf("no task %q", id)}
}

// List returns who's tasks matching o, newest first.
func (d *Daemon) List(who identity, o api.ListOptions) ([]api.Task, error) {
	f := store.Filter{State: task.State(o.State), Signature: o.Signature}
	if who.root() {
		f.Limit = o.Limit
	}
	recs, err := d.st.Tasks.List(f)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: err.Error()}
		}
		return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	aux, err := d.st.Tasks.Aux(auxTable, ids...)
	if err != nil {
		return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	out := make([]api.Task, 0, len(recs))
	for i, r := range recs {
		m, _ := decodeMeta(aux[i])
		if !who.owns(m) {
			continue
		}
		out = append(out, toAPI(r, m))
		if o.Limit > 0 && len(out) == o.Limit {
			break
		}
	}
	return out, nil
}

// Curve returns a task's samples.
func (d *Daemon) Curve(who identity, id string) ([]api.Point, error) {
	if _, err := d.Get(who, id); err != nil {
		return nil, err
	}
	ss, err := d.st.Samples.Curve(id)
	if err != nil {
		return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	out := make([]api.Point, 0, len(ss))
	for _, s := range ss {
		out = append(out, pointOf(s))
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// Node reports capacity, use and the queue.
func (d *Daemon) Node() api.NodeStatus {
	var n api.NodeStatus
	d.pol.Node(&n)
	n.Queued, _ = d.pol.Counts()
	d.mu.Lock()
	n.Running = d.running
	d.mu.Unlock()
	n.MaxRunning, n.MaxQueue = d.cfg.MaxRunning, d.cfg.MaxQueue
	n.PID, n.StartedAt = os.Getpid(), d.start
	if s := d.node.Load(); s != nil {
		n.Load = nodeLoadAPI(*s)
	}
	return n
}

// viewLocked is j's API view with what the policy knows. Caller holds d.mu.
func (d *Daemon) viewLocked(j *job) api.Task {
	t := toAPI(j.rec, j.meta)
	d.pol.Describe(j.id, &t)
	return t
}

// toAPI converts a record and its meta to the API form.
func toAPI(r *task.Record, m meta) api.Task {
	t := api.Task{
		ID: r.ID, Signature: r.Signature, State: string(r.State), ExitCode: r.ExitCode, Signal: r.Signal,
		OOMKilled: r.OOMKilled, Error: r.Error, ErrorCode: string(r.ErrorKind),
		Spec:   api.Spec{Argv: r.Spec.Argv, Inputs: r.Spec.Inputs, Env: r.Spec.Env, Dir: r.Spec.Dir, Limits: api.Limits(r.Spec.Limits)},
		Limits: api.Limits(r.Limits), Requests: api.Limits(m.Requests),
		Peak: api.Stats(r.Peak), Mean: api.Stats(r.Mean), Samples: r.Samples, CPUSeconds: r.CPUSeconds,
		SubmittedAt: r.SubmittedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, DurationS: r.DurationS,
		InputBytes: r.InputBytes, LogDir: r.LogDir, Owner: api.Owner{UID: m.UID, GID: m.GID}, Attempt: m.Attempt,
		Priority: m.Priority, Retries: m.Retries, Prediction: m.Prediction, Allocations: m.Allocations,
		LogsDropped: m.Logs, CPUThrottledS: r.CPUThrottledS,
	}
	if p := m.Prediction; p != nil && r.DurationS > 0 && r.FinishedAt != nil {
		var dur, cpu float64
		for _, st := range p.Steps {
			dur += st.DurationS
			cpu += st.P50.CPUCores * st.DurationS
		}
		if dur > 0 {
			t.Stretch = math.Round(r.DurationS/dur*1000) / 1000
			t.PredictedCPUSeconds = math.Round(cpu*1000) / 1000
		}
	}
	return t
}

// active says whether id is still known and not ended (for log follow).
func (d *Daemon) active(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.jobs[id]
	return ok
}
