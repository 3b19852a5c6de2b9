package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// recover rebuilds the queue and the running set from the store and the
// run directories after a start — in particular after a kill -9. For each
// task not yet ended, the run directory's lock decides, and it is tested
// before exit.json is read (a shim writes exit.json, then exits, then the
// lock is free; the other order could miss an exit written in between):
//
//	lock held (a shim lives)        re-attach: watch it, profile the cgroup
//	lock free, exit.json            finalize from it (a succeeded task is never re-run)
//	lock free, cgroup has processes adopt through the cgroup; the exit status is unknown
//	lock free, started.json         the run is lost: failed by restart, requeued per MaxAttempts
//	no run directory / not started  queued: stays queued
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
	var exited []*job
	for i, r := range recs {
		known[r.ID] = true
		m, ok := decodeMeta(aux[i])
		if !ok {
			m = meta{Requests: d.requestsFor(r.Spec.Limits, nil)}
		}
		j := &job{rec: r, meta: m}
		d.jobs[r.ID] = j
		dir := d.runDir(r.ID)
		lock, err := os.OpenFile(filepath.Join(dir, runLockFile), os.O_RDWR|syscall.O_CLOEXEC, 0)
		if errors.Is(err, os.ErrNotExist) {
			if r.State == task.Running {
				exited = append(exited, j) // running without a run dir: lost
				continue
			}
			d.requeue(j)
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			lock.Close()
			d.reattach(j)
			continue
		}
		lock.Close() // free: the shim is gone and will not come back
		exited = append(exited, j)
	}
	reattached := d.running
	for _, j := range exited {
		d.recoverEnded(j)
	}
	d.mu.Lock()
	queued := d.queue.Len()
	d.mu.Unlock()
	d.log.Info("recovered", "tasks", len(recs), "reattached", reattached, "ended_while_down", len(exited), "queued", queued)
	// Run directories of tasks already ended (or unknown) are leftovers.
	ents, _ := os.ReadDir(filepath.Join(d.cfg.StateDir, "run"))
	for _, e := range ents {
		if !known[e.Name()] {
			d.removeCgroup(e.Name())
			_ = os.RemoveAll(d.runDir(e.Name()))
		}
	}
	d.poke()
	return nil
}

func (d *Daemon) requeue(j *job) {
	d.mu.Lock()
	j.elem = d.queue.PushBack(j)
	d.mu.Unlock()
	if d.sch != nil {
		d.enqueueSched(j)
	}
	d.m.recovered.WithLabelValues("queued").Inc()
}

// recoverEnded handles a task whose shim is gone.
func (d *Daemon) recoverEnded(j *job) {
	id := j.rec.ID
	dir := d.runDir(id)
	if x, err := readExit(dir); err == nil {
		d.mu.Lock()
		j.started = true
		d.running++
		d.mu.Unlock()
		d.restoreAdmission(j)
		d.m.recovered.WithLabelValues("finalized").Inc()
		d.finish(j, x)
		return
	}
	if p, err := d.ex.Adopt(id); err == nil && p.Pid() != 0 {
		// The shim died but the task lives: follow it through its cgroup.
		d.mu.Lock()
		j.started = true
		d.running++
		d.mu.Unlock()
		d.restoreAdmission(j)
		d.attachSampler(j)
		d.m.recovered.WithLabelValues("adopted").Inc()
		d.loops.Add(1)
		go func() {
			defer d.loops.Done()
			x, _ := p.Wait()
			d.finish(j, &shimExit{Started: true, StartedAt: startedAt(j), FinishedAt: time.Now(), Code: -1,
				OOMKilled: x.OOMKilled, OOMKills: x.OOMKills,
				WaitError: "exit status unknown: the task's shim died while it ran"})
		}()
		return
	}
	_, serr := os.Stat(filepath.Join(dir, runStartedFile))
	if serr == nil || j.rec.State == task.Running {
		d.mu.Lock()
		j.started = true
		d.running++
		d.mu.Unlock()
		d.lost(j, "its shim ended without recording an exit status")
		return
	}
	// Never started: the daemon died between dispatch and the shim.
	d.removeCgroup(id)
	_ = os.RemoveAll(dir)
	d.requeue(j)
}

// restoreAdmission accounts for a task found running after a restart.
func (d *Daemon) restoreAdmission(j *job) {
	if d.sch == nil {
		d.adm.Restore(j.rec.ID, j.meta.Requests)
		return
	}
	d.mu.Lock()
	t, lim := schedTask(j), j.rec.Limits
	d.mu.Unlock()
	if lim.IsZero() {
		lim = j.meta.Requests
	}
	if err := d.sch.Restore(t, startedAt(j), lim, ledger.Curve{}, ""); err != nil {
		d.log.Warn("restore allocation", "task", t.ID, "err", err)
	}
}

func startedAt(j *job) time.Time {
	if j.rec.StartedAt != nil {
		return *j.rec.StartedAt
	}
	return time.Now()
}

// reattach follows a live shim left by an earlier daemon.
func (d *Daemon) reattach(j *job) {
	id := j.rec.ID
	d.mu.Lock()
	j.started = true
	d.running++
	if b, err := os.ReadFile(filepath.Join(d.runDir(id), runPIDFile)); err == nil {
		j.shimPID = atoiOr0(string(b))
	}
	d.mu.Unlock()
	d.restoreAdmission(j)
	d.m.recovered.WithLabelValues("reattached").Inc()
	d.loops.Add(1)
	go d.watch(j)
}

// watch polls a re-attached shim (not this process's child, so no pipe and
// no wait): started.json for the start, the lock for its exit.
func (d *Daemon) watch(j *job) {
	defer d.loops.Done()
	dir := d.runDir(j.rec.ID)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	startedSeen := false
	for {
		if !startedSeen {
			if _, err := os.Stat(filepath.Join(dir, runStartedFile)); err == nil {
				startedSeen = true
				d.onStarted(j)
			}
		}
		if lockFree(dir) {
			if !startedSeen {
				if _, err := os.Stat(filepath.Join(dir, runStartedFile)); err == nil {
					d.onStarted(j)
				}
			}
			d.onShimExit(j)
			return
		}
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
	}
}

// lockFree reports whether no shim holds dir's lock.
func lockFree(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, runLockFile), os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
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
