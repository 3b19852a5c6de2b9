package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/prescient-sched/prescient/internal/store"
)

// BenchmarkTick100Pods is the node agent's steady cost at 100 pods (a
// container and a sandbox each, so 200 cgroups, cgroup v1 layout as on
// this machine): one op is one Tick — find the pods' container cgroups,
// sample each, append to the TSDB (internal/store, in a temporary
// directory). It reports the CPU share of one core at the default 1 s
// step (user+system time per tick / 1 s) and the process's RSS after the
// run (test binary included: an upper bound of the agent's).
func BenchmarkTick100Pods(b *testing.B) {
	h := newFakeHost(b, false)
	rec := &fakeRecorder{}
	ss, err := store.OpenSamples(store.SamplesConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Close()
	a, err := New(Config{Node: "node1", CgroupMount: h.mount, Recorder: rec, Resizer: &fakeResizer{}, Samples: ss})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	for i := range 100 {
		uid := fmt.Sprintf("%08d-2222-3333-4444-555555555555", i)
		ctr := fmt.Sprintf("%064x", 2*i+1)
		sandbox := fmt.Sprintf("%064x", 2*i+2)
		h.use(uid, ctr, 0, 64*mib)
		h.use(uid, sandbox, 0, mib)
		pod := runningPod(uid)
		pod.Name = "pod-" + strconv.Itoa(i)
		pod.Status.ContainerStatuses[0].ContainerID = "containerd://" + ctr
		pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{} // no resize
		a.Sync(ctx, pod)
	}
	t0 := time.Now()
	a.Tick(ctx, t0)
	if s := a.Stats(); s.Containers != 200 {
		b.Fatalf("%d containers found, want 200", s.Containers)
	}
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a.Tick(ctx, t0.Add(time.Duration(i+1)*time.Second))
	}
	b.StopTimer()
	perTick := (cpuTime() - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(perTick)/float64(time.Second)*100, "%core@1s")
	b.ReportMetric(rssMB(), "rss-MB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
