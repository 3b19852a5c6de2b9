package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

// fakePredictor answers from a map by signature; like the real service it
// answers ErrNoHistory for what it does not know.
type fakePredictor struct {
	bySig map[string]predictor.PredictResponse
	err   error
	calls int
}

func (f *fakePredictor) Predict(_ context.Context, req predictor.PredictRequest) (predictor.PredictResponse, error) {
	f.calls++
	if f.err != nil {
		return predictor.PredictResponse{}, f.err
	}
	p, ok := f.bySig[req.Signature]
	if !ok {
		return predictor.PredictResponse{}, predictor.ErrNoHistory
	}
	return p, nil
}

type fakeOwners map[types.UID]string

func (f fakeOwners) ControllerKind(_ context.Context, _ string, ref metav1.OwnerReference) (string, error) {
	k, ok := f[ref.UID]
	if !ok {
		return "", errors.New("not found")
	}
	return k, nil
}

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func jobPod(res corev1.ResourceRequirements) *corev1.Pod {
	yes := true
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "etl-", Namespace: "batch",
			Labels:          map[string]string{LabelOptIn: "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "etl", UID: "job-uid", Controller: &yes}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "work", Image: "docker.io/local/busybox:1",
			Command: []string{"sh", "-c", "work"}, Resources: res,
		}}},
	}
}

func history(cpuP50, cpuUp, memUpMiB float64, source string) predictor.PredictResponse {
	return predictor.PredictResponse{
		Source: source, Model: "history", UpperQuantile: 0.99,
		CPU:    predictor.Dim{Peak: predictor.Peak{P50: cpuP50, Upper: cpuUp}},
		Memory: predictor.Dim{Peak: predictor.Peak{P50: memUpMiB * 0.8 * (1 << 20), Upper: memUpMiB * (1 << 20)}},
	}
}

func mustSign(t *testing.T, s *podsig.Signer, pod *corev1.Pod, owner string) string {
	t.Helper()
	sig, err := s.Sign(pod, pod.Spec.Containers[0].Name, owner)
	if err != nil {
		t.Fatal(err)
	}
	return sig.Hash
}

// apply runs the handler on pod and returns the patched pod and the record.
func apply(t *testing.T, h *Handler, pod *corev1.Pod) (*corev1.Pod, *Record, bool) {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	resp := h.Review(context.Background(), &admissionv1.AdmissionRequest{
		UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
		Namespace: pod.Namespace, Object: runtime.RawExtension{Raw: raw},
	})
	if !resp.Allowed || resp.UID != "u1" {
		t.Fatalf("response %+v: want allowed with uid u1", resp)
	}
	if resp.Patch == nil {
		return pod, nil, false
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("patch %s: %v", resp.Patch, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply %s: %v", resp.Patch, err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal([]byte(got.Annotations[AnnotationResources]), &rec); err != nil {
		t.Fatalf("annotation %q: %v", got.Annotations[AnnotationResources], err)
	}
	return &got, &rec, true
}

func TestMutate(t *testing.T) {
	signer, err := podsig.NewSigner(podsig.Config{})
	if err != nil {
		t.Fatal(err)
	}
	declared := corev1.ResourceRequirements{Requests: rl("cpu", "2", "memory", "800Mi"), Limits: rl("memory", "800Mi")}
	guaranteed := corev1.ResourceRequirements{Requests: rl("cpu", "1", "memory", "1Gi"), Limits: rl("cpu", "1", "memory", "1Gi")}
	tests := []struct {
		name      string
		pod       func() *corev1.Pod
		owners    fakeOwners
		predict   func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse
		err       error
		wantPatch bool
		wantSet   bool
		wantRes   corev1.ResourceRequirements
		wantOwner string
		wantWhy   string
	}{
		{
			name: "history sets requests and the declared limit",
			pod:  func() *corev1.Pod { return jobPod(declared) },
			predict: func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse {
				return map[string]predictor.PredictResponse{sig(jobPod(declared), "Job"): history(0.2003, 0.35, 47.2, "exact")}
			},
			wantPatch: true, wantSet: true, wantOwner: "Job",
			wantRes: corev1.ResourceRequirements{Requests: rl("cpu", "201m", "memory", "48Mi"), Limits: rl("memory", "59Mi")},
			wantWhy: "predicted from exact history",
		},
		{
			name:   "a cronjob's pod has its own signature",
			pod:    func() *corev1.Pod { return jobPod(declared) },
			owners: fakeOwners{"job-uid": "CronJob"},
			predict: func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse {
				return map[string]predictor.PredictResponse{sig(jobPod(declared), "CronJob"): history(0.1, 0.2, 20, "exact")}
			},
			wantPatch: true, wantSet: true, wantOwner: "CronJob",
			wantRes: corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "20Mi"), Limits: rl("memory", "25Mi")},
		},
		{
			name:   "owner lookup failure leaves the pod as declared",
			pod:    func() *corev1.Pod { return jobPod(declared) },
			owners: fakeOwners{},
			predict: func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse {
				return map[string]predictor.PredictResponse{sig(jobPod(declared), "Job"): history(0.1, 0.2, 20, "exact")}
			},
			wantPatch: true, wantRes: declared, wantOwner: "Job", wantWhy: "owner not resolved",
		},
		{
			name: "guaranteed stays guaranteed",
			pod:  func() *corev1.Pod { return jobPod(guaranteed) },
			predict: func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse {
				return map[string]predictor.PredictResponse{sig(jobPod(guaranteed), "Job"): history(0.2, 0.4, 100, "size")}
			},
			wantPatch: true, wantSet: true, wantOwner: "Job",
			wantRes: corev1.ResourceRequirements{Requests: rl("cpu", "500m", "memory", "125Mi"), Limits: rl("cpu", "500m", "memory", "125Mi")},
			wantWhy: "guaranteed QoS kept",
		},
		{
			name: "floors apply",
			pod:  func() *corev1.Pod { return jobPod(declared) },
			predict: func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse {
				return map[string]predictor.PredictResponse{sig(jobPod(declared), "Job"): history(0.0001, 0.0002, 1, "code")}
			},
			wantPatch: true, wantSet: true, wantOwner: "Job",
			wantRes: corev1.ResourceRequirements{Requests: rl("cpu", "10m", "memory", "16Mi"), Limits: rl("memory", "16Mi")},
		},
		{
			name:      "no history leaves the pod as declared",
			pod:       func() *corev1.Pod { return jobPod(declared) },
			wantPatch: true, wantRes: declared, wantOwner: "Job", wantWhy: "no history",
		},
		{
			name: "prior only leaves the pod as declared",
			pod:  func() *corev1.Pod { return jobPod(declared) },
			predict: func(sig func(*corev1.Pod, string) string) map[string]predictor.PredictResponse {
				return map[string]predictor.PredictResponse{sig(jobPod(declared), "Job"): history(0.1, 0.2, 20, "prior")}
			},
			wantPatch: true, wantRes: declared, wantOwner: "Job", wantWhy: `"prior"`,
		},
		{
			name:      "predictor down leaves the pod as declared",
			pod:       func() *corev1.Pod { return jobPod(declared) },
			err:       predictor.ErrServer,
			wantPatch: true, wantRes: declared, wantOwner: "Job", wantWhy: "predictor unavailable",
		},
		{
			name: "bad inputs annotation leaves the pod as declared",
			pod: func() *corev1.Pod {
				p := jobPod(declared)
				p.Annotations = map[string]string{podsig.AnnotationInputs: "[{"}
				return p
			},
			wantPatch: true, wantRes: declared, wantOwner: "Job", wantWhy: "not signed",
		},
		{
			name: "opted out",
			pod: func() *corev1.Pod {
				p := jobPod(declared)
				p.Labels[LabelOptIn] = "false"
				return p
			},
		},
		{
			name: "already handled",
			pod: func() *corev1.Pod {
				p := jobPod(declared)
				p.Annotations = map[string]string{AnnotationResources: "{}"}
				return p
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakePredictor{err: tt.err}
			if tt.predict != nil {
				fp.bySig = tt.predict(func(p *corev1.Pod, owner string) string { return mustSign(t, signer, p, owner) })
			}
			cfg := Config{Predictor: fp, Signer: signer}
			if tt.owners != nil {
				cfg.Owners = tt.owners
			}
			h, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, rec, patched := apply(t, h, tt.pod())
			if patched != tt.wantPatch {
				t.Fatalf("patched %v, want %v", patched, tt.wantPatch)
			}
			if !patched {
				return
			}
			res := got.Spec.Containers[0].Resources
			if !equalRes(res, tt.wantRes) {
				t.Errorf("resources %v, want %v", res, tt.wantRes)
			}
			if len(rec.Containers) != 1 {
				t.Fatalf("record %+v: want one container", rec)
			}
			cr := rec.Containers[0]
			if (cr.Set != nil) != tt.wantSet {
				t.Errorf("record set %v, want set %v", cr.Set, tt.wantSet)
			}
			if cr.Set != nil && !equalRes(*cr.Set, res) {
				t.Errorf("record says set %v, pod has %v", cr.Set, res)
			}
			if !equalRes(cr.Declared, tt.pod().Spec.Containers[0].Resources) {
				t.Errorf("record says declared %v, want %v", cr.Declared, tt.pod().Spec.Containers[0].Resources)
			}
			if cr.Owner != tt.wantOwner {
				t.Errorf("owner %q, want %q", cr.Owner, tt.wantOwner)
			}
			if !bytes.Contains([]byte(cr.Why), []byte(tt.wantWhy)) || cr.Why == "" {
				t.Errorf("why %q, want it to contain %q", cr.Why, tt.wantWhy)
			}
		})
	}
}

func equalRes(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || v.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits)
}

func TestReviewIgnoresOtherRequests(t *testing.T) {
	signer, _ := podsig.NewSigner(podsig.Config{})
	fp := &fakePredictor{}
	h, err := New(Config{Predictor: fp, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(jobPod(corev1.ResourceRequirements{}))
	for _, req := range []*admissionv1.AdmissionRequest{
		{UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Update, Object: runtime.RawExtension{Raw: raw}},
		{UID: "2", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create, SubResource: "binding", Object: runtime.RawExtension{Raw: raw}},
		{UID: "3", Kind: metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
		{UID: "4", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte("{")}},
	} {
		resp := h.Review(context.Background(), req)
		if !resp.Allowed || resp.Patch != nil || resp.UID != req.UID {
			t.Errorf("request %s: response %+v, want allowed without patch", req.UID, resp)
		}
	}
	if fp.calls != 0 {
		t.Errorf("predictor called %d times", fp.calls)
	}
}

func TestServeHTTP(t *testing.T) {
	signer, _ := podsig.NewSigner(podsig.Config{})
	h, err := New(Config{Predictor: &fakePredictor{}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(jobPod(corev1.ResourceRequirements{}))
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "abc", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	}
	body, _ := json.Marshal(review)
	tests := []struct {
		name, method string
		body         []byte
		want         int
	}{
		{"review", "POST", body, 200},
		{"garbage", "POST", []byte("nope"), 400},
		{"no request", "POST", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400},
		{"v1beta1", "POST", bytes.Replace(body, []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1), 400},
		{"get", "GET", nil, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/mutate", bytes.NewReader(tt.body)))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want != http.StatusOK {
				return
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.Response == nil || out.Response.UID != "abc" || !out.Response.Allowed || out.Kind != "AdmissionReview" {
				t.Errorf("response %+v", out)
			}
		})
	}
}

func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":{"annotations":{"prescient.io/inputs":"[{\"type\":\"csv\",\"size\":\"1Gi\"}]"}},"spec":{"containers":[{"name":"a","image":"x"}]}}}}`))
	f.Add([]byte(`{"request":{}}`))
	signer, _ := podsig.NewSigner(podsig.Config{})
	h, _ := New(Config{Predictor: &fakePredictor{}, Signer: signer})
	f.Fuzz(func(t *testing.T, b []byte) {
		review, err := decodeReview(bytes.NewReader(b))
		if err != nil {
			return
		}
		resp := h.Review(context.Background(), review.Request)
		if !resp.Allowed {
			t.Fatal("a review was denied")
		}
	})
}
