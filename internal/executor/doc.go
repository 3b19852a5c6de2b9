// Package executor runs each task as a real process inside its own cgroup,
// with hard limits (CPU quota, memory, block IO operations, pids, and —
// through a NetLimiter — network bandwidth), its output in log files, its
// exit status and OOM kills recorded (any kill for memory in the task's
// cgroup, not only of its main process; see Exit.OOMKilled), live limit
// updates, a kill that reaches every process in the cgroup, and removal of
// the cgroup afterwards.
//
// # Placement before the first instruction
//
// A task never runs outside its limits, not even for a moment:
//
//   - cgroup v2 (and the unified part of a hybrid host): the child is cloned
//     straight into its cgroup with clone3(CLONE_INTO_CGROUP), through
//     SysProcAttr.UseCgroupFD.
//   - cgroup v1 controllers: the calling goroutine locks its OS thread,
//     moves that one thread into the task's v1 cgroups (writing "0" — "this
//     thread" — to each hierarchy's tasks file, which the kernel does without
//     taking the global threadgroup lock), forks from it, so the child
//     inherits those cgroups, and moves the thread back. The main thread (the
//     thread-group leader, whose cgroup owns the daemon's memory charges) is
//     never used for this; a thread that cannot be moved back stays locked to
//     its goroutine and is destroyed with it, never reused.
//
// After exec the child's new mm is owned by the child, so its memory is
// charged to the task's memory cgroup, and everything it forks inherits the
// same cgroups.
//
// # Layout
//
//	<hierarchy>/<this process's cgroup>/<Config.Root>/<task id>
//
// in each v1 controller used (cpu, cpuacct, memory, blkio, pids, freezer) and
// in the v2 hierarchy. On pure v2 the controllers cpu, memory, io and pids are
// enabled down to Root; if this process's own cgroup holds processes, which
// v2 forbids for a cgroup that delegates controllers, the process first moves
// itself to the leaf "<own>/daemon". A process found in such a leaf (a
// restarted daemon, or a helper it spawned) uses "<own>" as its own cgroup,
// so every Executor on the host agrees on where the root is.
//
// # Libraries
//
// github.com/containerd/cgroups/v3 loads the task cgroups, writes the CPU,
// memory and pids limits on v2 and the CPU and blkio limits on v1, and
// kills through cgroup.kill. This package does the rest
// itself, where the library cannot express what is needed or costs more
// than it gives:
//
//   - v2 io.max "max" to lift a limit (the library writes numbers only, and
//     the kernel rejects 0) and v1 pids.max "max" (the library skips 0);
//   - the v1 memory/memsw pair, in the order the kernel requires (memsw may
//     never be below the limit, also when going back to unlimited; the
//     library orders only two positive values);
//   - the v1 kill: freezer with a deadline (the library's freeze loop has
//     none), SIGKILL to each member, thaw;
//   - v2 controller delegation (the library writes subtree_control in every
//     ancestor up to the mount; this package touches only its own cgroup
//     and below, and names the file it could not write);
//   - the OOM kill counters, v1 memory.oom_control and v2 memory.events,
//     with one strict reader for both (the library's v1 Stat reads every
//     controller), and v2 memory.oom.group;
//   - creating and removing directories: mkdir, to detect an existing
//     task, and rmdir with a retry on EBUSY, which also removes a half-made
//     cgroup on rollback (the library's Delete walks and RemoveAll's);
//   - the thread placement above.
package executor
