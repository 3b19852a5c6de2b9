package daemon

import (
	"runtime"
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
