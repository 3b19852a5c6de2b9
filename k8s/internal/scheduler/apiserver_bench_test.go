package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	kscheduler "k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/scheduler/profile"

	"github.com/prescient-sched/prescient/k8s/internal/certs"
)

// apiserverInitPods is scheduler_perf's initPods for SchedulingBasic on
// 5,000 nodes: scheduled first, not measured.
const apiserverInitPods = 1000

// BenchmarkSchedulingBasicAPIServer is scheduler_perf's SchedulingBasic
// workload (5000Nodes_10000Pods with -benchtime 10000x; threshold 680
// pods/s) against a real kube-apiserver and etcd — the binaries
// scripts/k8s/build.sh caches, started here as separate processes, with
// the flags scheduler_perf gives its test server (no ServiceAccount,
// TaintNodesByCondition or Priority admission) — instead of client-go's
// fake clientset. The scheduler runs in this process as scheduler_perf
// runs it: clients at QPS 5,000, events to the API server, the pods'
// 1,000 init pods scheduled first, then b.N measured pods created by 30
// workers while it schedules. "pods/s" is scheduler_perf's
// SchedulingThroughput average (pods bound per 1 s sample, over the
// samples until the last measured pod is bound); the API server, etcd and
// the pod creators share the machine's cores with the scheduler, as they
// do in scheduler_perf.
//
// Each sub-benchmark starts its own etcd and API server and creates its
// 5,000 nodes, so runs do not see each other's pods. It skips when the
// binaries are not built (scripts/k8s/build.sh).
func BenchmarkSchedulingBasicAPIServer(b *testing.B) {
	bin := k8sBinDir(b)
	for _, withPlugin := range []bool{false, true} {
		name := "default"
		if withPlugin {
			name = "prescient"
		}
		b.Run(name, func(b *testing.B) { benchAPIServer(b, bin, withPlugin) })
	}
}

// k8sBinDir is the cached cluster binaries (PRESCIENT_K8S_BIN, or the
// clone's bin/k8s link that scripts/k8s/build.sh makes).
func k8sBinDir(b *testing.B) string {
	dir := os.Getenv("PRESCIENT_K8S_BIN")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "bin", "k8s")
	}
	for _, f := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			b.Skipf("no %s in %s: run scripts/k8s/build.sh (or set PRESCIENT_K8S_BIN)", f, dir)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		b.Fatal(err)
	}
	return abs
}

// freePorts asks the kernel for n free TCP ports on 127.0.0.1.
func freePorts(b *testing.B, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startProc starts a control-plane process in its own process group with
// its output in dir/NAME.log, and stops it (the whole group) when the
// benchmark ends.
func startProc(b *testing.B, dir, name string, args ...string) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
}

// startAPIServer starts etcd and kube-apiserver under dir and returns an
// admin client configuration (a static bearer token in system:masters).
func startAPIServer(b *testing.B, bin, dir string) *rest.Config {
	p := freePorts(b, 3)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", p[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", p[1])
	startProc(b, dir, "etcd", filepath.Join(bin, "etcd"), "--name", "default", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--quota-backend-bytes", fmt.Sprint(8<<30), "--log-level", "warn")

	sa, err := certs.NewCA("service-accounts", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	if err := sa.Write(filepath.Join(dir, "sa")); err != nil {
		b.Fatal(err)
	}
	pub, err := sa.PublicKeyPEM()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pub, 0o600); err != nil {
		b.Fatal(err)
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		b.Fatal(err)
	}
	token := hex.EncodeToString(tok)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+",bench-admin,bench-admin,system:masters\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	startProc(b, dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", fmt.Sprint(p[2]),
		"--endpoint-reconciler-type", "none", "--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"), "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"), "--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		// scheduler_perf's test server: no ServiceAccount controller runs,
		// and nodes are not tainted by their conditions.
		"--disable-admission-plugins", "ServiceAccount,TaintNodesByCondition,Priority",
		"--profiling=false", "--v", "1")

	cfg := &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", p[2]),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, // the server's self-signed certificate, on loopback
		QPS:             5000,
		Burst:           5000,
		ContentConfig:   rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"},
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		raw, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		if err == nil && string(raw) == "ok" {
			return cfg
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "kube-apiserver.log"))
			b.Fatalf("kube-apiserver not ready after 3 minutes: %v\n%s", err, tail(string(log), 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func benchAPIServer(b *testing.B, bin string, withPlugin bool) {
	quietKlog(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // before the processes stop (cleanups run last first)
	dir := b.TempDir()
	cfg := startAPIServer(b, bin, dir)
	admin := kubernetes.NewForConfigOrDie(cfg)

	// The nodes and the namespace, as scheduler_perf's createNodes (its
	// node template: 4 CPU, 32 Gi, 110 pods, Ready).
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	var createErr atomic.Pointer[error]
	workqueue.ParallelizeUntil(ctx, 30, benchNodes, func(i int) {
		if _, err := admin.CoreV1().Nodes().Create(ctx, benchNode(i), metav1.CreateOptions{}); err != nil {
			createErr.CompareAndSwap(nil, &err)
		}
	})
	if e := createErr.Load(); e != nil {
		b.Fatal(*e)
	}
	if n, err := admin.CoreV1().Nodes().Get(ctx, "node-0000", metav1.GetOptions{}); err != nil {
		b.Fatal(err)
	} else if n.Status.Allocatable.Cpu().MilliValue() != 4000 {
		b.Fatalf("node-0000 has allocatable %v: the API server dropped the status", n.Status.Allocatable)
	}

	// The scheduler's client counts the bindings the API server accepted.
	var bound atomic.Int64
	scfg := rest.CopyConfig(cfg)
	scfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/binding") && resp.StatusCode == http.StatusCreated {
				bound.Add(1)
			}
			return resp, err
		})
	})
	cs := kubernetes.NewForConfigOrDie(scfg)

	prof, schedName, registry, plugin := benchProfile(b, withPlugin)
	inf := kscheduler.NewInformerFactory(cs, 0, nil)
	bc := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	bc.StartRecordingToSink(ctx.Done())
	b.Cleanup(bc.Shutdown)
	sched, err := kscheduler.New(ctx, cs, inf, nil, profile.NewRecorderFactory(bc),
		kscheduler.WithKubeConfig(scfg), kscheduler.WithProfiles(prof), kscheduler.WithFrameworkOutOfTreeRegistry(registry))
	if err != nil {
		b.Fatal(err)
	}
	inf.Start(ctx.Done())
	inf.WaitForCacheSync(ctx.Done())
	if err := sched.WaitForHandlersSync(ctx); err != nil {
		b.Fatal(err)
	}
	go sched.Run(ctx)

	create := func(from, n int) {
		workqueue.ParallelizeUntil(ctx, 30, n, func(i int) {
			if _, err := admin.CoreV1().Pods("bench").Create(ctx, benchPodOf(from+i, schedName), metav1.CreateOptions{}); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
				createErr.CompareAndSwap(nil, &err)
			}
		})
		if e := createErr.Load(); e != nil {
			b.Fatal(*e)
		}
	}
	waitBound := func(n int64, within time.Duration) {
		deadline := time.Now().Add(within)
		for bound.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d pods bound after %v", bound.Load(), n, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	create(0, apiserverInitPods)
	waitBound(apiserverInitPods, 5*time.Minute)

	// Measured: b.N pods created while the scheduler runs; one sample a
	// second of the pods bound in it, as scheduler_perf's collector.
	want := int64(apiserverInitPods + b.N)
	var samples []float64
	sampled := make(chan struct{})
	b.ResetTimer()
	cpu0 := cpuTime(b)
	t0 := time.Now()
	go func() {
		defer close(sampled)
		last, lastT := bound.Load(), t0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				n := bound.Load()
				if n >= want { // the last, partial second ends at the last binding
					return
				}
				samples = append(samples, float64(n-last)/now.Sub(lastT).Seconds())
				last, lastT = n, now
			}
		}
	}()
	create(apiserverInitPods, b.N)
	waitBound(want, 10*time.Minute)
	el := time.Since(t0)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	<-sampled
	if len(samples) == 0 {
		samples = []float64{float64(b.N) / el.Seconds()}
	}
	sum := 0.0
	for _, s := range samples {
		sum += s
	}
	sort.Float64s(samples)
	b.ReportMetric(sum/float64(len(samples)), "pods/s")
	b.ReportMetric(samples[len(samples)/2], "p50-pods/s")
	b.ReportMetric(float64(b.N)/el.Seconds(), "overall-pods/s")
	// This process's CPU (scheduler, pod creators, clients), not the API
	// server's or etcd's.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/pod")
	if p := plugin.Load(); p != nil {
		if s := p.Stats(); s.PodsByCurve < want {
			b.Errorf("%d of %d pods placed by their curves", s.PodsByCurve, want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
