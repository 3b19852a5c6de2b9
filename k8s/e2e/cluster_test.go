package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

// The test cluster's settings (scripts/k8s/lib.sh): its own name, ports and
// pod subnet, so that it runs beside a developer's `make k8s-up` cluster.
const (
	clusterName = "e2e"
	portBase    = 26400
	podNet      = "10.89.0"
)

// cluster is a running local cluster brought up by scripts/k8s/up.sh.
type cluster struct {
	root, state string
	cs          kubernetes.Interface
	predictor   *predictor.Client
	predURL     string
	schedURL    string // the Prescient plugin's debug endpoint
	agentURL    string // the node agent's /stats
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "../.."))
}

func scriptEnv() []string {
	return append(os.Environ(),
		"PRESCIENT_K8S_NAME="+clusterName,
		fmt.Sprintf("PRESCIENT_K8S_PORT_BASE=%d", portBase),
		"PRESCIENT_K8S_POD_NET="+podNet,
	)
}

// shared is the one test cluster of this package, brought up by the first
// test that needs it and taken down by TestMain.
var shared struct {
	once sync.Once
	c    *cluster
	err  error
	log  string
	root string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.root != "" {
		if os.Getenv("PRESCIENT_K8S_KEEP") != "" {
			fmt.Println("PRESCIENT_K8S_KEEP set: the test cluster is left running (scripts/k8s/down.sh with PRESCIENT_K8S_NAME=e2e stops it)")
		} else if out, err := runScript(shared.root, "down", "--purge"); err != nil {
			fmt.Printf("down.sh: %v\n%s\n", err, out)
			code = 1
		}
	}
	os.Exit(code)
}

func runScript(root, name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(root, "scripts/k8s", name+".sh"), args...)
	cmd.Env = scriptEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return fmt.Sprintf("scripts/k8s/%s.sh %s:\n%s", name, strings.Join(args, " "), out.String()), err
}

// startCluster returns the test cluster with Prescient installed, bringing
// it up on first use (TestMain takes it down). It skips, saying why, where
// the cluster cannot run at all (not root, not asked for); it fails when
// it should run and does not.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("PRESCIENT_K8S_E2E") == "" {
		t.Skip("SKIP real-cluster test: set PRESCIENT_K8S_E2E=1 (make test-k8s does, after building the cluster's binaries)")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP real-cluster test: needs root (cgroups, mounts, the kubelet)")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "bin/k8s/.complete")); err != nil {
		t.Skipf("SKIP real-cluster test: no cluster binaries in bin/k8s (scripts/k8s/build.sh failed or was not run): %v", err)
	}
	shared.once.Do(func() {
		shared.root = root
		// A previous run that died leaves its cluster: take it down first.
		_, _ = runScript(root, "down", "--purge")
		t0 := time.Now()
		shared.log, shared.err = runScript(root, "up")
		if shared.err == nil {
			shared.c, shared.err = connect(root)
			fmt.Printf("e2e: cluster up with Prescient in %v\n", time.Since(t0).Round(time.Second))
		}
	})
	if shared.err != nil {
		t.Fatalf("up.sh: %v\n%s", shared.err, shared.log)
	}
	return shared.c
}

func connect(root string) (*cluster, error) {
	stateRoot := os.Getenv("PRESCIENT_K8S_STATE")
	if stateRoot == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if base == "" {
			base = filepath.Join(os.Getenv("HOME"), ".local/state")
		}
		stateRoot = filepath.Join(base, "prescient-k8s")
	}
	state := filepath.Join(stateRoot, clusterName)
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "kubeconfig"))
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	predURL := fmt.Sprintf("http://127.0.0.1:%d", portBase+8)
	return &cluster{root: root, state: state, cs: cs, predURL: predURL,
		schedURL:  fmt.Sprintf("http://127.0.0.1:%d", portBase+10),
		agentURL:  fmt.Sprintf("http://127.0.0.1:%d", portBase+11),
		predictor: predictor.NewClient(predURL, &http.Client{Timeout: 10 * time.Second})}, nil
}

// poll calls f until it returns true or the deadline passes (generous: the
// machine is shared).
func poll(t *testing.T, what string, timeout time.Duration, f func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := f()
		if ok {
			return
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v (last error: %v)", what, timeout, last)
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

// etlJob is the test's batch work: a few seconds of a little CPU and
// memory, declared far too large (2 cores, 800Mi), as users do.
func etlJob(ns, name string) *batchv1.Job {
	backoff := int32(0)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					podsig.AnnotationInputs: `[{"type":"csv","size":"600Mi"}]`,
				}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name:            "work",
						Image:           "docker.io/local/busybox:1",
						ImagePullPolicy: corev1.PullNever,
						Command:         []string{"sh", "-c"},
						Args:            []string{"i=0; while [ $i -lt 3 ]; do i=$((i+1)); sleep 1; done; echo done"},
						Env:             []corev1.EnvVar{{Name: "LANG", Value: "C.UTF-8"}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("800Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: q("800Mi")},
						},
					}},
				},
			},
		},
	}
}

// signatureOf is the signature the webhook computes for the job's pods.
func signatureOf(t *testing.T, job *batchv1.Job) podsig.Signature {
	t.Helper()
	s, err := podsig.NewSigner(podsig.Config{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	pod := &corev1.Pod{ObjectMeta: job.Spec.Template.ObjectMeta, Spec: job.Spec.Template.Spec}
	pod.OwnerReferences = []metav1.OwnerReference{{Kind: "Job", Name: job.Name, Controller: &yes}}
	sig, err := s.Sign(pod, "work", "Job")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestJobGetsPredictedRequests is issue 14's first real-cluster check: a
// Job whose pods have history gets predicted requests at admission (the
// annotation shows declared vs set) and runs to completion; and the
// predictor, restarted as a pod, keeps that history.
func TestJobGetsPredictedRequests(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "e2e-batch"
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{webhook.LabelOptIn: "enabled"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "default service account", 60*time.Second, func() (bool, error) {
		_, err := c.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})

	// History: three earlier runs of the job's signature, 0.2 cores and up
	// to 40 MiB, as the node agent (phase B) will report them.
	job := etlJob(ns, "etl")
	sig := signatureOf(t, job)
	start := time.Now().Add(-3 * time.Hour)
	for i := range 3 {
		run := predictor.RunRequest{Signature: sig.Hash, Code: sig.Code, InputBytes: float64(sig.InputBytes), InputType: "csv",
			Start: start.Add(time.Duration(i) * time.Hour), StepSeconds: 1}
		for k := range 5 {
			run.Samples = append(run.Samples, predictor.Sample{CPU: 0.2, Memory: float64(8*(k+1)) * (1 << 20)})
		}
		if _, err := c.predictor.Record(ctx, run); err != nil {
			t.Fatalf("seed history: %v", err)
		}
	}

	// The predictor's pod restarts: its history is on the volume.
	pods, err := c.cs.CoreV1().Pods("prescient-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=prescient-predictor"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("predictor pods: %v, %v", pods, err)
	}
	old := pods.Items[0].Name
	if err := c.cs.CoreV1().Pods("prescient-system").Delete(ctx, old, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The old pod must be gone first: both pods use the host's network, so
	// while the old one drains, the new one's readiness probe (and our own
	// calls) reach the old process, and the new one is still blocked on
	// the run store's lock. "Ready" before then means nothing.
	poll(t, "the old predictor pod gone", 120*time.Second, func() (bool, error) {
		_, err := c.cs.CoreV1().Pods("prescient-system").Get(ctx, old, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			err = fmt.Errorf("pod %s still there", old)
		}
		return false, err
	})
	poll(t, "a new predictor pod, ready", 120*time.Second, func() (bool, error) {
		pods, err := c.cs.CoreV1().Pods("prescient-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=prescient-predictor"})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Name != old && p.DeletionTimestamp == nil && podReady(&p) {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d pods, none new and ready", len(pods.Items))
	})
	var info predictor.SignatureInfo
	poll(t, "history after the predictor's restart", 30*time.Second, func() (bool, error) {
		info, err = signatureInfo(c, sig.Hash)
		return err == nil, err
	})
	if len(info.Runs) != 3 {
		t.Fatalf("after the predictor's restart: %d runs kept, want 3", len(info.Runs))
	}

	// The Job: its pod is admitted with predicted requests.
	t0 := time.Now()
	if _, err := c.cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	poll(t, "the job's pod", 60*time.Second, func() (bool, error) {
		pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=etl"})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = pods.Items[0]
		return true, nil
	})
	var rec webhook.Record
	if err := json.Unmarshal([]byte(pod.Annotations[webhook.AnnotationResources]), &rec); err != nil {
		t.Fatalf("annotation %s: %q: %v", webhook.AnnotationResources, pod.Annotations[webhook.AnnotationResources], err)
	}
	t.Logf("%s: %s", webhook.AnnotationResources, pod.Annotations[webhook.AnnotationResources])
	if len(rec.Containers) != 1 || rec.Containers[0].Set == nil {
		t.Fatalf("record %+v: want the container set", rec)
	}
	cr := rec.Containers[0]
	if cr.Signature != sig.Hash || cr.Owner != "Job" || cr.Source != "exact" {
		t.Errorf("record: signature %s owner %s source %s; want %s Job exact", cr.Signature, cr.Owner, cr.Source, sig.Hash)
	}
	declared := job.Spec.Template.Spec.Containers[0].Resources
	if cr.Declared.Requests.Cpu().Cmp(*declared.Requests.Cpu()) != 0 || cr.Declared.Requests.Memory().Cmp(*declared.Requests.Memory()) != 0 {
		t.Errorf("record declared %v, want %v", cr.Declared, declared)
	}
	got := pod.Spec.Containers[0].Resources
	// 0.2 cores (p50 peak) → 200m; memory upper peak 40 MiB → 40Mi, limit × 1.25 = 50Mi.
	want := map[string]resource.Quantity{"requests.cpu": q("200m"), "requests.memory": q("40Mi"), "limits.memory": q("50Mi")}
	have := map[string]resource.Quantity{"requests.cpu": *got.Requests.Cpu(), "requests.memory": *got.Requests.Memory(), "limits.memory": *got.Limits.Memory()}
	// Within 2 %: the engine's whole-run curve is resampled to its own
	// step, so 0.2 cores may come out as 201m.
	for k, w := range want {
		h := have[k]
		if hv, wv := h.AsApproximateFloat64(), w.AsApproximateFloat64(); hv < wv*0.98 || hv > wv*1.02 {
			t.Errorf("pod %s = %v, want %v (±2 %%)", k, &h, &w)
		}
	}
	if cr.Set.Requests.Cpu().Cmp(*got.Requests.Cpu()) != 0 || cr.Set.Requests.Memory().Cmp(*got.Requests.Memory()) != 0 {
		t.Errorf("record says set %v, the pod has %v", cr.Set, got)
	}

	// …and runs to completion under them.
	poll(t, "job etl complete", 180*time.Second, func() (bool, error) {
		j, err := c.cs.BatchV1().Jobs(ns).Get(ctx, "etl", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if j.Status.Failed > 0 {
			t.Fatalf("job failed: %+v", j.Status)
		}
		return j.Status.Succeeded == 1, fmt.Errorf("status %+v", j.Status)
	})
	t.Logf("job admitted and completed in %v", time.Since(t0).Round(time.Millisecond))

	// The node agent profiled the job's container and reported its run:
	// the signature now has a fourth.
	poll(t, "the job's run reported by the node agent", 90*time.Second, func() (bool, error) {
		info, err := signatureInfo(c, sig.Hash)
		if err != nil {
			return false, err
		}
		return len(info.Runs) == 4, fmt.Errorf("%d runs kept", len(info.Runs))
	})
	p, err := c.cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 0 {
		t.Errorf("container status %+v: want exited 0", p.Status.ContainerStatuses)
	}
	if p.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("QoS %s, want Burstable", p.Status.QOSClass)
	}

	// A pod of another signature and code is admitted as declared (the
	// predictor knows it only through its global prior), and the annotation
	// says why.
	noHist := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "fresh", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "docker.io/local/busybox:1",
			ImagePullPolicy: corev1.PullNever, Command: []string{"true"},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("300m")}}}}},
	}
	created, err := c.cs.CoreV1().Pods(ns).Create(ctx, noHist, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if a := created.Annotations[webhook.AnnotationResources]; !strings.Contains(a, `\"prior\" history only: left as declared`) {
		t.Errorf("pod without history: annotation %q, want it to say prior only, left as declared", a)
	}
	if r := created.Spec.Containers[0].Resources.Requests.Cpu(); r.Cmp(q("300m")) != 0 {
		t.Errorf("pod without history: cpu request %v, want the declared 300m", r)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// signatureInfo asks the predictor what it keeps for sig.
func signatureInfo(c *cluster, sig string) (predictor.SignatureInfo, error) {
	var info predictor.SignatureInfo
	if err := getJSON(c.predURL+"/v1/signatures/"+sig, &info); err != nil {
		return info, err
	}
	return info, nil
}

// getJSON GETs url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}
