package daemon

import (
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// Memory the daemon no longer uses goes back to the kernel within
// trimEvery. Its live heap at rest is small (about 10-15 MB with 1,000
// ended tasks and 200 queued), but its peaks are not: loading the
// predictor's history at start, and the TSDB compacting (its index
// writer alone holds 25 MB while it writes a block), each raise the heap
// for a moment; and requests (the dashboard polling) leave garbage that a
// quiet daemon may not collect for minutes, because the next collection
// waits until the heap doubles its live size. The Go runtime returns
// freed pages only slowly: 80-110 MB of RSS an hour after a start that
// needed that much for a few seconds. A soft memory limit (GOMEMLIMIT)
// would hold RSS down too, but would make the collector work without
// rest once a large history's live heap passes it; trimming after the
// fact costs one collection at most every trimEvery, and only when there
// is something to give back.
const (
	trimEvery = 30 * time.Second
	// trimOver is how much reclaimable heap is worth a collection.
	trimOver = 8 << 20
)

// trimLoop returns idle heap memory to the kernel every trimEvery when
// more than trimOver of it could go.
func (d *Daemon) trimLoop() {
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
			d.trim()
		}
	}
}

// trimSamples are the runtime metrics trim reads: the live heap as of the
// last collection, the heap's objects now (live, and dead ones not yet
// swept: the garbage since), and free heap not returned to the kernel.
var trimSamples = [...]string{"/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes", "/memory/classes/heap/free:bytes"}

// reclaimable is what a collection and a scavenge would give back now:
// the garbage made since the last collection and the freed heap not yet
// returned. (An earlier trim counted only the second, and so never acted
// on a quiet daemon whose garbage no collection had freed: 87 MB of RSS
// with the dashboard open against 40 MB closed.) Reading runtime/metrics
// does not stop the world.
func reclaimable() uint64 {
	var s [len(trimSamples)]rtmetrics.Sample
	for i, n := range trimSamples {
		s[i].Name = n
	}
	rtmetrics.Read(s[:])
	live, objects, free := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	garbage := uint64(0)
	if objects > live {
		garbage = objects - live
	}
	return garbage + free
}

// trim returns reclaimable heap memory to the kernel if enough of it is
// held; it reports whether it did.
func (d *Daemon) trim() bool {
	if reclaimable() < trimOver {
		return false
	}
	debug.FreeOSMemory()
	return true
}
