package profile

import (
	"crypto/rand"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// These tests measure real workloads in real cgroups. Other builds may be
// using the CPUs at the same time, so the tolerances are the brief's wide
// ones; each also checks the measurement against an independent source
// where there is one.

// window samples s over d after priming it, and returns the second sample.
func window(t *testing.T, s *Sampler, d time.Duration) resource.Sample {
	t.Helper()
	first := s.Sample(time.Now())
	for _, dim := range []resource.Dim{resource.CPU, resource.IO, resource.Net} {
		if first.Avail.Has(dim) {
			t.Errorf("first sample has rate dimension %s in Avail", dim)
		}
	}
	time.Sleep(d)
	return s.Sample(time.Now())
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tol)
	} else {
		t.Logf("%s = %.3f (want %.3f ± %.3f)", what, got, want, tol)
	}
}

func newTestSampler(t *testing.T, cg *testCgroup, nm *NetMonitor) *Sampler {
	t.Helper()
	s, err := NewSampler(cg.Target, nm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestSamplerCPU(t *testing.T) {
	cg := newTestCgroup(t)
	s := newTestSampler(t, cg, nil)
	cg.boostCPU(t)
	c := startChild(t, "cpu", "0.5")
	cg.add(t, c.pid())
	c.start(t)
	time.Sleep(300 * time.Millisecond)

	// On a hybrid host the Sampler reads v1 cpuacct; a second one given
	// only the v2 directory reads cpu.stat, and must agree.
	var v2 *Sampler
	if cg.V2 != "" && len(cg.V1) > 0 {
		v2 = newTestSampler(t, &testCgroup{Target: Target{V2: cg.V2}}, nil)
	}

	now := time.Now()
	_ = s.Sample(now)
	if v2 != nil {
		_ = v2.Sample(now)
	}
	cpu0, t0 := procCPU(t, c.pid()), time.Now()
	time.Sleep(3 * time.Second)
	now = time.Now()
	got := s.Sample(now)
	procCores := float64(procCPU(t, c.pid())-cpu0) / float64(time.Since(t0))

	if !got.Avail.Has(resource.CPU) {
		t.Fatalf("CPU not available: %+v", got)
	}
	within(t, "CPU cores", got.CPU, 0.5, 0.1)
	// /proc/<pid>/stat counts in 10 ms ticks: ±1 tick at each end over 3 s.
	within(t, "CPU cores against /proc/<pid>/stat", got.CPU, procCores, 0.03)
	if v2 != nil {
		within(t, "CPU cores from v2 cpu.stat against v1 cpuacct", v2.Sample(now).CPU, got.CPU, 0.01)
	}
}

func TestSamplerMemory(t *testing.T) {
	cg := newTestCgroup(t)
	s := newTestSampler(t, cg, nil)
	c := startChild(t, "mem", "300")
	cg.add(t, c.pid())
	c.start(t)

	got := s.Sample(time.Now())
	if !got.Avail.Has(resource.Memory) {
		t.Skipf("no memory controller for the test cgroup: %+v", cg.Target)
	}
	within(t, "working set MB", got.MemoryMB, 300, 30)
	within(t, "RSS MB", got.RSSMB, 300, 30)
	if got.PeakMB < got.MemoryMB {
		t.Errorf("peak %.1f MB below working set %.1f MB", got.PeakMB, got.MemoryMB)
	}
	c.stop()
	after := s.Sample(time.Now())
	if !after.Avail.Has(resource.Memory) || after.MemoryMB > 30 {
		t.Errorf("after exit: working set %.1f MB (avail %v), want near 0", after.MemoryMB, after.Avail)
	}
	if after.PeakMB < 270 {
		t.Errorf("after exit: peak %.1f MB, want the ~300 MB high-water mark", after.PeakMB)
	}
}

func TestSamplerIO(t *testing.T) {
	cg := newTestCgroup(t)
	// A file on a real disk (t.TempDir is under $TMPDIR, ext4 on the test
	// hosts); O_DIRECT reads of it bypass the page cache.
	path := filepath.Join(t.TempDir(), "data")
	writeRandomFile(t, path, 64<<20)
	if _, err := os.Stat(filepath.Join(cg.V2, "io.stat")); cg.V2 == "" || err != nil {
		dir, ok := cg.V1["blkio"]
		if !ok {
			t.Skip("no io controller in v2 and no v1 blkio hierarchy")
		}
		if err := EnableV1IOAccounting(dir, path); err != nil {
			t.Skipf("cannot enable blkio accounting for %s: %v", path, err)
		}
	}
	s := newTestSampler(t, cg, nil)
	cg.boostCPU(t)
	const rate = 200
	c := startChild(t, "io", path, strconv.Itoa(rate))
	cg.add(t, c.pid())
	c.start(t)
	time.Sleep(200 * time.Millisecond)

	got := window(t, s, 3*time.Second)
	if !got.Avail.Has(resource.IO) {
		t.Fatalf("IO not available: %+v", got)
	}
	within(t, "IOPS", got.IOPS, rate, 0.2*rate)
}

func writeRandomFile(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// openTestNetMonitor attaches a NetMonitor to cg's v2 parent, or skips.
func openTestNetMonitor(t *testing.T, cg *testCgroup) *NetMonitor {
	t.Helper()
	if cg.root == "" {
		t.Skip("no cgroup v2 hierarchy to attach eBPF programs to")
	}
	nm, err := OpenNetMonitor(cg.root, nil)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("eBPF network monitor: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nm.Close(); err != nil {
			t.Error(err)
		}
	})
	return nm
}

func TestSamplerNet(t *testing.T) {
	cg := newTestCgroup(t)
	nm := openTestNetMonitor(t, cg)
	s := newTestSampler(t, cg, nm)
	cg.boostCPU(t)
	const mbps = 40
	c := startChild(t, "net", strconv.Itoa(mbps))
	cg.add(t, c.pid())
	c.start(t)
	time.Sleep(300 * time.Millisecond)

	got := window(t, s, 3*time.Second)
	if !got.Avail.Has(resource.Net) {
		t.Fatalf("Net not available: %+v", got)
	}
	// The child talks to itself: its data leaves and arrives in its own
	// cgroup (plus headers and ACKs, well under the tolerance).
	within(t, "net out Mbps", got.NetOutMbps, mbps, 0.2*mbps)
	within(t, "net in Mbps", got.NetInMbps, mbps, 0.2*mbps)

	rx, tx, ok := nm.Counters(cg.CgroupID)
	if !ok || rx == 0 || tx == 0 {
		t.Errorf("Counters = %d, %d, %v; want both > 0", rx, tx, ok)
	}
	if err := nm.Forget(cg.CgroupID); err != nil {
		t.Fatal(err)
	}
	if rx2, tx2, ok := nm.Counters(cg.CgroupID); ok && (rx2 >= rx || tx2 >= tx) {
		t.Errorf("after Forget: %d, %d; want a fresh entry", rx2, tx2)
	}
}

// TestSamplerNetIdle checks that a task without traffic measures 0 Mbps,
// available, rather than "unknown".
func TestSamplerNetIdle(t *testing.T) {
	cg := newTestCgroup(t)
	nm := openTestNetMonitor(t, cg)
	s := newTestSampler(t, cg, nm)
	got := window(t, s, 50*time.Millisecond)
	if !got.Avail.Has(resource.Net) || got.NetMbps() != 0 {
		t.Errorf("idle task: %+v, want Net available and 0", got)
	}
}

// TestNetLimit polices a greedy loopback TCP sender and checks what the
// receiver (this process, outside the cgroup) gets.
func TestNetLimit(t *testing.T) {
	cg := newTestCgroup(t)
	nm := openTestNetMonitor(t, cg)
	s := newTestSampler(t, cg, nm)
	const limit = 40.0
	if err := nm.SetNetLimit(cg.CgroupID, limit); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := startChild(t, "netsend", ln.Addr().String())
	cg.add(t, c.pid())
	c.start(t)
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// measure returns the receive rate over d, in Mbit/s.
	measure := func(d time.Duration) float64 {
		buf := make([]byte, 256<<10)
		var n int64
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(d))
		for {
			m, err := conn.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		return float64(n) * 8 / 1e6 / time.Since(start).Seconds()
	}
	measure(500 * time.Millisecond) // past the initial burst
	_ = s.Sample(time.Now())
	got := measure(4 * time.Second)
	smp := s.Sample(time.Now())
	t.Logf("limited: receiver %.1f Mbit/s, sampler out %.1f Mbit/s", got, smp.NetOutMbps)
	if got > 1.3*limit || got < 0.25*limit {
		t.Errorf("receiver got %.1f Mbit/s under a %v Mbit/s limit; want (%.0f, %.0f]", got, limit, 0.25*limit, 1.3*limit)
	}
	if smp.NetOutMbps > 1.3*limit*1.05 {
		t.Errorf("sampler measured %.1f Mbit/s out under a %v Mbit/s limit", smp.NetOutMbps, limit)
	}
	if _, txDrops, ok := nm.Drops(cg.CgroupID); !ok || txDrops == 0 {
		t.Errorf("no egress drops recorded (ok=%v)", ok)
	}

	nm.ClearNetLimit(cg.CgroupID)
	free := measure(time.Second)
	t.Logf("unlimited: receiver %.1f Mbit/s", free)
	if free < 3*limit {
		t.Errorf("after ClearNetLimit the sender reached only %.1f Mbit/s", free)
	}
}
