package profile

import "testing"

// benchSampleCgroup benchmarks Sample on real cgroups made for the
// benchmark: on a hybrid host CPU from v2 cpu.stat and memory and IO from
// v1, as in production there.
func benchSampleCgroup(b *testing.B) {
	b.Run("cgroup", func(b *testing.B) {
		cg := newTestCgroup(b)
		benchSampler(b, cg.Target, nil)
	})
	b.Run("cgroup+net", func(b *testing.B) {
		cg := newTestCgroup(b)
		if cg.root == "" {
			b.Skip("no cgroup v2 hierarchy")
		}
		nm, err := OpenNetMonitor(cg.root, nil)
		if err != nil {
			b.Skipf("eBPF network monitor: %v", err)
		}
		defer nm.Close()
		// An entry as a task with traffic has one.
		if err := nm.counters.Put(&cg.CgroupID, &netValue{RxBytes: 1, TxBytes: 1}); err != nil {
			b.Fatal(err)
		}
		benchSampler(b, cg.Target, nm)
	})
}
