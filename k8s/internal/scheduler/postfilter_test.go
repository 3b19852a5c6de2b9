package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

// stubHandle is the part of the framework's handle the plugin's retry
// path uses: the snapshot's nodes and Activate. Any other call panics.
type stubHandle struct {
	fwk.Handle
	snap *cache.Snapshot

	mu        sync.Mutex
	activated []string
}

func (h *stubHandle) ClientSet() clientset.Interface         { return nil }
func (h *stubHandle) SnapshotSharedLister() fwk.SharedLister { return h.snap }
func (h *stubHandle) Activate(_ klog.Logger, pods map[string]*corev1.Pod) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range pods {
		h.activated = append(h.activated, p.Name)
	}
}

func (h *stubHandle) activatedPods() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.activated...)
}

// TestPostFilterRetriesWhenTheCurveClears: a pod refused only because its
// peak collides with a neighbour's now (Filter asks no more than that) is
// put back in the active queue when PostFilter finds the neighbour's peak
// over — time frees the calendar, and no cluster event would say so. A pod
// larger than the node is not: waiting does not help.
func TestPostFilterRetriesWhenTheCurveClears(t *testing.T) {
	early, same := testPod("early", "early", "800Mi"), testPod("same", "same", "800Mi")
	flat := testPod("flat", "unknown", "2Gi") // by requests, over the node's 1 GiB
	pred := &fakePredictor{bySig: map[string]predictor.PredictResponse{
		sigOf(t, early): peaked(180, 0, 60, 50*mib, 800*mib),
		sigOf(t, same):  peaked(180, 0, 60, 50*mib, 800*mib),
	}}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }

	ni := testNode("small", "1Gi")
	h := &stubHandle{snap: cache.NewSnapshot(nil, []*corev1.Node{ni.Node()})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewWith(ctx, Args{PredictorURL: "http://predictor:8080"}, h, Deps{Predictor: pred, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if st := schedule(t, p, early, ni); st != nil {
		t.Fatalf("first pod: %v", st)
	}

	refuse := func(pod *corev1.Pod) (fwk.CycleState, *fwk.Status) {
		state := framework.NewCycleState()
		if _, st := p.PreFilter(ctx, state, pod, nil); !st.IsSuccess() {
			t.Fatalf("prefilter %s: %v", pod.Name, st)
		}
		st := p.Filter(ctx, state, pod, ni)
		if st.IsSuccess() {
			t.Fatalf("%s fits beside early's peak", pod.Name)
		}
		st.SetPlugin(Name) // as the framework records who refused
		statuses := framework.NewDefaultNodeToStatus()
		statuses.Set(ni.Node().Name, st)
		if _, pst := p.PostFilter(ctx, state, pod, statuses); pst.Code() != fwk.Unschedulable {
			t.Fatalf("postfilter %s: %v, want Unschedulable (it never places a pod)", pod.Name, pst)
		}
		return state, st
	}
	_, st := refuse(flat)
	if st.Message() == collidesMsg {
		t.Fatalf("a pod over the node's capacity refused as a collision: %v", st)
	}
	state, st := refuse(same)
	if st.Message() != collidesMsg {
		t.Fatalf("same: %v, want a collision", st)
	}
	p.retry.mu.Lock()
	r, ok := p.retry.pods[same.UID]
	_, flatToo := p.retry.pods[flat.UID]
	p.retry.mu.Unlock()
	if !ok || flatToo {
		t.Fatalf("retrier holds same=%v flat=%v, want only same", ok, flatToo)
	}
	// The retry time is when the pod fits: not before early's 60 s peak
	// ends, and it fits then.
	if !r.at.After(t0.Add(59*time.Second)) || r.at.After(t0.Add(90*time.Second)) {
		t.Fatalf("retry at %v after the start, want when early's peak (60 s) is over", r.at.Sub(t0))
	}
	c, _ := cycleOf(state)
	if f := p.cals.get("small").Fits(c.plan, r.at); !f.OK {
		t.Fatalf("at the retry time (+%v) it does not fit: %s", r.at.Sub(t0), f.Reason)
	}
	// Not due yet: the retrier waits; due: it activates the pod.
	time.Sleep(1500 * time.Millisecond)
	if got := h.activatedPods(); len(got) != 0 {
		t.Fatalf("activated %v before the retry time", got)
	}
	clock.Store(r.at.UnixNano())
	deadline := time.Now().Add(5 * time.Second)
	for len(h.activatedPods()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := h.activatedPods(); len(got) != 1 || got[0] != "same" {
		t.Fatalf("activated %v at the retry time, want [same]", got)
	}
}
