package profile

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// A fake cgroupfs: plain files in t.TempDir laid out as the kernel lays out
// a task's cgroup directories. The Sampler cannot tell the difference
// (it opens files once and preads them), which lets these tests pin the
// parsing and the arithmetic exactly, on any OS.

const mib = 1 << 20

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		if v /= 10; v == 0 {
			return string(b[i:])
		}
	}
}

// v1MemStat is a cgroup v1 memory.stat with the local counters (which the
// Sampler must not use) set to decoys.
func v1MemStat(inactiveFile, rss uint64) string {
	return "cache 1\nrss 2\nrss_huge 0\nshmem 0\nmapped_file 0\ninactive_file 3\nactive_file 4\n" +
		"hierarchical_memory_limit 9223372036854771712\n" +
		"total_cache 5\ntotal_rss " + itoa(rss) + "\ntotal_inactive_anon 0\ntotal_active_anon 0\n" +
		"total_inactive_file " + itoa(inactiveFile) + "\ntotal_active_file 6\ntotal_unevictable 0\n"
}

func v2MemStat(inactiveFile, anon uint64) string {
	return "anon " + itoa(anon) + "\nfile 7\nkernel 8\nkernel_stack 0\nsock 0\nshmem 0\n" +
		"active_anon 0\ninactive_file " + itoa(inactiveFile) + "\nactive_file 9\nunevictable 0\n"
}

// v1IOServiced is a blkio.throttle.io_serviced with two devices.
func v1IOServiced(a, b uint64) string {
	return "254:0 Read " + itoa(a) + "\n254:0 Write 0\n254:0 Sync " + itoa(a) + "\n254:0 Async 0\n254:0 Discard 0\n254:0 Total " + itoa(a) + "\n" +
		"8:0 Read 0\n8:0 Write " + itoa(b) + "\n8:0 Sync 0\n8:0 Async " + itoa(b) + "\n8:0 Discard 0\n8:0 Total " + itoa(b) + "\n" +
		"Total " + itoa(a+b) + "\n"
}

func v2IOStat(r1, w1, r2, w2 uint64) string {
	return "254:0 rbytes=4096 wbytes=8192 rios=" + itoa(r1) + " wios=" + itoa(w1) + " dbytes=0 dios=0\n" +
		"8:16 rbytes=0 wbytes=0 rios=" + itoa(r2) + " wios=" + itoa(w2) + " dbytes=0 dios=7\n"
}

type fakeCase struct {
	name   string
	v1     []string          // controllers given in Target.V1
	v2     bool              // Target.V2 given
	before map[string]string // files at the first sample (paths relative to the fake root)
	after  map[string]string // files rewritten before the second sample, one second later
	want   resource.Sample   // the second sample (Time ignored)
}

// fakeTarget lays out root/v2 and root/<ctrl> directories.
func fakeTarget(root string, c fakeCase) Target {
	t := Target{V1: map[string]string{}}
	if c.v2 {
		t.V2 = filepath.Join(root, "v2")
		_ = os.MkdirAll(t.V2, 0o755)
	}
	for _, ctrl := range c.v1 {
		t.V1[ctrl] = filepath.Join(root, ctrl)
		_ = os.MkdirAll(t.V1[ctrl], 0o755)
	}
	return t
}

func TestSamplerFakeCgroupfs(t *testing.T) {
	cases := []fakeCase{
		{
			name: "v2",
			v2:   true,
			before: map[string]string{
				"v2/cpu.stat":       "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\n",
				"v2/memory.current": itoa(300 * mib),
				"v2/memory.stat":    v2MemStat(100*mib, 150*mib),
				"v2/memory.peak":    itoa(400 * mib),
				"v2/io.stat":        v2IOStat(10, 20, 30, 40),
			},
			after: map[string]string{
				"v2/cpu.stat": "usage_usec 1500000\nuser_usec 1200000\nsystem_usec 300000\nnr_periods 40\nnr_throttled 3\nthrottled_usec 250000\n",
				"v2/io.stat":  v2IOStat(110, 70, 80, 40), // +200 ops
			},
			want: resource.Sample{CPUSeconds: 1.5, CPUThrottledSeconds: 0.25, CPU: 0.5, MemoryMB: 200, RSSMB: 150, PeakMB: 400, IOPS: 200, Avail: resource.SetOf(resource.CPU, resource.Memory, resource.IO)},
		},
		{
			name: "v1",
			v1:   []string{"cpuacct", "cpu", "memory", "blkio"},
			before: map[string]string{
				"cpuacct/cpuacct.usage":            "5000000000\n",
				"cpu/cpu.stat":                     "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
				"memory/memory.usage_in_bytes":     itoa(300*mib) + "\n",
				"memory/memory.stat":               v1MemStat(100*mib, 150*mib),
				"memory/memory.max_usage_in_bytes": itoa(400*mib) + "\n",
				"blkio/blkio.throttle.io_serviced": v1IOServiced(100, 50),
			},
			after: map[string]string{
				"cpuacct/cpuacct.usage":            "6250000000\n", // +1.25 s of CPU
				"cpu/cpu.stat":                     "nr_periods 12\nnr_throttled 2\nthrottled_time 1500000000\n",
				"blkio/blkio.throttle.io_serviced": v1IOServiced(300, 250),
			},
			want: resource.Sample{CPUSeconds: 6.25, CPUThrottledSeconds: 1.5, CPU: 1.25, MemoryMB: 200, RSSMB: 150, PeakMB: 400, IOPS: 400, Avail: resource.SetOf(resource.CPU, resource.Memory, resource.IO)},
		},
		{
			// The host this was written on: v2 without controllers (cpu.stat
			// only), memory and blkio on v1.
			name: "hybrid",
			v2:   true,
			v1:   []string{"cpuacct", "memory", "blkio"},
			before: map[string]string{
				"v2/cpu.stat":                      "usage_usec 999999999\n", // decoy: cpuacct wins
				"v2/memory.pressure":               "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
				"cpuacct/cpuacct.usage":            "0\n",
				"memory/memory.usage_in_bytes":     itoa(64 * mib),
				"memory/memory.stat":               v1MemStat(0, 60*mib),
				"memory/memory.max_usage_in_bytes": itoa(64 * mib),
				"blkio/blkio.throttle.io_serviced": "Total 0\n",
			},
			after: map[string]string{
				"v2/cpu.stat":                      "usage_usec 2999999999\n",
				"cpuacct/cpuacct.usage":            "250000000\n",
				"blkio/blkio.throttle.io_serviced": v1IOServiced(7, 3),
			},
			want: resource.Sample{CPUSeconds: 0.25, CPU: 0.25, MemoryMB: 64, RSSMB: 60, PeakMB: 64, IOPS: 10, Avail: resource.SetOf(resource.CPU, resource.Memory, resource.IO)},
		},
		{
			name: "v2 cpu only: memory and IO unavailable, not zero",
			v2:   true,
			before: map[string]string{
				"v2/cpu.stat": "usage_usec 0\n",
			},
			after: map[string]string{
				"v2/cpu.stat": "usage_usec 2000000\n",
			},
			want: resource.Sample{CPUSeconds: 2, CPU: 2, Avail: resource.SetOf(resource.CPU)},
		},
		{
			name: "v2 without memory.peak keeps a running max",
			v2:   true,
			before: map[string]string{
				"v2/memory.current": itoa(300 * mib),
				"v2/memory.stat":    v2MemStat(0, 300*mib),
			},
			after: map[string]string{
				"v2/memory.current": itoa(100 * mib),
				"v2/memory.stat":    v2MemStat(0, 100*mib),
			},
			want: resource.Sample{MemoryMB: 100, RSSMB: 100, PeakMB: 300, Avail: resource.SetOf(resource.Memory)},
		},
		{
			name: "working set clamps at zero",
			v2:   true,
			before: map[string]string{
				"v2/memory.current": itoa(10 * mib),
				"v2/memory.stat":    v2MemStat(12*mib, mib),
				"v2/memory.peak":    itoa(20 * mib),
			},
			want: resource.Sample{MemoryMB: 0, RSSMB: 1, PeakMB: 20, Avail: resource.SetOf(resource.Memory)},
		},
		{
			name: "memory.stat without the working-set key: memory unavailable",
			v2:   true,
			before: map[string]string{
				"v2/cpu.stat":       "usage_usec 0\n",
				"v2/memory.current": itoa(10 * mib),
				"v2/memory.stat":    "anon 5\nfile 6\n",
			},
			after: map[string]string{"v2/cpu.stat": "usage_usec 10000\n"},
			want:  resource.Sample{CPUSeconds: 0.01, CPU: 0.01, Avail: resource.SetOf(resource.CPU)},
		},
		{
			name: "v1 memory without memory.stat: memory unavailable",
			v1:   []string{"memory", "cpuacct"},
			before: map[string]string{
				"cpuacct/cpuacct.usage":        "0\n",
				"memory/memory.usage_in_bytes": itoa(10 * mib),
			},
			after: map[string]string{"cpuacct/cpuacct.usage": "1000000000\n"},
			want:  resource.Sample{CPUSeconds: 1, CPU: 1, Avail: resource.SetOf(resource.CPU)},
		},
		{
			name: "unparsable counter: that dimension unavailable",
			v2:   true,
			before: map[string]string{
				"v2/cpu.stat": "usage_usec 0\n",
				"v2/io.stat":  v2IOStat(1, 1, 1, 1),
			},
			after: map[string]string{
				"v2/cpu.stat": "usage_usec 12abc\n",
				"v2/io.stat":  v2IOStat(2, 2, 2, 2),
			},
			want: resource.Sample{IOPS: 4, Avail: resource.SetOf(resource.IO)},
		},
		{
			name: "empty io.stat is zero IO, available",
			v2:   true,
			before: map[string]string{
				"v2/io.stat": "",
			},
			want: resource.Sample{IOPS: 0, Avail: resource.SetOf(resource.IO)},
		},
		{
			name: "memory.stat larger than the initial buffer",
			v2:   true,
			before: map[string]string{
				"v2/memory.current": itoa(8 * mib),
				"v2/memory.stat":    strings.Repeat("padding_key 123456789\n", 1000) + v2MemStat(mib, 2*mib),
				"v2/memory.peak":    itoa(9 * mib),
			},
			want: resource.Sample{MemoryMB: 7, RSSMB: 2, PeakMB: 9, Avail: resource.SetOf(resource.Memory)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			target := fakeTarget(root, c)
			writeFiles(t, root, c.before)
			s, err := NewSampler(target, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			t0 := time.Now()
			first := s.Sample(t0)
			if rates := first.Avail & resource.SetOf(resource.CPU, resource.IO, resource.Net); rates != 0 {
				t.Errorf("first sample has rate dimensions %b in Avail", rates)
			}
			if first.Avail.Has(resource.Memory) != c.want.Avail.Has(resource.Memory) {
				t.Errorf("first sample memory available = %v, want %v", first.Avail.Has(resource.Memory), c.want.Avail.Has(resource.Memory))
			}
			writeFiles(t, root, c.after)
			got := s.Sample(t0.Add(time.Second))
			checkSample(t, got, c.want)
		})
	}
}

func checkSample(t *testing.T, got, want resource.Sample) {
	t.Helper()
	if got.Avail != want.Avail {
		t.Errorf("Avail = %04b, want %04b (sample %+v)", got.Avail, want.Avail, got)
	}
	for _, f := range []struct {
		name      string
		dim       resource.Dim
		got, want float64
	}{
		{"CPU", resource.CPU, got.CPU, want.CPU},
		{"MemoryMB", resource.Memory, got.MemoryMB, want.MemoryMB},
		{"RSSMB", resource.Memory, got.RSSMB, want.RSSMB},
		{"PeakMB", resource.Memory, got.PeakMB, want.PeakMB},
		{"IOPS", resource.IO, got.IOPS, want.IOPS},
		{"NetInMbps", resource.Net, got.NetInMbps, want.NetInMbps},
		{"NetOutMbps", resource.Net, got.NetOutMbps, want.NetOutMbps},
		{"CPUSeconds", resource.CPU, got.CPUSeconds, want.CPUSeconds}, // the counter, not a rate
		{"CPUThrottledSeconds", resource.CPU, got.CPUThrottledSeconds, want.CPUThrottledSeconds},
	} {
		if want.Avail.Has(f.dim) && math.Abs(f.got-f.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
}

func TestNewSamplerNothingToMeasure(t *testing.T) {
	for _, c := range []struct {
		name   string
		target func(dir string) Target
	}{
		{"empty target", func(string) Target { return Target{} }},
		{"empty directories", func(dir string) Target {
			return Target{V2: dir, V1: map[string]string{"memory": dir, "cpuacct": dir, "blkio": dir}}
		}},
		{"missing directories", func(dir string) Target {
			return Target{V2: filepath.Join(dir, "gone"), V1: map[string]string{"memory": filepath.Join(dir, "gone")}}
		}},
		{"cgroup id without a monitor", func(string) Target { return Target{CgroupID: 42} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSampler(c.target(t.TempDir()), nil)
			if !errors.Is(err, ErrNoSource) {
				t.Fatalf("err = %v, want ErrNoSource", err)
			}
		})
	}
}

func TestSamplerRateEdges(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"cpu.stat": "usage_usec 0\n"})
	s, err := NewSampler(Target{V2: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_ = s.Sample(t0)
	writeFiles(t, root, map[string]string{"cpu.stat": "usage_usec 100000\n"})
	if got := s.Sample(t0); got.Avail.Has(resource.CPU) {
		t.Errorf("sample at the same instant has CPU %v", got.CPU)
	}
	if got := s.Sample(t0.Add(-time.Second)); got.Avail.Has(resource.CPU) {
		t.Errorf("sample back in time has CPU %v", got.CPU)
	}
	// The base stayed at t0 with 0 µs: 100 ms over 500 ms.
	if got := s.Sample(t0.Add(500 * time.Millisecond)); !got.Avail.Has(resource.CPU) || math.Abs(got.CPU-0.2) > 1e-9 {
		t.Errorf("CPU = %v cores (avail %v), want 0.2", got.CPU, got.Avail.Has(resource.CPU))
	}
	// A read failure in between does not reset the base.
	writeFiles(t, root, map[string]string{"cpu.stat": "garbage\n"})
	if got := s.Sample(t0.Add(time.Second)); got.Avail.Has(resource.CPU) {
		t.Errorf("garbage gave CPU %v", got.CPU)
	}
	writeFiles(t, root, map[string]string{"cpu.stat": "usage_usec 400000\n"})
	if got := s.Sample(t0.Add(1500 * time.Millisecond)); math.Abs(got.CPU-0.3) > 1e-9 {
		t.Errorf("CPU after a failed read = %v cores, want 0.3 (300 ms over 1 s)", got.CPU)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := s.Sample(t0.Add(2 * time.Second)); got.Avail != 0 {
		t.Errorf("Sample after Close: %+v", got)
	}
}

func TestRateCounterRestart(t *testing.T) {
	var r rate
	t0 := time.Now()
	r.observe(1000, t0)
	if v, ok := r.observe(500, t0.Add(time.Second)); !ok || v != 500 {
		t.Errorf("restarted counter: %v, %v; want 500 (its value since the restart)", v, ok)
	}
}

// TestSampleDoesNotAllocate guards the hot path.
func TestSampleDoesNotAllocate(t *testing.T) {
	root := t.TempDir()
	c := fakeCase{v2: true, v1: []string{"memory", "blkio"}}
	target := fakeTarget(root, c)
	writeFiles(t, root, map[string]string{
		"v2/cpu.stat":                      "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\n",
		"memory/memory.usage_in_bytes":     itoa(300 * mib),
		"memory/memory.stat":               v1MemStat(100*mib, 150*mib),
		"memory/memory.max_usage_in_bytes": itoa(400 * mib),
		"blkio/blkio.throttle.io_serviced": v1IOServiced(100, 50),
	})
	s, err := NewSampler(target, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Second)
		_ = s.Sample(now)
	}); n != 0 {
		t.Errorf("Sample allocates %v times per call", n)
	}
}
