//go:build linux

package workload

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRunHoldsCurve checks the workload against the kernel's own accounting
// of this process: CPU time from getrusage and peak RSS.
func TestRunHoldsCurve(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a 2 s script")
	}
	var before unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &before); err != nil {
		t.Fatal(err)
	}
	sc := Script{{Dur: 2 * time.Second, CPU: 0.5, MemoryMB: 64, IOPS: 50, NetMbps: 8}}
	if err := Run(context.Background(), sc, Options{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	var after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &after); err != nil {
		t.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	// 0.5 core for 2 s is 1 s of CPU, plus a little for IO and network.
	if cpu < 800*time.Millisecond || cpu > 1500*time.Millisecond {
		t.Errorf("CPU time %v, want about 1s", cpu)
	}
	if after.Maxrss < 64*1024 { // KiB
		t.Errorf("peak RSS %d KiB, want at least 64 MiB", after.Maxrss)
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Run(ctx, Script{{Dur: time.Hour, CPU: 0.1}}, Options{})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Run after cancel = %v after %v; want ctx error promptly", err, time.Since(start))
	}
}
