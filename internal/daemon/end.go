package daemon

import (
	"fmt"
	"math"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
)

// end is the one end-of-run path. Every run comes here exactly once,
// however it ended: the shim's exit status, a start that failed, a cancel
// before the start, a run lost without an exit status, a run found ended
// after a restart. It
//
//  1. takes the last sample and reads the run's curve,
//  2. lets the policy release what the run held — at once, whatever the
//     end — and decide on a requeue (an OOM retry, an eviction, or, for a
//     lost run (lost=true) while Config.MaxAttempts allows, a rerun),
//  3. removes the run's cgroups,
//  4. records the task queued again, or its final state (task.End.Outcome:
//     the same mapping local mode uses), durably,
//  5. and only then removes the run directory (whose exit.json lets the
//     next daemon finish the job if this one dies before the record is
//     stored).
//
// A final record that cannot be stored (the state directory is full) keeps
// the job in memory and is retried (retryEnds); it is never dropped.
func (d *Daemon) end(j *job, e task.End) {
	if e.StartKind == task.KindNoSpace && !e.Cancelled {
		// The shim could not prepare the run on a full state directory:
		// not the task's fault, so a rerun that costs no attempt.
		e = task.End{Lost: "its run could not be prepared: " + e.StartError, FinishedAt: e.FinishedAt}
		d.mu.Lock()
		j.freeRetry = true
		d.pauseUntil = time.Now().Add(noSpacePause)
		d.mu.Unlock()
	}
	lost := e.Lost != ""
	d.mu.Lock()
	if j.ending {
		d.mu.Unlock()
		return
	}
	j.ending = true
	inPolicy := j.phase == phaseDispatched || j.phase == phaseRunning
	j.phase = phaseEnding
	e.Cancelled = e.Cancelled || j.cancelled
	e.MemoryLimitMB = j.limits.MemoryMB
	rerun := false
	if lost && !e.Cancelled {
		if !j.freeRetry {
			j.meta.Attempt++
		}
		j.freeRetry = false
		if j.meta.Attempt < d.cfg.MaxAttempts {
			rerun = true
			e.Lost = fmt.Sprintf("attempt %d lost: %s; requeued", j.meta.Attempt, e.Lost)
		} else {
			e.Lost = fmt.Sprintf("failed by restart: %s (attempt %d of %d)", e.Lost, j.meta.Attempt, d.cfg.MaxAttempts)
		}
	}
	q := j.queued()
	d.mu.Unlock()

	d.lastSample(j)
	j.smu.Lock() // not under d.mu (see Daemon)
	cpuSecs, cpuThr := j.cpuSecs, j.cpuThr
	j.smu.Unlock()
	var curve []resource.Sample
	if e.Started {
		ss, err := d.st.Samples.Curve(j.id)
		if err != nil {
			d.log.Warn("read curve", "task", j.id, "err", err)
		}
		curve = runPart(ss, e.StartedAt)
	}
	// The policy's Finish runs under d.mu: a task it queues again may be
	// chosen by the very next Schedule, and dispatch must then see it
	// requeuing (and hold the start until requeued is done), not ending.
	d.mu.Lock()
	var res sched.Result
	if inPolicy {
		res = d.pol.Finish(j.id, Run{Task: q, End: e, Curve: curve, Lost: rerun})
	} else if rerun {
		if err := d.pol.Enqueue(q); err != nil {
			d.log.Error("requeue", "task", j.id, "err", err)
		}
		res = sched.Result{Requeued: true, Reason: sched.ReasonLost, Detail: e.Lost}
	}
	if res.Requeued {
		j.phase = phaseRequeuing
	}
	d.mu.Unlock()
	if err := d.rt.Release(j.id); err != nil {
		d.log.Warn("remove cgroup", "task", j.id, "err", err)
	}
	if res.Requeued {
		d.requeued(j, e, res, inPolicy)
		return
	}

	if inPolicy {
		if l, ok := limitsAtEnd(res.View); ok {
			e.MemoryLimitMB = l.MemoryMB // the limit the kill happened at
		}
	}
	d.mu.Lock()
	r := j.rec
	if o := e.Apply(r); o.Kind == task.KindOOM && res.Detail != "" {
		r.Error += "; " + res.Detail // why no retry is left
	}
	if !e.Started {
		r.StartedAt, r.DurationS = nil, 0
	}
	sum := resource.Summarize(curve)
	r.Peak, r.Mean = task.StatsOf(sum)
	r.Samples = sum.N
	r.CPUSeconds, r.CPUThrottledS = 0, 0
	if e.Started {
		r.CPUSeconds = math.Round(cpuSecs*1000) / 1000
		r.CPUThrottledS = math.Round(cpuThr*1000) / 1000
	}
	if j.logDrops != nil {
		j.meta.Logs = j.logDrops
	}
	if inPolicy {
		v := res.View
		j.meta.Retries = v.Retries
		j.meta.Prediction, j.meta.Allocations = predictionOf(v), allocationsOf(v)
	}
	if inPolicy {
		d.running--
	}
	d.mu.Unlock()
	d.finalize(j)
}

// finalize stores j's final record and forgets it; on a store failure it
// keeps j for retryEnds.
func (d *Daemon) finalize(j *job) {
	if err := d.commitJob(j); err != nil {
		d.log.Error("record end (kept, retried)", "task", j.id, "err", err)
		d.mu.Lock()
		d.retry = append(d.retry, j)
		d.mu.Unlock()
		return
	}
	d.noteEnded(j.id)
	d.mu.Lock()
	delete(d.jobs, j.id)
	d.dropSlotLocked(j.meta.UID)
	t := toAPI(j.rec, j.meta)
	d.mu.Unlock()
	d.m.ended.WithLabelValues(string(t.State)).Inc()
	d.st.Samples.Forget(j.id)
	if err := d.rt.Forget(j.id); err != nil {
		d.log.Warn("remove run dir", "task", j.id, "err", err)
	}
	d.publish(t)
	d.poke()
}

// retryEnds stores the final records that could not be stored before.
func (d *Daemon) retryEnds() {
	d.mu.Lock()
	js := d.retry
	d.retry = nil
	d.mu.Unlock()
	for _, j := range js {
		d.finalize(j)
	}
}

// requeued records j queued again after the policy (or a lost run)
// requeued it. The run directory goes first: the policy may have chosen
// the task already (dispatch held that start in j.held), and its next run
// must not find this one's files.
func (d *Daemon) requeued(j *job, e task.End, res sched.Result, inPolicy bool) {
	d.st.Samples.Forget(j.id)
	if err := d.rt.Forget(j.id); err != nil {
		d.log.Warn("remove run dir", "task", j.id, "err", err)
	}
	d.mu.Lock()
	r := j.rec
	r.State, r.StartedAt, r.FinishedAt, r.DurationS = task.Queued, nil, nil, 0
	r.OOMKilled = e.OOMKills > 0
	r.Error, r.ErrorKind = res.Detail, ""
	j.meta.Retries = res.Retries
	if inPolicy {
		d.running--
	}
	j.ending, j.run = false, nil
	held := j.held
	j.held = nil
	j.phase = phaseQueued
	if held != nil {
		j.phase, j.limits, r.Limits = phaseDispatched, held.Limits, held.Limits
	}
	cancelled := j.cancelled
	d.mu.Unlock()
	if err := d.commitJob(j); err != nil {
		d.log.Error("record requeue", "task", j.id, "err", err)
	}
	reason := res.Reason
	if reason == "" {
		reason = "requeued"
	}
	d.m.recovered.WithLabelValues(reason).Inc()
	d.log.Info("requeued", "task", j.id, "reason", reason, "estimate_mb", res.EstimateMB, "retries", res.Retries)
	d.mu.Lock()
	t := d.viewLocked(j)
	d.mu.Unlock()
	d.publish(t)
	switch {
	case held != nil:
		d.goTracked(func() { d.startRun(j) }) // it sees a cancel itself
	case cancelled:
		d.mu.Lock()
		ok := j.phase == phaseQueued && d.pol.Cancel(j.id)
		if ok {
			j.phase = phaseEnding
		}
		d.mu.Unlock()
		if ok {
			d.end(j, task.End{StartError: "cancelled before it started", Cancelled: true, FinishedAt: time.Now()})
		}
	}
	d.poke()
}

// runPart is the samples of the run that started at start: a requeued task
// keeps its id, so the store holds its earlier runs' samples too.
func runPart(ss []resource.Sample, start time.Time) []resource.Sample {
	if start.IsZero() {
		return ss
	}
	for i, s := range ss {
		if !s.Time.Before(start) {
			return ss[i:]
		}
	}
	return nil
}

// limitsAtEnd is what the task's cgroup had when its run ended: its last
// allocation before the ones its end recorded.
func limitsAtEnd(v sched.View) (task.Limits, bool) {
	for i := len(v.Allocs) - 1; i >= 0; i-- {
		switch v.Allocs[i].Reason {
		case sched.ReasonRelease, sched.ReasonOOMRetry, sched.ReasonEvict, sched.ReasonLost:
			continue
		}
		return v.Allocs[i].Limits, true
	}
	return task.Limits{}, false
}
