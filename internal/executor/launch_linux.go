//go:build linux

package executor

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// launch starts cmd so that its first instruction already runs inside tc:
// cloned into the v2 cgroup with CLONE_INTO_CGROUP, and forked from a
// thread that sits in the task's v1 cgroups (see startMigrated). settle,
// if set, runs once the child has started and the launching thread has
// left the task's pids cgroup; its error fails the launch (the child then
// runs, and the caller must kill it).
func (e *Executor) launch(cmd *exec.Cmd, tc *taskCgroup, settle func() error) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if tc.dirs.V2 != "" {
		fd, err := unix.Open(tc.dirs.V2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", tc.dirs.V2, err)
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = fd
	}
	if len(tc.v1Dirs) == 0 {
		if err := cmd.Start(); err != nil {
			return err
		}
		if settle != nil {
			return settle()
		}
		return nil
	}
	return e.startMigrated(cmd, tc, settle)
}

// startMigrated runs cmd.Start on a locked OS thread that has been moved
// into the task's v1 cgroups, so the child is born there. cgroup v1 has no
// CLONE_INTO_CGROUP, and moving the child after fork would let it run
// unlimited for a moment; a re-exec shim would cost a Go binary start
// (milliseconds). Go forks with CLONE_VFORK, so cmd.Start returns after the
// child has exec'd; the thread then moves back home and is unlocked.
//
// The calling goroutine's own thread is used, which saves a hand-off to
// another thread (a scheduler wake-up: milliseconds on a loaded host). If
// the thread cannot move back home, it moves to the executor's root cgroup
// instead (out of the task's, so the task's limits never apply to the
// caller and its cgroup can still be removed) and stays locked to the
// calling goroutine: no other goroutine ever runs there, and the runtime
// destroys the thread when that goroutine exits.
//
// The main thread is never used: it is the thread-group leader, the owner
// of the process's mm, so while it sat in the task's memory cgroup the
// daemon's own allocations would be charged to the task, and the runtime
// cannot destroy it. From the main thread the work moves to a new
// goroutine, which then must run elsewhere. Threads the runtime creates
// later are cloned by its template thread, never by a locked one, so they
// do not inherit the task's cgroups either.
//
// While the thread is in the task's pids cgroup it takes one slot of
// pids.max, so until it leaves the limit is one higher (Start's slack) and
// settle then writes the exact value. The thread leaves pids first and
// settle follows at once: for those two writes the task could start one
// process beyond its limit, never more, and only if it forks within
// microseconds of exec. The other order would make such an early fork fail
// spuriously instead.
func (e *Executor) startMigrated(cmd *exec.Cmd, tc *taskCgroup, settle func() error) error {
	runtime.LockOSThread()
	if e.h.onMainThread() {
		done := make(chan error, 1)
		go func() { done <- e.startMigrated(cmd, tc, settle) }()
		err := <-done
		runtime.UnlockOSThread()
		return err
	}
	// Enter cpu (first in v1Dirs) last and leave it first: a running
	// thread moved between cpu cgroups is requeued, which on a busy host
	// can cost it a time slice. Only pids goes before it (see settle).
	var moved []int
	var err error
	for i := len(tc.v1Dirs) - 1; i >= 0; i-- {
		if err = e.moveThread(tc.v1Dirs[i]); err != nil {
			break
		}
		moved = append(moved, i)
	}
	started := false
	if err == nil {
		err = cmd.Start()
		started = err == nil
	}
	back := slices.Collect(func(yield func(int) bool) {
		for _, i := range slices.Backward(moved) {
			if !yield(i) {
				return
			}
		}
	})
	if k := slices.IndexFunc(back, func(i int) bool { return tc.v1Dirs[i] == tc.dirs.V1["pids"] }); k > 0 {
		i := back[k]
		back = append([]int{i}, slices.Delete(back, k, k+1)...)
	}
	settled := false
	runSettle := func() {
		if started && settle != nil && !settled {
			settled = true
			err = settle()
		}
	}
	home := true
	for _, i := range back {
		if berr := e.moveThread(tc.v1Home[i]); berr != nil {
			home = false
			rerr := e.moveThread(filepath.Dir(tc.v1Dirs[i]))
			e.log.Error("launch thread cannot go back to its cgroup; it stays locked to its goroutine and ends with it",
				"task", tc.id, "err", berr, "moved_to_root", rerr == nil)
		}
		if tc.v1Dirs[i] == tc.dirs.V1["pids"] {
			runSettle()
		}
	}
	runSettle()
	if home {
		runtime.UnlockOSThread()
	}
	return err
}

// moveThread moves the calling thread into the v1 cgroup dir. It writes
// "0" to tasks, which the kernel reads as "the writing thread" and migrates
// without taking the global threadgroup lock (a writer of an explicit tid
// may wait for an RCU grace period: milliseconds).
func (e *Executor) moveThread(dir string) error {
	return e.h.write(filepath.Join(dir, "tasks"), []byte("0"))
}

// startError classifies an exec failure.
func startError(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %w", err, ErrNotFound)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR), errors.Is(err, unix.ETXTBSY):
		return fmt.Errorf("%w: %w", err, ErrNotExecutable)
	}
	return err
}
