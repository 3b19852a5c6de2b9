package scheduler

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	kscheduler "k8s.io/kubernetes/pkg/scheduler"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/latest"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/profile"

	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

// benchNodes is the node count of scheduler_perf's basic workload
// (SchedulingBasic/5000Nodes), whose CI floor is 680 pods/s.
const benchNodes = 5000

// anyPredictor answers every signature with the same 10-minute curve
// (0.5 cores, memory rising to 1 GiB and back): every pod is placed by
// its curve, as with a warm predictor.
type anyPredictor struct{ resp predictor.PredictResponse }

func (a anyPredictor) Predict(context.Context, predictor.PredictRequest) (predictor.PredictResponse, error) {
	return a.resp, nil
}

func benchPrediction() predictor.PredictResponse {
	p := predictor.PredictResponse{Source: "exact", StepSeconds: 1}
	for i := range 600 {
		m := float64(200+800*min(i, 600-i)/300) * mib
		p.CPU.Curve.P50 = append(p.CPU.Curve.P50, 0.5)
		p.CPU.Curve.Upper = append(p.CPU.Curve.Upper, 0.8)
		p.Memory.Curve.P50 = append(p.Memory.Curve.P50, m)
		p.Memory.Curve.Upper = append(p.Memory.Curve.Upper, m)
	}
	return p
}

func benchNode(i int) *corev1.Node {
	name := fmt.Sprintf("node-%04d", i)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

func benchPodOf(i int, schedulerName string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%06d", i), Namespace: "bench", UID: types.UID(fmtUID(i))},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, Containers: []corev1.Container{{
			Name: "c", Image: "docker.io/local/busybox:1", Command: []string{"work"}, Args: []string{fmt.Sprint(i % 16)},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("500Mi")}},
		}}},
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fmtUID(i int) string { return fmt.Sprintf("uid-%08d", i) }

// BenchmarkSchedulingBasic5000Nodes runs kube-scheduler (the framework of
// k8s.io/kubernetes v1.37, in process) with the Prescient profile over
// 5,000 fake nodes and schedules b.N pods, as scheduler_perf's
// SchedulingBasic does — but against client-go's fake clientset, not an
// API server: it measures the scheduler and the plugin, not etcd. It
// reports pods/s and the plugin's own time per pod.
//
// With -benchtime=Nx, N pods are scheduled in one run.
func BenchmarkSchedulingBasic5000Nodes(b *testing.B) {
	for _, withPlugin := range []bool{false, true} {
		name := "default"
		if withPlugin {
			name = "prescient"
		}
		b.Run(name, func(b *testing.B) { benchScheduling(b, withPlugin) })
	}
}

// benchProfile is the profile a scheduling benchmark runs: kube-scheduler's
// default, or the one deploy/ ships (as kube-scheduler loads it) with the
// plugin answering every pod by benchPrediction; plugin holds the plugin
// once the framework has built it.
func benchProfile(b *testing.B, withPlugin bool) (prof schedconfig.KubeSchedulerProfile, schedName string, registry frameworkruntime.Registry, plugin *atomic.Pointer[Plugin]) {
	cfg, err := latest.Default()
	if err != nil {
		b.Fatal(err)
	}
	prof, schedName = cfg.Profiles[0], corev1.DefaultSchedulerName
	plugin, registry = new(atomic.Pointer[Plugin]), frameworkruntime.Registry{}
	if withPlugin {
		prof = deployedConfig(b).Profiles[0]
		schedName = prof.SchedulerName
		pred := anyPredictor{benchPrediction()}
		registry[Name] = func(ctx context.Context, _ kruntime.Object, h fwk.Handle) (fwk.Plugin, error) {
			p, err := NewWith(ctx, Args{PredictorURL: "http://unused:1"}, h, Deps{Predictor: pred})
			if err == nil {
				plugin.Store(p)
			}
			return p, err
		}
	}
	return prof, schedName, registry, plugin
}

// quietKlog sends klog's output (the framework's, at start-up: one line
// per profile) nowhere until the benchmark ends, so its result lines stay
// whole for benchstat.
func quietKlog(b *testing.B) {
	klog.SetLogger(logr.Discard())
	b.Cleanup(klog.ClearLogger)
}

func benchScheduling(b *testing.B, withPlugin bool) {
	quietKlog(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset()
	var bound atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	cs.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, kruntime.Object, error) {
		if a.GetSubresource() != "binding" {
			return false, nil, nil
		}
		if bound.Add(1) == n {
			close(done)
		}
		return true, nil, nil
	})
	for i := range benchNodes {
		if _, err := cs.CoreV1().Nodes().Create(ctx, benchNode(i), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	prof, schedName, registry, plugin := benchProfile(b, withPlugin)
	inf := informers.NewSharedInformerFactory(cs, 0)
	recorders := profile.RecorderFactory(func(string) events.EventRecorderLogger { return &events.FakeRecorder{} })
	sched, err := kscheduler.New(ctx, cs, inf, nil, recorders,
		kscheduler.WithProfiles(prof), kscheduler.WithFrameworkOutOfTreeRegistry(registry))
	if err != nil {
		b.Fatal(err)
	}
	// The pods exist before the scheduler starts (the fake clientset
	// serialises calls, and a flood of creations would stall the
	// bindings behind it); the clock runs from the scheduler's start to
	// the last binding.
	for i := range b.N {
		if _, err := cs.CoreV1().Pods("bench").Create(ctx, benchPodOf(i, schedName), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	inf.Start(ctx.Done())
	inf.WaitForCacheSync(ctx.Done())
	runtime.GC() // the set-up's garbage (7,000 objects through the fake clientset) is not the scheduler's
	b.ResetTimer()
	cpu0 := cpuTime(b)
	t0 := time.Now()
	go sched.Run(ctx)
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d pods bound after 10 minutes", bound.Load(), b.N)
	}
	el := time.Since(t0)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "pods/s")
	// The process's CPU time (all threads, GC included) per pod: steadier
	// than pods/s on a shared machine, whose wall clock other guests steal.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/pod")
	if p := plugin.Load(); p != nil {
		var total time.Duration
		for _, pt := range p.Stats().Points {
			if pt.Calls > 0 {
				total += pt.Total
			}
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "plugin-µs/pod")
		for name, pt := range p.Stats().Points {
			if pt.Calls > 0 {
				b.Logf("%s: %d calls, %v per pod, %v per call", name, pt.Calls, pt.Total/time.Duration(b.N), pt.Total/time.Duration(pt.Calls))
			}
		}
		if s := p.Stats(); s.PodsByCurve < int64(b.N) {
			b.Errorf("%d of %d pods placed by their curves", s.PodsByCurve, b.N)
		}
	}
}

// BenchmarkPluginCycle5000Nodes is the plugin's own cost for one pod on
// 5,000 nodes: PreFilter, Filter and Score on every node, then Reserve and
// Permit on the best — what the framework would call, without the rest
// of the scheduler. The calendars fill as pods are placed.
func BenchmarkPluginCycle5000Nodes(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewWith(ctx, Args{PredictorURL: "http://unused:1"}, nil, Deps{Predictor: anyPredictor{benchPrediction()}})
	if err != nil {
		b.Fatal(err)
	}
	nis := make([]*framework.NodeInfo, benchNodes)
	for i := range nis {
		nis[i] = framework.NewNodeInfo()
		nis[i].SetNode(benchNode(i))
	}
	start := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pod := benchPodOf(i, "prescient")
		state := framework.NewCycleState()
		if _, st := p.PreFilter(ctx, state, pod, nil); !st.IsSuccess() {
			b.Fatal(st)
		}
		// As the framework does at 5,000 nodes: Filter from where the last
		// pod stopped until 10 % of the nodes fit, Score those.
		best, bestScore, feasible := "", int64(-1), 0
		for k := 0; k < len(nis) && feasible < benchNodes/10; k++ {
			ni := nis[(start+k)%len(nis)]
			if st := p.Filter(ctx, state, pod, ni); !st.IsSuccess() {
				continue
			}
			feasible++
			s, _ := p.Score(ctx, state, pod, ni)
			if s > bestScore {
				best, bestScore = ni.Node().Name, s
			}
			if feasible == benchNodes/10 {
				start = (start + k + 1) % len(nis)
			}
		}
		if best == "" {
			b.Fatal("no node fits")
		}
		if st := p.Reserve(ctx, state, pod, best); !st.IsSuccess() {
			b.Fatal(st)
		}
		if st, _ := p.Permit(ctx, state, pod, best); !st.IsSuccess() {
			b.Fatal(st)
		}
	}
}
