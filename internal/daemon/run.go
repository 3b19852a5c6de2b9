package daemon

import (
	"fmt"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
)

// dispatcher starts queued tasks as the policy allows: when woken (a
// submit, an end), when the policy signals returned capacity or a due
// reservation, and on a ticker.
func (d *Daemon) dispatcher() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	wake := d.pol.Wake()
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-wake:
		case <-tick.C:
			d.retryEnds()
		}
		d.dispatch()
	}
}

// dispatch asks the policy what to start and starts it. The policy's
// Schedule runs under d.mu, so a task leaves the policy's queue and
// becomes dispatched here in one step (Cancel sees one or the other).
func (d *Daemon) dispatch() {
	d.mu.Lock()
	n := d.cfg.MaxRunning - d.running
	if n <= 0 || d.closed || time.Now().Before(d.pauseUntil) {
		d.mu.Unlock()
		return
	}
	starts := d.pol.Schedule(n)
	var run []*job
	var unknown []sched.Start
	for _, st := range starts {
		j := d.jobs[st.ID]
		if j != nil && j.phase == phaseRequeuing && j.held == nil {
			// Queued again by the policy, still being recorded so: held
			// until requeued is done, which then starts it.
			j.held = &st
			d.running++
			continue
		}
		if j == nil || j.phase != phaseQueued {
			unknown = append(unknown, st) // cannot happen: queued in the policy means queued here
			continue
		}
		j.phase = phaseDispatched
		j.limits = st.Limits
		j.rec.Limits = st.Limits
		d.running++
		run = append(run, j)
	}
	d.mu.Unlock()
	for _, st := range unknown {
		d.log.Error("policy started a task the daemon does not hold queued", "task", st.ID)
		d.pol.Finish(st.ID, Run{End: task.End{Cancelled: true}})
	}
	for _, j := range run {
		d.goTracked(func() { d.startRun(j) })
	}
}

// noSpacePause is how long nothing starts after a run could not be
// prepared because the state directory was full.
const noSpacePause = 2 * time.Second

// startRun starts j's run through the runner and follows it.
func (d *Daemon) startRun(j *job) {
	d.mu.Lock()
	req := d.shimRequest(j)
	cancelled := j.cancelled
	d.mu.Unlock()
	if cancelled {
		d.end(j, task.End{StartError: "cancelled before it started", Cancelled: true, FinishedAt: time.Now()})
		return
	}
	h, err := d.rt.Start(req)
	if err != nil {
		d.log.Error("start the task's shim", "task", j.id, "err", err)
		if noSpace(err) {
			// Not the task's fault: it goes back to the queue, without
			// counting an attempt, and nothing starts for a while.
			d.mu.Lock()
			j.freeRetry = true
			d.pauseUntil = time.Now().Add(noSpacePause)
			d.mu.Unlock()
			d.end(j, task.End{Lost: fmt.Sprintf("its run could not be prepared: the state directory is full (%v)", err), FinishedAt: time.Now()})
			return
		}
		d.end(j, task.End{StartError: "start the task's shim: " + err.Error(), StartKind: task.KindStart, FinishedAt: time.Now()})
		return
	}
	d.mu.Lock()
	j.run = h
	cancelled = j.cancelled
	d.mu.Unlock()
	if cancelled {
		h.Cancel()
	}
	d.follow(j, h)
}

// follow waits for a run's start and end, marking the job running when its
// processes run and ending it when the run is over. On the daemon's stop
// it lets go: the run goes on; the next daemon picks it up.
func (d *Daemon) follow(j *job, h runHandle) {
	started := h.Started()
	for {
		select {
		case <-started:
			started = nil
			d.onStarted(j, h.StartedAt())
		case <-h.Exited():
			// The task's processes are gone; its cgroup stays until the
			// last sample is taken, then the shim may remove it.
			d.lastSample(j)
			h.Ack()
			select {
			case <-h.Done():
			case <-d.stop:
				h.Close()
				return
			}
			d.endWithLogs(j, h)
			return
		case <-d.stop:
			h.Close()
			return
		}
	}
}

// onStarted marks j running, opens its sampler and records the state.
func (d *Daemon) onStarted(j *job, at time.Time) {
	d.openSampler(j)
	d.mu.Lock()
	if j.phase != phaseDispatched {
		d.mu.Unlock()
		return
	}
	j.phase = phaseRunning
	j.rec.State = task.Running
	j.rec.StartedAt = &at
	q := j.queued()
	d.mu.Unlock()
	d.pol.Started(j.id, q)
	if err := d.commitJob(j); err != nil {
		d.log.Warn("record start", "task", j.id, "err", err)
	}
	d.mu.Lock()
	t := d.viewLocked(j)
	d.mu.Unlock()
	d.publish(t)
}

// shimRequest is what the shim needs to start j. Caller holds d.mu.
func (d *Daemon) shimRequest(j *job) shimRequest {
	r := j.rec
	return shimRequest{
		ID: r.ID, Argv: r.Spec.Argv, Env: r.Spec.Env, Dir: r.Spec.Dir, Limits: j.limits,
		UID: j.meta.UID, GID: j.meta.GID, Groups: j.meta.Groups, SetCred: j.meta.SetCred,
		LogDir: r.LogDir, LogMaxBytes: d.cfg.LogMaxBytes, LogKeep: d.cfg.LogKeep, CgroupRoot: d.cfg.CgroupRoot,
	}
}

// endWithLogs ends j's run as h says, with what log rotation dropped.
func (d *Daemon) endWithLogs(j *job, h runHandle) {
	if ld, ok := h.(interface{ LogDrops() *api.LogsDropped }); ok {
		if l := ld.LogDrops(); l != nil {
			d.mu.Lock()
			j.logDrops = l
			d.mu.Unlock()
		}
	}
	d.end(j, h.End())
}
