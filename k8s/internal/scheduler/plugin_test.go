package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

const mib = 1 << 20

// fakePredictor answers by the pod's command (its first argument names the
// curve), as the predictor service would after the runs it was given.
type fakePredictor struct {
	mu     sync.Mutex
	bySig  map[string]predictor.PredictResponse
	called int
}

func (f *fakePredictor) Predict(_ context.Context, req predictor.PredictRequest) (predictor.PredictResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called++
	p, ok := f.bySig[req.Signature]
	if !ok {
		return predictor.PredictResponse{}, predictor.ErrNoHistory
	}
	return p, nil
}

// peaked is a prediction of n 1 s steps holding low bytes but in
// [from, to), where it holds peak.
func peaked(n, from, to int, low, peak float64) predictor.PredictResponse {
	p := predictor.PredictResponse{Source: "exact", StepSeconds: 1}
	for i := range n {
		m := low
		if i >= from && i < to {
			m = peak
		}
		p.CPU.Curve.P50 = append(p.CPU.Curve.P50, 0.1)
		p.CPU.Curve.Upper = append(p.CPU.Curve.Upper, 0.2)
		p.Memory.Curve.P50 = append(p.Memory.Curve.P50, m)
		p.Memory.Curve.Upper = append(p.Memory.Curve.Upper, m)
	}
	return p
}

func testPod(name, arg, mem string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "docker.io/local/busybox:1", Command: []string{"work"}, Args: []string{arg},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse(mem)}},
		}}},
	}
}

func sigOf(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	s, err := podsig.NewSigner(podsig.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(pod, "c", podsig.OwnerKind(pod))
	if err != nil {
		t.Fatal(err)
	}
	return sig.Hash
}

func testNode(name, mem string) *framework.NodeInfo {
	ni := framework.NewNodeInfo()
	ni.SetNode(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse(mem), corev1.ResourcePods: resource.MustParse("110")}},
	})
	return ni
}

// schedule runs one pod through PreFilter, Filter, Reserve and Permit on
// ni, as the framework would; it returns the Filter status.
func schedule(t *testing.T, p *Plugin, pod *corev1.Pod, ni *framework.NodeInfo) *fwk.Status {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	if _, st := p.PreFilter(ctx, state, pod, nil); !st.IsSuccess() {
		t.Fatalf("prefilter %s: %v", pod.Name, st)
	}
	if st := p.Filter(ctx, state, pod, ni); !st.IsSuccess() {
		return st
	}
	if st := p.Reserve(ctx, state, pod, ni.Node().Name); !st.IsSuccess() {
		t.Fatalf("reserve %s: %v", pod.Name, st)
	}
	if st, _ := p.Permit(ctx, state, pod, ni.Node().Name); !st.IsSuccess() {
		t.Fatalf("permit %s: %v", pod.Name, st)
	}
	pod = pod.DeepCopy()
	pod.Spec.NodeName = ni.Node().Name
	ni.AddPod(pod) // the scheduler's cache assumes it
	return nil
}

func newTestPlugin(t *testing.T, pred *fakePredictor, now func() time.Time) *Plugin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := NewWith(ctx, Args{PredictorURL: "http://predictor:8080"}, nil, Deps{Predictor: pred, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlugin800MiBPeaks(t *testing.T) {
	early, late, same := testPod("early", "early", "800Mi"), testPod("late", "late", "800Mi"), testPod("same", "same", "800Mi")
	pred := &fakePredictor{bySig: map[string]predictor.PredictResponse{
		sigOf(t, early): peaked(180, 0, 60, 50*mib, 800*mib),
		sigOf(t, late):  peaked(180, 100, 160, 50*mib, 800*mib),
		sigOf(t, same):  peaked(180, 0, 60, 50*mib, 800*mib),
	}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		second *corev1.Pod
		fits   bool
	}{
		{"peaks apart: one node", late, true},
		{"peaks together: refused", same, false},
		{"no history: by requests, refused", testPod("unknown", "unknown", "800Mi"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPlugin(t, pred, func() time.Time { return now })
			ni := testNode("small", "1Gi")
			if st := schedule(t, p, early, ni); st != nil {
				t.Fatalf("first pod: %v", st)
			}
			st := schedule(t, p, tc.second, ni)
			if (st == nil) != tc.fits {
				t.Fatalf("second pod: status %v, want fits=%v", st, tc.fits)
			}
			if st != nil && st.Code() != fwk.Unschedulable {
				t.Fatalf("second pod: %v, want Unschedulable", st)
			}
		})
	}
}

func TestPluginUnreserveReleasesIdempotently(t *testing.T) {
	pod := testPod("a", "a", "800Mi")
	pred := &fakePredictor{bySig: map[string]predictor.PredictResponse{sigOf(t, pod): peaked(60, 0, 60, 800*mib, 800*mib)}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := newTestPlugin(t, pred, func() time.Time { return now })
	ni := testNode("n", "1Gi")
	ctx := context.Background()

	state := framework.NewCycleState()
	if _, st := p.PreFilter(ctx, state, pod, nil); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := p.Filter(ctx, state, pod, ni); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := p.Reserve(ctx, state, pod, "n"); !st.IsSuccess() {
		t.Fatal(st)
	}
	other := testPod("b", "a", "800Mi") // same signature: same curve
	s2 := framework.NewCycleState()
	if _, st := p.PreFilter(ctx, s2, other, nil); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := p.Filter(ctx, s2, other, ni); st.IsSuccess() {
		t.Fatal("a reserved curve left room for a second 800 MiB pod on 1 GiB")
	}
	// The bind failed: the framework calls Unreserve (perhaps twice).
	p.Unreserve(ctx, state, pod, "n")
	p.Unreserve(ctx, state, pod, "n")
	p.Unreserve(ctx, state, pod, "elsewhere")
	if s := p.Stats(); s.Unreserved != 1 || s.Reserved != 1 {
		t.Fatalf("stats %+v: want 1 reserved, 1 unreserved", s)
	}
	if info := p.Pod(pod.UID); info.Hold != nil {
		t.Fatalf("pod still held after Unreserve: %+v", info)
	}
	if st := p.Filter(ctx, s2, other, ni); !st.IsSuccess() {
		t.Fatalf("after Unreserve the calendar is not free: %v", st)
	}
}

func TestPluginPredictionCached(t *testing.T) {
	pod := testPod("a", "a", "100Mi")
	pred := &fakePredictor{bySig: map[string]predictor.PredictResponse{sigOf(t, pod): peaked(10, 0, 10, mib, mib)}}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := newTestPlugin(t, pred, func() time.Time { return now })
	for range 5 {
		if _, st := p.PreFilter(context.Background(), framework.NewCycleState(), pod, nil); !st.IsSuccess() {
			t.Fatal(st)
		}
	}
	if pred.called != 1 {
		t.Fatalf("predictor called %d times for one signature, want 1 (cached)", pred.called)
	}
}

func TestArgsValidate(t *testing.T) {
	tests := []struct {
		name string
		args Args
		ok   bool
	}{
		{"defaults", Args{PredictorURL: "http://p:8080"}, true},
		{"no url", Args{}, false},
		{"bad scheme", Args{PredictorURL: "ftp://p"}, false},
		{"bad scoring", Args{PredictorURL: "http://p", Scoring: "random"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.args.validate()
			if (err == nil) != tc.ok {
				t.Fatalf("validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
