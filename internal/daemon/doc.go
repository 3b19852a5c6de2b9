// Package daemon is `prescient serve`: it owns the durable task queue, the
// shims that run tasks, the profiler and the store, and serves the HTTP/JSON
// API of package api on a unix socket (and, if asked, TCP with a bearer
// token).
//
// # Flow
//
//	POST /v1/tasks ─► decode (limits, no unknown fields) ─► sign ─► group commit ─► 202
//	                                                     (one bbolt tx + fsync per batch)
//	dispatcher ─► Admitter.Admit (fits?) ─► run/<id>/{lock,request.json} ─► shim (setsid)
//	shim ─► executor.Start (cgroup, as the submitter's uid/gid) ─► started.json ─► wait
//	     ─► exit.json (atomic, fsynced) ─► exit
//	daemon ─► samples the cgroup every interval ─► TSDB; on the shim's exit: last sample,
//	          remove the cgroup, final record (group commit), Admitter.Release
//
// # Durability
//
// A task is in tasks.db (fsynced) before the submit is answered. The
// shim, not the daemon, is the task's parent: it runs in its own session,
// so a daemon killed with SIGKILL leaves it and the task running, and it
// writes how the task ended to exit.json. The run directory's lock file is
// taken by the daemon before the shim exists and inherited by it (flock
// belongs to the open file description), so "lock held" means exactly "a
// shim for this task lives". A restarted daemon (recover) re-attaches live
// shims, finalizes tasks whose exit.json exists — never re-running one that
// ended — follows a task whose shim died through its cgroup, and requeues
// (up to Config.MaxAttempts) a run that was lost without an exit status.
//
// # Logs
//
// Log files are written by the root shim and read by the daemon in
// directories only root can change, through directory descriptors that
// never follow a symlink; a reader refuses anything but the task's regular
// file (logdir.go). Rotation bounds each stream; retention (retention.go)
// bounds all tasks' logs by removing ended tasks' directories, oldest
// first, and records each removal in the task's meta.
//
// # Concurrency
//
// Daemon.mu guards the queue, the job table and the subscribers; each
// job's sampler has its own mutex. All store writes go through one
// committer goroutine, which batches them. The log retention goroutine
// owns its measure of the logs' disk use. Run starts the loops (committer,
// dispatcher, sampler, log retention, one goroutine per running task) and
// the servers in one errgroup and returns when its context is cancelled;
// Close then closes the store. Signals are handled by the caller (internal/cli serve).
//
// # Seams
//
// Admitter decides when a queued task starts; FitAdmitter fits declared
// requests against capacity. The predicted-curve ledger (internal/ledger)
// is meant to plug in there.
package daemon
