package daemon

import (
	"runtime"
	"runtime/debug"
	"time"
)

// Memory the daemon no longer uses goes back to the kernel within a
// minute. Its live heap at rest is small (about 10 MB with 1,000 ended
// tasks and 200 queued), but its peaks are not: loading the predictor's
// history at start, and the TSDB compacting its head (the index writer
// alone buffers 12 MB), each raise the heap for a moment, and the Go
// runtime returns freed pages only slowly — 80–110 MB of RSS an hour
// after a start that needed that much for a few seconds. A soft memory
// limit (GOMEMLIMIT) would hold RSS down too, but would make the
// collector work without rest once a large history's live heap passes
// it; trimming after the fact costs one collection a minute at most, and
// only when there is something to give back.
const (
	trimEvery = time.Minute
	// trimOver is how much freed, unreturned heap is worth a collection.
	trimOver = 8 << 20
)

// trimLoop returns idle heap memory to the kernel every trimEvery when
// more than trimOver of it is held.
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

// trim returns idle heap memory to the kernel if enough is held; it
// reports whether it did.
func (d *Daemon) trim() bool {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapIdle-ms.HeapReleased < trimOver {
		return false
	}
	debug.FreeOSMemory()
	return true
}
