package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
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
	if req.Spec.Limits.NetMbps > 0 {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
			Message: "network limits (net_mbps) are not enforced for daemon tasks yet; use prescient run --local"}
	}
	d.mu.Lock()
	full := d.queue.Len() >= d.cfg.MaxQueue
	d.mu.Unlock()
	if full {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeQueueFull, Limit: "max_queue",
			Message: fmt.Sprintf("the queue holds %d tasks, the most allowed (limit max_queue)", d.cfg.MaxQueue)}
	}
	spec := task.Spec{
		Argv: req.Spec.Argv, Inputs: req.Spec.Inputs, Env: req.Spec.Env, Dir: req.Spec.Dir,
		Limits: task.Limits(req.Spec.Limits),
	}
	if err := spec.Limits.Validate(); err != nil {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: err.Error()}
	}
	sig, err := d.signer.Sign(spec)
	if err != nil {
		d.m.submitted.WithLabelValues("rejected").Inc()
		code := api.CodeBadRequest
		if errors.Is(err, task.ErrProgramNotFound) {
			code = api.CodeProgramNotFound
		}
		return nil, &api.Error{Status: http.StatusBadRequest, Code: code, Message: err.Error()}
	}
	reqs := d.requestsFor(spec.Limits, req.Requests)
	if !fitsCapacity(d.cap, reqs) {
		d.m.submitted.WithLabelValues("rejected").Inc()
		return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
			Message: fmt.Sprintf("requests of %.2f cores and %.0f MB can never fit the node's capacity of %.2f cores and %.0f MB",
				reqs.CPUCores, reqs.MemoryMB, d.cap.CPUCores, d.cap.MemoryMB)}
	}
	id := store.NewID()
	rec := &task.Record{
		ID: id, Signature: sig.Hash, Spec: spec, State: task.Queued, SubmittedAt: time.Now(),
		InputBytes: sig.InputBytes, Limits: spec.Limits, LogDir: filepath.Join(d.cfg.StateDir, "logs", id),
	}
	m := meta{UID: who.UID, GID: who.GID, SetCred: !who.root(), Requests: reqs, Code: sig.Code, Priority: req.Priority}
	if m.SetCred {
		m.Groups = supplementaryGroups(who.UID, who.GID)
	}
	if err := d.commit([]*task.Record{cloneRec(rec)}, [][]byte{encodeMeta(m)}); err != nil {
		d.m.submitted.WithLabelValues("failed").Inc()
		return nil, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, Message: "store the task: " + err.Error()}
	}
	d.m.submitted.WithLabelValues("accepted").Inc()
	j := &job{rec: rec, meta: m}
	d.mu.Lock()
	d.jobs[id] = j
	j.elem = d.queue.PushBack(j)
	t := toAPI(rec, m)
	d.mu.Unlock()
	if d.sch != nil {
		d.enqueueSched(j)
		d.withSched(&t)
	}
	d.publish(t)
	d.poke()
	return &t, nil
}

// requestsFor is what a task reserves: explicit requests, else its limits
// where set, else the default request.
func (d *Daemon) requestsFor(l task.Limits, explicit *api.Limits) task.Limits {
	if explicit != nil {
		r := task.Limits(*explicit)
		r.IOPS, r.NetMbps, r.Pids = 0, 0, 0
		return r
	}
	r := task.Limits{CPUCores: d.cfg.DefaultRequest.CPUCores, MemoryMB: d.cfg.DefaultRequest.MemoryMB}
	if l.CPUCores > 0 {
		r.CPUCores = l.CPUCores
	}
	if l.MemoryMB > 0 {
		r.MemoryMB = l.MemoryMB
	}
	return r
}

// dispatcher starts queued tasks as capacity allows.
func (d *Daemon) dispatcher() {
	defer d.loops.Done()
	// The predictive scheduler also runs when capacity returns to the
	// ledger and as reservations fall due.
	var notify <-chan struct{}
	var tickC <-chan time.Time
	if d.sch != nil {
		notify = d.led.Notify()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		tickC = tick.C
	}
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-notify:
		case <-tickC:
		}
		d.dispatch()
	}
}

// backfillWindow is how far past a head that does not fit the dispatcher
// looks for smaller tasks that do.
const backfillWindow = 32

func (d *Daemon) dispatch() {
	if d.sch != nil {
		d.dispatchSched()
		return
	}
	var start []*job
	d.mu.Lock()
	skipped := 0
	for e := d.queue.Front(); e != nil && skipped < backfillWindow && d.running < d.cfg.MaxRunning; {
		next := e.Next()
		j := e.Value.(*job)
		if ok, _ := d.adm.Admit(j.rec.ID, j.meta.Requests); ok {
			d.queue.Remove(e)
			j.elem = nil
			j.started = true
			d.running++
			start = append(start, j)
		} else {
			skipped++
		}
		e = next
	}
	d.mu.Unlock()
	for _, j := range start {
		d.loops.Add(1)
		go d.supervise(j)
	}
}

func (d *Daemon) runDir(id string) string { return filepath.Join(d.cfg.StateDir, "run", id) }

// supervise starts j's shim and follows it to the task's end.
func (d *Daemon) supervise(j *job) {
	defer d.loops.Done()
	id := j.rec.ID
	log := d.log.With("task", id)
	dir := d.runDir(id)
	lock, status, err := d.spawnShim(j, dir)
	if err != nil {
		log.Error("start shim", "err", err)
		d.finish(j, &shimExit{StartError: "start the task's shim: " + err.Error(), FinishedAt: time.Now()})
		return
	}
	_ = lock // the shim holds it now
	// Status lines until the shim exits (EOF).
	started := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(status)
		for sc.Scan() {
			if sc.Text() == "started" {
				d.onStarted(j)
			}
		}
		status.Close()
		started <- struct{}{}
	}()
	select {
	case <-started:
	case <-d.stop:
		return // shutting down: the shim goes on; the next daemon re-attaches it
	}
	d.onShimExit(j)
}

// spawnShim writes the request and starts the shim, which inherits the run
// directory's lock: from the moment the lock is taken here until the shim
// exits it is held, so a restarted daemon can tell a live shim from a dead
// one without a window between them.
func (d *Daemon) spawnShim(j *job, dir string) (*os.File, *os.File, error) {
	d.mu.Lock()
	cancelled := j.cancelled
	rec := cloneRec(j.rec)
	d.mu.Unlock()
	if cancelled {
		return nil, nil, errors.New("cancelled before it started")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, runLockFile), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, nil, fmt.Errorf("run directory %s is locked by another shim: %w", dir, err)
	}
	req := shimRequest{
		ID: rec.ID, Argv: rec.Spec.Argv, Env: rec.Spec.Env, Dir: rec.Spec.Dir, Limits: rec.Limits,
		UID: j.meta.UID, GID: j.meta.GID, Groups: j.meta.Groups, SetCred: j.meta.SetCred,
		LogDir: rec.LogDir, LogMaxBytes: d.cfg.LogMaxBytes, LogKeep: d.cfg.LogKeep, CgroupRoot: d.cfg.CgroupRoot,
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, runRequestFile), b, false); err != nil {
		return nil, nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, runShimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer w.Close()
	argv := append(append([]string(nil), d.cfg.ShimCommand...), dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w, lock} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, nil, err
	}
	d.mu.Lock()
	j.shimPID = cmd.Process.Pid
	cancelled = j.cancelled
	d.mu.Unlock()
	if cancelled {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	// Reap the shim whenever it exits; its end is seen through the pipe.
	go func() { _ = cmd.Wait() }()
	return nil, r, nil
}

// onStarted marks j running: it reads started.json, opens the sampler on
// the task's cgroups and records the state.
func (d *Daemon) onStarted(j *job) {
	var st shimStarted
	b, err := os.ReadFile(filepath.Join(d.runDir(j.rec.ID), runStartedFile))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		d.log.Warn("read started.json", "task", j.rec.ID, "err", err)
		st.StartedAt = time.Now()
	}
	d.attachSampler(j)
	d.mu.Lock()
	if j.rec.State == task.Running || j.finishing {
		d.mu.Unlock()
		return
	}
	j.rec.State = task.Running
	at := st.StartedAt
	j.rec.StartedAt = &at
	if st.ShimPID > 0 {
		j.shimPID = st.ShimPID
	}
	rec := cloneRec(j.rec)
	t := toAPI(rec, j.meta)
	d.mu.Unlock()
	if err := d.commit([]*task.Record{rec}, nil); err != nil {
		d.log.Warn("record start", "task", rec.ID, "err", err)
		return
	}
	d.publish(t)
}

func (d *Daemon) attachSampler(j *job) {
	p, err := d.ex.Adopt(j.rec.ID)
	if err != nil {
		d.log.Debug("no cgroup to profile", "task", j.rec.ID, "err", err)
		return
	}
	cg := p.Cgroups()
	s, err := profile.NewSampler(profile.Target{V1: cg.V1, V2: cg.V2, CgroupID: cg.CgroupID}, d.net)
	if err != nil {
		d.log.Warn("profiling unavailable", "task", j.rec.ID, "err", err)
		return
	}
	s.Sample(time.Now()) // prime the rate counters
	j.smu.Lock()
	if j.sampler != nil {
		_ = j.sampler.Close()
	}
	j.sampler = s
	if d.sch != nil {
		d.startSession(j)
	}
	j.smu.Unlock()
}

// sampleLoop samples every running task each interval into the TSDB.
func (d *Daemon) sampleLoop() {
	defer d.loops.Done()
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-tick.C:
			d.mu.Lock()
			var js []*job
			for _, j := range d.jobs {
				if j.started && !j.finishing {
					js = append(js, j)
				}
			}
			d.mu.Unlock()
			for _, j := range js {
				d.sampleOnce(j, now, false)
			}
		}
	}
}

// sampleOnce takes one sample of j (and with last, closes the sampler).
func (d *Daemon) sampleOnce(j *job, now time.Time, last bool) {
	j.smu.Lock()
	defer j.smu.Unlock()
	if j.sampler == nil {
		return
	}
	s := j.sampler.Sample(now)
	if last {
		_ = j.sampler.Close()
		j.sampler = nil
	}
	if s.Avail == 0 {
		return
	}
	if err := d.st.Samples.Append(j.rec.ID, j.rec.Signature, s); err != nil {
		d.log.Debug("store sample", "task", j.rec.ID, "err", err)
	}
	if d.sch != nil && !last {
		d.observe(j, s, now)
	}
}

// onShimExit handles the end of j's shim: from exit.json when it wrote
// one; otherwise the shim died (killed) and the run is lost.
func (d *Daemon) onShimExit(j *job) {
	dir := d.runDir(j.rec.ID)
	x, err := readExit(dir)
	if err == nil {
		d.finish(j, x)
		return
	}
	d.log.Warn("shim ended without an exit status", "task", j.rec.ID, "err", err)
	d.lost(j, "its shim died without recording an exit status")
}

func readExit(dir string) (*shimExit, error) {
	b, err := os.ReadFile(filepath.Join(dir, runExitFile))
	if err != nil {
		return nil, err
	}
	var x shimExit
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("decode %s: %w", runExitFile, err)
	}
	return &x, nil
}

// finish records j's end from x, frees its capacity and cleans up.
func (d *Daemon) finish(j *job, x *shimExit) {
	id := j.rec.ID
	d.mu.Lock()
	j.finishing = true
	cancelled := j.cancelled
	d.mu.Unlock()
	d.sampleOnce(j, time.Now(), true)
	d.removeCgroup(id)

	curve, err := d.st.Samples.Curve(id)
	if err != nil {
		d.log.Warn("read curve", "task", id, "err", err)
	}
	if d.sch != nil && d.finishSched(j, x, cancelled, curve) {
		return // requeued: OOM retry or eviction
	}
	d.mu.Lock()
	r := j.rec
	end := x.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	r.FinishedAt = &end
	if x.Started {
		at := x.StartedAt
		r.StartedAt = &at
		r.DurationS = end.Sub(at).Seconds()
	}
	sum := resource.Summarize(curve)
	r.Peak, r.Mean = task.StatsOf(sum)
	r.Samples = sum.N
	r.Error = ""
	switch {
	case x.StartError != "":
		r.State, r.Error = task.Failed, x.StartError
		if x.Killed || cancelled {
			r.State = task.Cancelled
		}
	case x.WaitError != "":
		r.State, r.Error = task.Failed, x.WaitError
	case x.Killed || (cancelled && x.Code != 0):
		r.State = task.Cancelled
	case x.Code == 0:
		r.State = task.Succeeded
	default:
		r.State = task.Failed
	}
	if x.Started && x.WaitError == "" {
		if x.Code >= 0 {
			c := x.Code
			r.ExitCode = &c
		}
		r.Signal = x.Signal
		r.OOMKilled = x.OOMKilled
	}
	rec := cloneRec(r)
	t := toAPI(rec, j.meta)
	d.mu.Unlock()
	d.end(j, rec, t)
}

// end commits a final record and forgets the job.
func (d *Daemon) end(j *job, rec *task.Record, t api.Task) {
	d.mu.Lock()
	m := encodeMeta(j.meta)
	d.mu.Unlock()
	if err := d.commit([]*task.Record{rec}, [][]byte{m}); err != nil {
		// Leave the run directory: the next start finalizes it from exit.json.
		d.log.Error("record end", "task", rec.ID, "err", err)
		return
	}
	d.m.ended.WithLabelValues(string(rec.State)).Inc()
	d.st.Samples.Forget(rec.ID)
	d.mu.Lock()
	delete(d.jobs, rec.ID)
	if j.started {
		d.running--
	}
	d.mu.Unlock()
	if d.sch != nil {
		d.sch.Cancel(rec.ID) // a queued task; a run was finished by finishSched
	} else {
		d.adm.Release(rec.ID)
	}
	if err := os.RemoveAll(d.runDir(rec.ID)); err != nil {
		d.log.Warn("remove run dir", "task", rec.ID, "err", err)
	}
	d.publish(t)
	d.poke()
}

// lost handles a run whose end is unknown and whose processes are gone:
// failed by restart, and requeued while attempts remain.
func (d *Daemon) lost(j *job, why string) {
	id := j.rec.ID
	d.sampleOnce(j, time.Now(), true)
	d.removeCgroup(id)
	_ = os.RemoveAll(d.runDir(id))
	d.mu.Lock()
	j.meta.Attempt++
	r := j.rec
	now := time.Now()
	if j.meta.Attempt >= d.cfg.MaxAttempts || j.cancelled {
		r.State, r.FinishedAt = task.Failed, &now
		r.Error = fmt.Sprintf("failed by restart: %s (attempt %d of %d)", why, j.meta.Attempt, d.cfg.MaxAttempts)
		if j.cancelled {
			r.State = task.Cancelled
		}
		rec, t := cloneRec(r), toAPI(r, j.meta)
		d.mu.Unlock()
		d.end(j, rec, t)
		return
	}
	r.State, r.StartedAt = task.Queued, nil
	r.Error = fmt.Sprintf("attempt %d lost: %s; requeued", j.meta.Attempt, why)
	rec, m := cloneRec(r), j.meta
	d.mu.Unlock()
	if err := d.commit([]*task.Record{rec}, [][]byte{encodeMeta(m)}); err != nil {
		d.log.Error("requeue", "task", id, "err", err)
		return
	}
	d.m.recovered.WithLabelValues("requeued").Inc()
	if d.sch != nil {
		d.forgetProc(id)
		_, _ = d.sch.Finish(id, sched.Outcome{Cancelled: true})
	} else {
		d.adm.Release(id)
	}
	d.mu.Lock()
	if j.started {
		d.running--
	}
	j.started, j.finishing, j.shimPID = false, false, 0
	j.elem = d.queue.PushBack(j)
	t := toAPI(rec, m)
	d.mu.Unlock()
	if d.sch != nil {
		d.enqueueSched(j)
	}
	d.publish(t)
	d.poke()
}

// removeCgroup removes a task's cgroups if they are still there.
func (d *Daemon) removeCgroup(id string) {
	d.forgetProc(id)
	p, err := d.ex.Adopt(id)
	if err != nil {
		return
	}
	if err := p.Close(); err != nil {
		d.log.Warn("remove cgroup", "task", id, "err", err)
	}
}

// Cancel cancels a queued or running task of who's.
func (d *Daemon) Cancel(who identity, id string) (*api.Task, error) {
	d.mu.Lock()
	j, ok := d.jobs[id]
	if ok && !who.owns(j.meta) {
		ok = false
	}
	if !ok {
		d.mu.Unlock()
		t, err := d.Get(who, id)
		if err != nil {
			return nil, err
		}
		return nil, &api.Error{Status: http.StatusConflict, Code: api.CodeConflict,
			Message: fmt.Sprintf("task %s already ended (%s)", id, t.State)}
	}
	if j.elem != nil { // queued: end it here
		d.queue.Remove(j.elem)
		j.elem = nil
		now := time.Now()
		j.rec.State, j.rec.FinishedAt = task.Cancelled, &now
		rec, t := cloneRec(j.rec), toAPI(j.rec, j.meta)
		d.mu.Unlock()
		d.end(j, rec, t)
		return &t, nil
	}
	j.cancelled = true
	pid := j.shimPID
	t := toAPI(j.rec, j.meta)
	d.mu.Unlock()
	if pid > 0 {
		// The shim kills the task's whole cgroup and records it as killed.
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "signal the shim: " + err.Error()}
		}
	}
	return &t, nil
}

// Get returns a task of who's.
func (d *Daemon) Get(who identity, id string) (*api.Task, error) {
	d.mu.Lock()
	if j, ok := d.jobs[id]; ok && who.owns(j.meta) {
		t := toAPI(j.rec, j.meta)
		d.mu.Unlock()
		d.withSched(&t)
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
	if d.sch != nil {
		d.nodeSched(&n)
		n.Policy = PolicyPredict
	} else {
		n.Capacity, n.Used = d.adm.Usage()
		n.Policy = d.adm.Name()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n.Running, n.Queued = d.running, d.queue.Len()
	n.MaxRunning, n.MaxQueue = d.cfg.MaxRunning, d.cfg.MaxQueue
	n.PID, n.StartedAt = os.Getpid(), d.start
	return n
}

// toAPI converts a record and its meta to the API form.
func toAPI(r *task.Record, m meta) api.Task {
	return api.Task{
		ID: r.ID, Signature: r.Signature, State: string(r.State), ExitCode: r.ExitCode, Signal: r.Signal,
		OOMKilled: r.OOMKilled, Error: r.Error,
		Spec:   api.Spec{Argv: r.Spec.Argv, Inputs: r.Spec.Inputs, Env: r.Spec.Env, Dir: r.Spec.Dir, Limits: api.Limits(r.Spec.Limits)},
		Limits: api.Limits(r.Limits), Requests: api.Limits(m.Requests),
		Peak: api.Stats(r.Peak), Mean: api.Stats(r.Mean), Samples: r.Samples,
		SubmittedAt: r.SubmittedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, DurationS: r.DurationS,
		InputBytes: r.InputBytes, LogDir: r.LogDir, Owner: api.Owner{UID: m.UID, GID: m.GID}, Attempt: m.Attempt,
		Priority: m.Priority, Retries: m.Retries, Prediction: m.Prediction, Allocations: m.Allocations,
	}
}

// jobState says whether id is still known and not ended (for log follow).
func (d *Daemon) active(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.jobs[id]
	return ok
}

var _ = strings.TrimSpace
