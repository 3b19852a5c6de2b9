// Package ledger owns the node's resource calendar: how much CPU, memory,
// block IO and network the node can give to tasks (Capacity), and who holds
// which part of it over time. Amounts are resource.Vector values in the
// resource package's units (CPU in cores, memory in MiB, IO ops/s, Mbps).
//
// A task waiting in the queue holds a soft reservation: its predicted Curve
// (quantiles of usage per dimension by time since start) anchored at the
// earliest start at which it fits beside every other reservation and every
// committed allocation — so a task that peaks late may overlap one that peaks
// early. A reservation that does not fit is a Fit value with a Reason, never
// an error. Soft reservations expire after a TTL past their planned start and
// are re-sized when predictions change. Commit turns a soft reservation into
// a hard allocation: flat limits held from the commit until Adjust or
// Release. CommitPlan does the same for a task whose curve is known, and
// keeps the rest of its curve in the calendar instead of a flat hold, so the
// queue is planned beside what running tasks will use, not beside their
// peaks; their limits are still accounted exactly against capacity. Release is idempotent and safe without a prior reserve; using a
// released reservation is ErrReleased. Whatever is released, expired or shrunk
// returns to the pool at once; Generation and Notify tell the scheduler to
// look at its queue again.
//
// The ledger never reads the clock or touches the OS: every time is passed
// in. (Detect, in detect_linux.go, is the one function that reads the host,
// to size the node; the Ledger does not call it.)
//
// Data structure: the calendar is a ring of fixed-width time slots covering a
// horizon, holding the soft reservations' usage per slot in integer
// milli-units, under a segment tree with lazy range-add and per-dimension max
// (see calendar.go). Hard allocations held flat are open-ended, so they are
// one vector beside the tree rather than entries in it; planned ones are in
// the tree like soft reservations (their first slot raised to their limits),
// and are held flat again once they run past their plan. The earliest-fit search
// jumps from each conflict straight past it, so it costs a few O(log slots)
// tree descents per step of the curve instead of a scan of the calendar.
//
// A Ledger is safe for concurrent use; one mutex guards all of its state.
package ledger
