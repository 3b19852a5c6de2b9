package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// recover rebuilds the accepted tasks from the store and what the runner
// left after a start — in particular after a kill -9. For each task not
// yet ended (runner.Inspect; the lock is tested before exit.json):
//
//	a shim lives                    re-attach: follow it, profile the cgroup
//	the shim recorded an exit       end the run from it (a task that ended is never run again)
//	no shim, processes in the cgroup follow them through the cgroup; the exit status is unknown
//	started, or recorded running    the run is lost: requeued until Config.MaxAttempts, then failed
//	never started                   stays queued
//
// A record without the daemon's meta was written by local mode (`prescient
// run` on the same state directory): it is not the daemon's to run. If
// its runner process died, it is ended failed, as local mode itself would;
// otherwise it is left alone.
func (d *Daemon) recover() error {
	var recs []*task.Record
	for _, st := range []task.State{task.Running, task.Queued} {
		rs, err := d.st.Tasks.List(store.Filter{State: st})
		if err != nil {
			return err
		}
		recs = append(recs, rs...)
	}
	// Oldest first, so the queue keeps submission order.
	slices.SortFunc(recs, func(a, b *task.Record) int {
		if c := a.SubmittedAt.Compare(b.SubmittedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	aux, err := d.st.Tasks.Aux(auxTable, ids...)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var after []func() // run once every task is known: ends and followers
	counts := map[string]int{}
	for i, r := range recs {
		known[r.ID] = true
		m, ok := decodeMeta(aux[i])
		if !ok {
			if err := d.recoverLocal(r); err != nil {
				return err
			}
			counts["local"]++
			continue
		}
		action, f, err := d.recoverOne(r, m)
		if err != nil {
			return err
		}
		counts[action]++
		if f != nil {
			after = append(after, f)
		}
	}
	for _, f := range after {
		f()
	}
	for action, n := range counts {
		d.m.recovered.WithLabelValues(action).Add(float64(n))
	}
	d.log.Info("recovered", "tasks", len(recs), "reattached", counts["reattached"]+counts["adopted"],
		"ended_while_down", counts["finalized"]+counts["lost"], "queued", counts["queued"], "local", counts["local"])
	// Run directories of tasks already ended (or unknown) are leftovers.
	ents, _ := os.ReadDir(filepath.Join(d.cfg.StateDir, "run"))
	for _, e := range ents {
		if !known[e.Name()] {
			_ = d.rt.Release(e.Name())
			_ = d.rt.Forget(e.Name())
		}
	}
	d.poke()
	return nil
}

// recoverOne rebuilds one task of the daemon's; it returns what it did and
// what to do once every task is known (end the run, or follow it).
func (d *Daemon) recoverOne(r *task.Record, m meta) (string, func(), error) {
	j := &job{id: r.ID, rec: r, meta: m, limits: r.Limits}
	l := d.rt.Inspect(r.ID)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.jobs[r.ID] = j
	d.perUser[m.UID]++
	switch {
	case l.ShimAlive:
		d.restore(j, phaseDispatched)
		h := d.rt.Reattach(r.ID)
		j.run = h
		return "reattached", func() { d.goTracked(func() { d.follow(j, h) }) }, nil
	case l.Exit != nil:
		d.restore(j, phaseRunning)
		j.logDrops = l.Logs
		e := *l.Exit
		return "finalized", func() { d.end(j, e) }, nil
	case l.Procs:
		h, err := d.rt.Adopt(r.ID, startedAt(r))
		if err != nil {
			d.log.Warn("adopt", "task", r.ID, "err", err)
			j.phase = phaseQueued // nothing held: the end path requeues it itself
			return "lost", func() {
				d.end(j, task.End{Started: true, Lost: "its shim died and its processes could not be followed"})
			}, nil
		}
		d.restore(j, phaseRunning)
		j.run = h
		q := j.queued()
		return "adopted", func() {
			d.openSampler(j)
			d.pol.Started(j.id, q)
			d.goTracked(func() { d.follow(j, h) })
		}, nil
	case l.Started || r.State == task.Running:
		// Lost: the policy holds nothing for it (no restore), so the end
		// path queues it again itself while attempts remain.
		j.phase = phaseQueued
		return "lost", func() {
			d.end(j, task.End{Started: l.Started, StartedAt: startedAt(r), Lost: "its shim ended without recording an exit status"})
		}, nil
	default:
		if l.Dir || l.Procs {
			// Never started: the daemon died between dispatch and the shim.
			_ = d.rt.Release(r.ID)
			_ = d.rt.Forget(r.ID)
		}
		j.phase = phaseQueued
		if err := d.pol.Enqueue(j.queued()); err != nil {
			return "", nil, fmt.Errorf("requeue %s: %w", r.ID, err)
		}
		return "queued", nil, nil
	}
}

// restore accounts, in the policy, for j found running after a restart.
// Caller holds d.mu.
func (d *Daemon) restore(j *job, p phase) {
	j.phase = p
	d.running++
	if err := d.pol.Restore(j.queued(), startedAt(j.rec), j.limits); err != nil {
		d.log.Warn("restore allocation", "task", j.id, "err", err)
	}
}

func startedAt(r *task.Record) time.Time {
	if r.StartedAt != nil {
		return *r.StartedAt
	}
	return time.Now()
}

// recoverLocal ends a local-mode record whose runner process died, as
// local mode's own recovery does (cli recoverOrphans); a live runner's
// record is left alone.
func (d *Daemon) recoverLocal(r *task.Record) error {
	if r.RunnerPID == 0 || processAlive(r.RunnerPID) {
		return nil
	}
	task.End{Lost: fmt.Sprintf("the prescient process running it (pid %d) exited before the task ended", r.RunnerPID)}.Apply(r)
	return d.commit([]*task.Record{r}, nil)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func atoiOr0(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
