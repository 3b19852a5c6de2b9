package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

// BenchmarkWebhookAt200PodsPerSecond is the webhook's latency target:
// AdmissionReviews sent at 200 pod creations per second over HTTPS (kept
// alive, as the API server does) to the webhook, which asks the real
// predictor service (HTTP, its bbolt store in a temporary directory, 64
// signatures with history) for every container. It reports the p50, p99
// and max latency seen by the caller; one iteration is 2,000 reviews (10 s).
// Run with -benchtime=1x.
func BenchmarkWebhookAt200PodsPerSecond(b *testing.B) {
	const rate, perIter, sigs = 200, 2000, 64
	srv, err := predictor.Open(predictor.Config{Dir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ps := httptest.NewServer(srv.Handler())
	defer ps.Close()
	signer, _ := podsig.NewSigner(podsig.Config{})
	pc := predictor.NewClient(ps.URL, nil)
	bodies := make([][]byte, sigs)
	for i := range sigs {
		pod := jobPod(corev1.ResourceRequirements{Requests: rl("cpu", "2", "memory", "800Mi")})
		pod.Spec.Containers[0].Args = []string{fmt.Sprint(i)}
		sig, err := signer.Sign(pod, "work", "Job")
		if err != nil {
			b.Fatal(err)
		}
		for r := range 3 {
			run := predictor.RunRequest{Signature: sig.Hash, Code: sig.Code, Start: time.Now().Add(-time.Duration(r+1) * time.Hour), StepSeconds: 1}
			for k := range 60 {
				run.Samples = append(run.Samples, predictor.Sample{CPU: 0.2, Memory: float64(10+k) * (1 << 20)})
			}
			if _, err := pc.Record(context.Background(), run); err != nil {
				b.Fatal(err)
			}
		}
		raw, _ := json.Marshal(pod)
		bodies[i], _ = json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Operation: admissionv1.Create, Namespace: "batch", Object: runtime.RawExtension{Raw: raw}},
		})
	}
	h, err := New(Config{Predictor: pc, Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	ws := httptest.NewTLSServer(h)
	defer ws.Close()
	client := ws.Client()

	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for i := range perIter {
			<-tick.C
			wg.Add(1)
			go func(body []byte) {
				defer wg.Done()
				t0 := time.Now()
				resp, err := client.Post(ws.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"patch"`)) {
					b.Errorf("status %d: %s", resp.StatusCode, out)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}(bodies[i%sigs])
		}
		tick.Stop()
		wg.Wait()
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
