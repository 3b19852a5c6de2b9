package profile

import (
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// BenchmarkSample measures the CPU cost of one Sample of one task: on a fake
// cgroupfs (files on the test's disk; parsing plus preads) and, where the
// host allows, on real cgroups with and without the eBPF counter lookup.
// Time advances by a fixed second per sample.
func BenchmarkSample(b *testing.B) {
	b.Run("fake-v2", func(b *testing.B) {
		root := b.TempDir()
		target := fakeTarget(root, fakeCase{v2: true})
		writeFiles(b, root, map[string]string{
			"v2/cpu.stat":       "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
			"v2/memory.current": itoa(300 * mib),
			"v2/memory.stat":    v2MemStat(100*mib, 150*mib),
			"v2/memory.peak":    itoa(400 * mib),
			"v2/io.stat":        v2IOStat(10, 20, 30, 40),
		})
		benchSampler(b, target, nil)
	})
	b.Run("fake-v1", func(b *testing.B) {
		root := b.TempDir()
		target := fakeTarget(root, fakeCase{v1: []string{"cpuacct", "memory", "blkio"}})
		writeFiles(b, root, map[string]string{
			"cpuacct/cpuacct.usage":            "5000000000\n",
			"memory/memory.usage_in_bytes":     itoa(300 * mib),
			"memory/memory.stat":               v1MemStat(100*mib, 150*mib),
			"memory/memory.max_usage_in_bytes": itoa(400 * mib),
			"blkio/blkio.throttle.io_serviced": v1IOServiced(100, 50),
		})
		benchSampler(b, target, nil)
	})
	benchSampleCgroup(b)
}

func benchSampler(b *testing.B, target Target, nm *NetMonitor) {
	b.Helper()
	s, err := NewSampler(target, nm)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1e9, 0)
	var avail resource.Set
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		avail = s.Sample(now).Avail
	}
	b.ReportMetric(float64(countDims(avail)), "dims")
}

func countDims(d resource.Set) int {
	n := 0
	for _, x := range []resource.Dim{resource.CPU, resource.Memory, resource.IO, resource.Net} {
		if d.Has(x) {
			n++
		}
	}
	return n
}

func BenchmarkParseMemoryStatV1(b *testing.B) {
	stat := []byte(v1MemStat(100*mib, 150*mib))
	var out [2]uint64
	b.SetBytes(int64(len(stat)))
	b.ReportAllocs()
	for b.Loop() {
		if parseFlatKeyed(stat, memKeysV1, out[:]) != 3 {
			b.Fatal("keys not found")
		}
	}
}
