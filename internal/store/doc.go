// Package store owns Prescient's durable state: the resource samples every
// task produced and the records of the tasks themselves.
//
// Two embedded engines do the work, each in its own file under the state
// directory:
//
//	<stateDir>/tasks.db   bbolt: task.Record by id, plus indexes
//	                      signature→ids, state→ids and time→ids (newest first)
//	<stateDir>/tsdb/      the Prometheus TSDB used as a library: one series per
//	                      task and dimension, labelled task, sig and dim
//
// [Open] opens both; [OpenTasks] and [OpenSamples] open one each.
//
// # Samples
//
// [Samples] stores [resource.Sample] values as seven float series per task,
// dim = cpu_cores | mem | rss | peak | io | net_in | net_out, in resource's
// units. A dimension absent from Sample.Avail is not written at all, so a
// read gives it back as unavailable, never as zero. Series references are
// cached per task, so a steady stream of appends never hashes label sets.
//
// State directories written before CPU was counted in cores hold a
// dim = cpu series in percent of one core instead of cpu_cores; reads
// convert it (÷ 100), so old and new curves read alike. Nothing writes it.
//
// Timestamps have millisecond resolution (the TSDB's); sampling every 100 ms
// is well inside that. Two samples of one task in the same millisecond
// collide: an identical one is dropped, a different one is rejected with
// [ErrDuplicate]. Values are rounded to binary fractions so that the XOR
// chunk encoding compresses them: CPU to 2^-13 core (≈ 0.012 %), memory to 1 KiB
// (exact for the kernel's page-granular counters), IO to 1/128 op/s and
// network to 1/1024 Mbit/s (≈ 1 kbit/s).
//
// Each Append call is one TSDB transaction. It is made durable against a
// process crash by the TSDB's write-ahead log (tsdb/wal), which is written at
// commit but, as in Prometheus, fsynced only when a segment fills: a power
// loss can lose the last seconds of samples. The head is cut into persisted
// 2 h blocks by the TSDB's own background loop; retention (default 30 days)
// deletes whole blocks older than that, measured back from the newest
// persisted block, not from the wall clock.
//
// # Tasks
//
// [Tasks] keeps one [task.Record] per id in bbolt, in a versioned JSON
// envelope, and keeps its indexes in the same transaction as the record, so
// a crash never leaves an index pointing at a state the record does not
// have. Every commit is fsynced (bbolt's default). [NewID] makes the ids:
// ULIDs, sortable by creation time.
//
// Only one process may open a state directory at a time. Both engines take
// an exclusive lock; a second [Open] fails after a short wait with
// [ErrLocked] and, on Linux, the pid that holds the lock.
//
// # Concurrency
//
// All methods of [Store], [Samples] and [Tasks] are safe for concurrent use.
// Close is idempotent and waits for calls in flight.
package store
