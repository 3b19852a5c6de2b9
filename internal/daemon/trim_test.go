package daemon

import (
	"runtime"
	"runtime/debug"
	"testing"
)

var sink []byte

// TestTrim: after trim, the heap the daemon freed but still held is back
// with the kernel (under trimOver), whether or not trim had to act.
func TestTrim(t *testing.T) {
	sink = make([]byte, 64<<20)
	for i := range sink {
		sink[i] = 1
	}
	sink = nil
	runtime.GC()
	d := &Daemon{}
	did := d.trim()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if held := ms.HeapIdle - ms.HeapReleased; held >= trimOver {
		t.Errorf("after trim (acted: %v) %d MB of idle heap still held, want < %d MB", did, held>>20, trimOver>>20)
	}
}

// TestTrimUncollectedGarbage: garbage that no collection has freed yet (a
// quiet daemon after a burst of requests) counts too: trim acts, and
// afterwards neither that garbage nor the freed heap is held.
func TestTrimUncollectedGarbage(t *testing.T) {
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection meanwhile
	for range 32 {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		sink = b
	}
	sink = nil
	if r := reclaimable(); r < 30<<20 {
		t.Fatalf("reclaimable %d MB after 32 MB of garbage, want ≥ 30", r>>20)
	}
	d := &Daemon{}
	if !d.trim() {
		t.Fatal("trim did not act on 32 MB of uncollected garbage")
	}
	if r := reclaimable(); r >= trimOver {
		t.Errorf("after trim %d MB still reclaimable, want < %d MB", r>>20, trimOver>>20)
	}
}
