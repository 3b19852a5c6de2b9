package daemon

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// TestEndOfRun drives runs to every kind of end through a fake runner and
// checks the one end path: the recorded state and error code, one policy
// Finish per run, and a node that holds nothing afterwards.
func TestEndOfRun(t *testing.T) {
	type want struct {
		state, code string
		exit        int // -1: none
		oom         bool
		starts      int
	}
	tests := []struct {
		name string
		run  func(f *fixture, id string)
		want want
	}{
		{"exit 0", func(f *fixture, id string) {
			r := f.runOf(id)
			r.begin()
			f.waitFor(id, api.StateRunning)
			r.finish(task.End{Started: true, StartedAt: r.startedAt})
		}, want{api.StateSucceeded, "", 0, false, 1}},
		{"exit 3", func(f *fixture, id string) {
			r := f.runOf(id)
			r.begin()
			r.finish(task.End{Started: true, StartedAt: r.startedAt, Code: 3})
		}, want{api.StateFailed, "exit", 3, false, 1}},
		{"child OOM-killed, shell exits 0", func(f *fixture, id string) {
			r := f.runOf(id)
			r.begin()
			r.finish(task.End{Started: true, StartedAt: r.startedAt, OOMKills: 1})
		}, want{api.StateFailed, "oom", 0, true, 1}},
		{"program not found", func(f *fixture, id string) {
			f.runOf(id).finish(task.End{StartError: "program: no such file", StartKind: task.KindNotFound})
		}, want{api.StateFailed, "not_found", -1, false, 1}},
		{"a cgroup write refused at start", func(f *fixture, id string) {
			f.runOf(id).finish(task.End{StartError: "start task: set limits on /sys/fs/cgroup/x: write memory.max: permission denied", StartKind: task.KindStart})
		}, want{api.StateFailed, "start", -1, false, 1}},
		{"lost three times", func(f *fixture, id string) {
			for i := range 3 {
				f.waitStarts(id, i+1)
				r := f.runOf(id)
				r.begin()
				r.finish(task.End{Lost: "its shim died without recording an exit status"})
			}
		}, want{api.StateFailed, "lost", -1, false, 3}},
		{"lost once, then succeeds", func(f *fixture, id string) {
			r := f.runOf(id)
			r.finish(task.End{Lost: "its shim died without recording an exit status"})
			f.waitStarts(id, 2)
			r = f.runOf(id)
			r.begin()
			r.finish(task.End{Started: true, StartedAt: r.startedAt})
		}, want{api.StateSucceeded, "", 0, false, 2}},
		{"cancelled running", func(f *fixture, id string) {
			r := f.runOf(id)
			r.begin()
			f.waitFor(id, api.StateRunning)
			if _, err := f.d.Cancel(f.who, id); err != nil {
				f.t.Fatal(err)
			}
		}, want{api.StateCancelled, "cancelled", -1, false, 1}},
		{"cancelled while its shim starts", func(f *fixture, id string) {
			f.runOf(id) // dispatched, not started
			if _, err := f.d.Cancel(f.who, id); err != nil {
				f.t.Fatal(err)
			}
		}, want{api.StateCancelled, "cancelled", -1, false, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newFakeRunner(), "", nil)
			id := f.submit("true")
			tt.run(f, id)
			got := f.waitFor(id, tt.want.state)
			if got.ErrorCode != tt.want.code || got.OOMKilled != tt.want.oom {
				t.Errorf("ended %s code %q oom %v (%s), want code %q oom %v", got.State, got.ErrorCode, got.OOMKilled, got.Error, tt.want.code, tt.want.oom)
			}
			switch {
			case tt.want.exit < 0 && got.ExitCode != nil:
				t.Errorf("exit code %d, want none", *got.ExitCode)
			case tt.want.exit >= 0 && (got.ExitCode == nil || *got.ExitCode != tt.want.exit):
				t.Errorf("exit code %v, want %d", got.ExitCode, tt.want.exit)
			}
			if n := f.rt.startCount(id); n != tt.want.starts {
				t.Errorf("started %d times, want %d", n, tt.want.starts)
			}
			if n := f.finishes(id); n != tt.want.starts {
				t.Errorf("policy finished %d runs, want %d", n, tt.want.starts)
			}
			f.idle()
			// The record in the store says the same.
			rec, err := f.d.st.Tasks.Get(id)
			if err != nil || string(rec.State) != tt.want.state || string(rec.ErrorKind) != tt.want.code {
				t.Errorf("stored %+v, %v", rec, err)
			}
		})
	}
}

// TestCancelQueued: a queued task's cancel ends it at once, without a run.
func TestCancelQueued(t *testing.T) {
	f := newFixture(t, newFakeRunner(), "", func(c *Config) { c.CPU = 0.5 })
	first := f.submit("sleep", "1")
	f.runOf(first).begin()
	second := f.submit("true") // no room: queued
	if _, err := f.d.Cancel(f.who, second); err != nil {
		t.Fatal(err)
	}
	got := f.waitFor(second, api.StateCancelled)
	if got.ErrorCode != "cancelled" || f.rt.startCount(second) != 0 || f.finishes(second) != 0 {
		t.Errorf("cancelled queued task: %+v, %d starts, %d finishes", got, f.rt.startCount(second), f.finishes(second))
	}
	r := f.runOf(first)
	r.finish(task.End{Started: true, StartedAt: r.startedAt})
	f.waitFor(first, api.StateSucceeded)
	f.idle()
}

// TestStartFailsNoSpace: a run that cannot even be prepared because the
// state directory is full goes back to the queue; it is not failed.
func TestStartFailsNoSpace(t *testing.T) {
	rt := newFakeRunner()
	rt.startErr = fmt.Errorf("write request.json: %w", syscall.ENOSPC)
	f := newFixture(t, rt, "", nil)
	id := f.submit("true")
	deadline := time.Now().Add(5 * time.Second)
	for {
		tk, _ := f.d.Get(f.who, id)
		if tk.State == api.StateQueued && strings.Contains(tk.Error, "state directory is full") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %+v: want queued again after a full disk", tk)
		}
		time.Sleep(time.Millisecond)
	}
	rt.mu.Lock()
	rt.startErr = nil
	rt.autoRun = true
	rt.mu.Unlock()
	r := f.runOf(id)
	<-r.started
	r.finish(task.End{Started: true, StartedAt: r.startedAt})
	if got := f.waitFor(id, api.StateSucceeded); got.Attempt != 0 {
		t.Errorf("attempt %d after runs that could not be prepared, want 0: a full disk is not the task's fault", got.Attempt)
	}
	f.idle()
}

// TestRecovery writes the state an earlier daemon left — records, metas
// and what its runs left behind — and checks what a new daemon does with
// each, then that the node is idle once the followed runs end.
func TestRecovery(t *testing.T) {
	state := t.TempDir()
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	mk := func(id string, s task.State, runner int) *task.Record {
		r := &task.Record{ID: id, Signature: "sig-" + id, State: s, SubmittedAt: now, RunnerPID: runner,
			Spec: task.Spec{Argv: []string{"true"}, Dir: "/tmp"}}
		if s == task.Running {
			at := now.Add(time.Second)
			r.StartedAt = &at
		}
		return r
	}
	m, _ := encodeMeta(meta{Requests: task.Limits{CPUCores: 0.1, MemoryMB: 10}})
	recs := []*task.Record{
		mk("alive", task.Running, 0), mk("exited", task.Running, 0), mk("oom", task.Running, 0),
		mk("procs", task.Running, 0), mk("lost", task.Running, 0), mk("queued", task.Queued, 0),
		mk("local-dead", task.Running, 1<<30), mk("local-live", task.Running, 1),
	}
	aux := [][]byte{m, m, m, m, m, m, nil, nil}
	if err := st.Tasks.PutBatchAux(auxTable, recs, aux); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rt := newFakeRunner()
	ended := task.End{Started: true, StartedAt: now.Add(time.Second), FinishedAt: now.Add(2 * time.Second)}
	oom := ended
	oom.OOMKills, oom.Code = 1, 137
	rt.left = map[string]leftover{
		"alive":  {Dir: true, ShimAlive: true},
		"exited": {Dir: true, Exit: &ended, Started: true},
		"oom":    {Dir: true, Exit: &oom, Started: true},
		"procs":  {Dir: true, Started: true, Procs: true},
		"lost":   {Dir: true, Started: true},
	}
	rt.autoRun = true
	f := newFixture(t, rt, state, nil)

	// Ended while the daemon was down: finalized, never run again.
	if got := f.waitFor("exited", api.StateSucceeded); f.rt.startCount("exited") != 0 {
		t.Errorf("exited task ran again: %+v", got)
	}
	// OOM-killed while down: failed oom (the fit policy does not retry).
	if got := f.waitFor("oom", api.StateFailed); got.ErrorCode != "oom" || !got.OOMKilled {
		t.Errorf("oom task: %+v", got)
	}
	// Lost: run again.
	r := f.runOf("lost")
	r.finish(task.End{Started: true, StartedAt: r.startedAt})
	if got := f.waitFor("lost", api.StateSucceeded); got.Attempt != 1 {
		t.Errorf("lost task attempt %d, want 1", got.Attempt)
	}
	// Queued: runs.
	r = f.runOf("queued")
	r.finish(task.End{Started: true, StartedAt: r.startedAt})
	f.waitFor("queued", api.StateSucceeded)
	// Followed: the re-attached shim and the adopted processes.
	r = f.rt.run("alive")
	r.begin()
	f.waitFor("alive", api.StateRunning)
	r.finish(task.End{Started: true, StartedAt: r.startedAt, Code: 2})
	f.waitFor("alive", api.StateFailed)
	r = f.rt.run("procs")
	r.finish(task.End{Started: true, StartedAt: r.startedAt, Code: -1, Unknown: true})
	if got := f.waitFor("procs", api.StateFailed); got.ErrorCode != "lost" {
		t.Errorf("adopted task: %+v", got)
	}
	// Local mode's records: a dead runner's is ended, a live one's left.
	if got, _ := f.d.Get(f.who, "local-dead"); got.State != api.StateFailed {
		t.Errorf("local record of a dead runner: %+v", got)
	}
	if got, _ := f.d.Get(f.who, "local-live"); got.State != api.StateRunning {
		t.Errorf("local record of a live runner: %+v", got)
	}
	if f.rt.startCount("local-dead")+f.rt.startCount("local-live") != 0 {
		t.Error("the daemon ran a local-mode record")
	}
	f.idle()
}

// TestRequestsOverTheNode: under predict a request is a first guess (users
// declare about twice what they use), so one larger than the node is
// accepted and starts at most at the node's size; under fit requests are
// the limits, and one that can never fit is refused at submit.
func TestRequestsOverTheNode(t *testing.T) {
	big := &api.SubmitRequest{Spec: api.Spec{Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/tmp"},
		Requests: &api.Limits{CPUCores: 0.5, MemoryMB: 4000}}
	t.Run("predict", func(t *testing.T) {
		rt := newFakeRunner()
		rt.autoRun = true
		f := newFixture(t, rt, "", func(c *Config) { c.Policy = PolicyPredict; c.Sched.TrainEvery = -1 })
		tk, err := f.d.Submit(f.who, big)
		if err != nil {
			t.Fatalf("submit of 4000 MB on a 1000 MB node: %v", err)
		}
		r := f.runOf(tk.ID)
		<-r.started
		if r.limits.MemoryMB <= 0 || r.limits.MemoryMB > 1000 {
			t.Errorf("started with a %.0f MB memory limit on a 1000 MB node", r.limits.MemoryMB)
		}
		r.finish(task.End{Started: true, StartedAt: r.startedAt})
		f.waitFor(tk.ID, api.StateSucceeded)
		f.idle()
	})
	t.Run("fit", func(t *testing.T) {
		f := newFixture(t, newFakeRunner(), "", nil)
		_, err := f.d.Submit(f.who, big)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "can never fit") {
			t.Fatalf("fit: submit of 4000 MB on a 1000 MB node: %v, want 400 can never fit", err)
		}
	})
}
