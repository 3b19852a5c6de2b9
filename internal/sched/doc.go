// Package sched is Prescient's scheduler loop: it turns predicted resource
// curves into soft reservations, commits them as hard cgroup limits when
// they are due, follows every running task sample by sample and adjusts its
// limits, and reclaims capacity the moment it is freed.
//
// The flow, each step a method of Scheduler (the caller owns the
// goroutines; Scheduler is a synchronous state machine behind one mutex):
//
//	Enqueue   features → Predictor → curve (clamped to capacity, floored by
//	          an OOM retry) → ledger.SoftReserve at the earliest start at
//	          which it fits beside everything else → queue
//	Dispatch  expire lapsed reservations; among the queued tasks whose
//	          reservation is due, in priority order (FIFO within a
//	          priority, aged), start those that also fit the *measured*
//	          free capacity: ledger.Commit of the hard limit (upper
//	          quantile of the next window + headroom) and the soft memory
//	          limit (p50) — a Start for the caller to launch
//	Replan    release and re-reserve the first ReplanWindow queued tasks in
//	          priority order, so returned capacity and newly arrived higher
//	          priorities take effect at once
//	Observe   one sample of a running task: raise limits ahead of predicted
//	          or observed growth (fast), lower under-used limits after a run
//	          of low samples (slow), act on node memory pressure by evicting
//	          a lower-priority task before the kernel OOM-kills anything
//	Finish    release at once; an OOM-killed or evicted task is requeued
//	          with a larger memory estimate (max(×1.2, +100 MB), capped)
//	          up to RetryLimit times
//
// Backfill: every queued task holds its own reservation in the calendar,
// placed at the earliest start where its predicted curve fits beside all
// reservations made before it. A task further back in the queue whose curve
// fits a hole before the head's reserved start is due earlier and starts
// earlier — Slurm's conservative backfill, with predicted curves instead of
// declared limits — and by construction it never delays the head. No
// starvation: a reservation, once placed, is not taken by anyone else; and
// Replan orders by a priority that ages with waiting time, so a task passed
// over by newer higher-priority tasks rises until it is placed first.
//
// Every change of a task's allocation is an Allocation with its time,
// limits, intended soft limit and reason (commit, adjust_up, adjust_down,
// oom_retry, evict, …).
//
// The package never reads the clock or touches the OS: time comes from a
// Clock, limits go out through the Executor interface (Update, and
// optionally SetSoftMemory, Evict), so the tests drive
// the same code the daemon runs.
package sched
