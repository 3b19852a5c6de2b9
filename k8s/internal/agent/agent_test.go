package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

const mib = 1 << 20

type fakeRecorder struct {
	mu   sync.Mutex
	runs []predictor.RunRequest
	fail int // calls to fail first
}

func (f *fakeRecorder) Record(_ context.Context, r predictor.RunRequest) (predictor.RunResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return predictor.RunResponse{}, predictor.ErrServer
	}
	f.runs = append(f.runs, r)
	return predictor.RunResponse{Runs: len(f.runs)}, nil
}

type resizeCall struct {
	container      string
	request, limit int64
}

type fakeResizer struct {
	mu    sync.Mutex
	calls []resizeCall
}

func (f *fakeResizer) ResizeMemory(_ context.Context, _, _, c string, req, lim int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, resizeCall{c, req, lim})
	return nil
}

// fakeHost is a cgroupfs in a temporary directory, laid out as the
// kubelet's cgroupfs (v1) or systemd (v2) driver lays it out.
type fakeHost struct {
	t     testing.TB
	mount string
	v2    bool
}

func newFakeHost(t testing.TB, v2 bool) *fakeHost {
	h := &fakeHost{t: t, mount: t.TempDir(), v2: v2}
	if v2 {
		h.write("cgroup.controllers", "cpu memory io")
	}
	return h
}

func (h *fakeHost) write(rel, content string) {
	h.t.Helper()
	p := filepath.Join(h.mount, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeHost) ctrDir(uid, cid string) []string {
	if h.v2 {
		u := strings.ReplaceAll(uid, "-", "_")
		return []string{filepath.Join("kubepods.slice", "kubepods-burstable.slice", "kubepods-burstable-pod"+u+".slice", "cri-containerd-"+cid+".scope")}
	}
	rel := filepath.Join("prescient-e2e", "kubepods", "burstable", "pod"+uid, cid)
	return []string{filepath.Join("cpuacct", rel), filepath.Join("memory", rel), filepath.Join("blkio", rel)}
}

// use sets a container's CPU time (ns) and working set.
func (h *fakeHost) use(uid, cid string, cpuNs int64, ws int64) {
	for _, d := range h.ctrDir(uid, cid) {
		switch {
		case h.v2:
			h.write(filepath.Join(d, "cpu.stat"), fmt.Sprintf("usage_usec %d\nuser_usec 0\n", cpuNs/1000))
			h.write(filepath.Join(d, "memory.current"), fmt.Sprint(ws+4*mib))
			h.write(filepath.Join(d, "memory.stat"), fmt.Sprintf("anon %d\ninactive_file %d\n", ws, 4*mib))
		case strings.HasPrefix(d, "cpuacct"):
			h.write(filepath.Join(d, "cpuacct.usage"), fmt.Sprint(cpuNs))
		case strings.HasPrefix(d, "memory"):
			h.write(filepath.Join(d, "memory.usage_in_bytes"), fmt.Sprint(ws+4*mib))
			h.write(filepath.Join(d, "memory.stat"), fmt.Sprintf("total_rss %d\ntotal_inactive_file %d\n", ws, 4*mib))
		case strings.HasPrefix(d, "blkio"):
			h.write(filepath.Join(d, "blkio.throttle.io_serviced"), "Total 0\n")
		}
	}
}

func (h *fakeHost) remove(uid, cid string) {
	for _, d := range h.ctrDir(uid, cid) {
		if err := os.RemoveAll(filepath.Join(h.mount, d)); err != nil {
			h.t.Fatal(err)
		}
	}
}

const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func runningPod(uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "grow", Namespace: "ns", UID: types.UID(uid)},
		Spec: corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{
			Name: "work", Image: "docker.io/local/busybox:1", Command: []string{"sh", "-c", "grow"},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")},
			},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "work", ContainerID: "containerd://" + cid,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		}}},
	}
}

func TestAgentProfilesResizesReports(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("cgroupV2=%v", v2), func(t *testing.T) {
			h := newFakeHost(t, v2)
			uid := "11111111-2222-3333-4444-555555555555"
			rec, rsz := &fakeRecorder{fail: 1}, &fakeResizer{}
			a, err := New(Config{Node: "node1", CgroupMount: h.mount, Recorder: rec, Resizer: rsz})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ctx := context.Background()
			pod := runningPod(uid)
			h.use(uid, cid, 0, 10*mib)
			a.Sync(ctx, pod)
			t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			ns := int64(0)
			for i := range 5 { // half a core, growing 10 MiB a second
				ns += 5e8
				h.use(uid, cid, ns, int64(10+10*i)*mib)
				a.Tick(ctx, t0.Add(time.Duration(i+1)*time.Second))
			}
			if s := a.Stats(); s.Containers != 1 || s.Resizes != 0 {
				t.Fatalf("stats %+v: want one container, no resize yet", s)
			}
			// 85 MiB of a 100 MiB limit: raised in place. Its growth rate,
			// smoothed by halves (5, 7.5, 8.75, 9.375, then a 35 MiB jump:
			// 22.1875 MiB/s), over three steps with a fifth to spare, says
			// 85 + 79.875 MiB: more than 1.5 × 100.
			h.use(uid, cid, ns+5e8, 85*mib)
			a.Tick(ctx, t0.Add(6*time.Second))
			if len(rsz.calls) != 1 {
				t.Fatalf("resizes %+v, want one", rsz.calls)
			}
			if c := rsz.calls[0]; c.container != "work" || c.limit != 165*mib || c.request != 85*mib {
				t.Fatalf("resize %+v: want work to 85Mi request, 165Mi limit", c)
			}
			a.Tick(ctx, t0.Add(7*time.Second))
			if len(rsz.calls) != 1 {
				t.Fatalf("resized again at once: %+v", rsz.calls)
			}

			// OOM-killed anyway: the cgroup goes, the status says why.
			h.remove(uid, cid)
			a.Tick(ctx, t0.Add(8*time.Second))
			done := pod.DeepCopy()
			done.Status.Phase = corev1.PodFailed
			done.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ContainerID: "containerd://" + cid, Reason: "OOMKilled", ExitCode: 137}}
			a.Sync(ctx, done)
			a.Tick(ctx, t0.Add(9*time.Second)) // the predictor fails once: retried
			a.Tick(ctx, t0.Add(10*time.Second))
			if len(rec.runs) != 1 {
				t.Fatalf("runs reported: %d, want 1 (stats %+v)", len(rec.runs), a.Stats())
			}
			r := rec.runs[0]
			signer, _ := podsig.NewSigner(podsig.Config{})
			want, _ := signer.Sign(pod, "work", "Pod")
			if r.Signature != want.Hash || r.StepSeconds != 1 || !r.Start.Equal(t0.Add(time.Second)) {
				t.Errorf("run %s step %v start %v; want %s, 1 s, %v", r.Signature, r.StepSeconds, r.Start, want.Hash, t0.Add(time.Second))
			}
			if n := len(r.Samples); n != 8 { // 7 ticks sampled + the OOM sample
				t.Fatalf("%d samples, want 8: %+v", n, r.Samples)
			}
			if got := r.Samples[2].CPU; got < 0.49 || got > 0.51 {
				t.Errorf("cpu %v cores, want 0.5", got)
			}
			if got := r.Samples[2].Memory; got != 30*mib {
				t.Errorf("memory %v, want 30 MiB", got/mib)
			}
			if got := r.Samples[7].Memory; got != 330*mib {
				t.Errorf("OOM sample %v MiB, want twice the 165 MiB limit", got/mib)
			}
			s := a.Stats()
			if s.OOMRuns != 1 || s.ReportErrors != 1 || s.Runs != 1 || s.Containers != 0 {
				t.Errorf("stats %+v", s)
			}
			a.Forget(done)
			a.Tick(ctx, t0.Add(11*time.Second))
			if s := a.Stats(); s.Pods != 0 {
				t.Errorf("pod not forgotten: %+v", s)
			}
		})
	}
}

func TestAgentSandboxDropped(t *testing.T) {
	h := newFakeHost(t, false)
	uid := "aaaaaaaa-2222-3333-4444-555555555555"
	sandbox := strings.Repeat("f", 64)
	rec := &fakeRecorder{}
	a, err := New(Config{Node: "node1", CgroupMount: h.mount, Recorder: rec, Attribution: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	h.use(uid, sandbox, 0, mib)
	a.Sync(ctx, runningPod(uid))
	t0 := time.Now()
	a.Tick(ctx, t0)
	h.remove(uid, sandbox)
	a.Tick(ctx, t0.Add(time.Second))
	a.Tick(ctx, t0.Add(10*time.Second))
	if s := a.Stats(); len(rec.runs) != 0 || s.Dropped != 1 {
		t.Fatalf("a never-named cgroup: runs %d, stats %+v; want dropped", len(rec.runs), s)
	}
}

func TestContainerID(t *testing.T) {
	tests := []struct{ name, want string }{
		{cid, cid},
		{"cri-containerd-" + cid + ".scope", cid},
		{"crio-" + cid + ".scope", cid},
		{"cgroup.procs", ""},
		{"pod1234", ""},
	}
	for _, tc := range tests {
		if got := containerID(tc.name); got != tc.want {
			t.Errorf("containerID(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{Recorder: &fakeRecorder{}}); err == nil {
		t.Error("no node: accepted")
	}
	if _, err := New(Config{Node: "n"}); err == nil {
		t.Error("no recorder: accepted")
	}
	if _, err := New(Config{Node: "n", Recorder: &fakeRecorder{}, Grow: 0.5}); err == nil {
		t.Error("grow 0.5: accepted")
	}
}

// TestAgentResizesFastGrowerAgain: a container that keeps growing fast is
// raised again as soon as it would reach its limit within two steps, not
// only after ResizeEvery — a fixed rate limit let a pod growing 4 MiB/s
// be OOM-killed between two resizes on the real cluster.
func TestAgentResizesFastGrowerAgain(t *testing.T) {
	h := newFakeHost(t, true)
	uid := "11111111-2222-3333-4444-666666666666"
	rsz := &fakeResizer{}
	a, err := New(Config{Node: "node1", CgroupMount: h.mount, Recorder: &fakeRecorder{}, Resizer: rsz, ResizeEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	a.Sync(ctx, runningPod(uid))
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var limits []int64
	for i := range 30 { // 8 MiB a second from 10 MiB, against a 100 MiB limit
		h.use(uid, cid, int64(i)*1e8, int64(10+8*i)*mib)
		a.Tick(ctx, t0.Add(time.Duration(i+1)*time.Second))
		if n := len(rsz.calls); n > len(limits) {
			limits = append(limits, rsz.calls[n-1].limit)
		}
		lim := int64(100 * mib)
		if len(limits) > 0 {
			lim = limits[len(limits)-1]
		}
		if use := int64(10+8*i) * mib; use >= lim {
			t.Fatalf("at %d s the working set %d MiB reached the limit %d MiB (resizes %v)", i+1, use/mib, lim/mib, limits)
		}
	}
	if len(limits) < 2 {
		t.Fatalf("resizes %v: want at least two within ResizeEvery (a minute)", limits)
	}
	t.Logf("limits (MiB): %v", func() (m []int64) {
		for _, l := range limits {
			m = append(m, l/mib)
		}
		return
	}())
}
