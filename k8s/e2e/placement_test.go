package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/prescient-sched/prescient/k8s/internal/core"
	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/scheduler"
)

const mib = 1 << 20

// fakeNode registers a node with no kubelet behind it (as kube-scheduler's
// scheduler_perf does): 2 cores and mem allocatable, tainted so that no
// other test's pod lands there. Pods bound to it stay Pending: what is
// tested is the scheduler's decision, the binding.
func fakeNode(t *testing.T, c *cluster, name, mem string) {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "prescient.io/fake": "true"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "prescient.io/fake", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q(mem), corev1.ResourcePods: q("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q(mem), corev1.ResourcePods: q("110")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "Fake",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		},
	}
	if _, err := c.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// fakePod is a pod for a fake node: it declares 800Mi, as users do, and
// its command names its curve (so each shape is its own signature).
func fakePod(ns, name, node, shape, schedulerName string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			SchedulerName: schedulerName,
			NodeSelector:  map[string]string{"kubernetes.io/hostname": node},
			Tolerations:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "work", Image: "docker.io/local/busybox:1", ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", "echo " + shape},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("800Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: q("800Mi")},
				},
			}},
		},
	}
}

// seedShape records three runs of shape's signature: 3 minutes, 50 MiB
// but for [from, to) seconds, where it holds 800 MiB.
func seedShape(t *testing.T, c *cluster, ns, shape string, from, to int) {
	t.Helper()
	s, err := podsig.NewSigner(podsig.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(fakePod(ns, "x", "x", shape, ""), "work", "Pod")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-3 * time.Hour)
	for i := range 3 {
		run := predictor.RunRequest{Signature: sig.Hash, Code: sig.Code, Start: start.Add(time.Duration(i) * time.Hour), StepSeconds: 1}
		for k := range 180 {
			m := 50.0
			if k >= from && k < to {
				m = 800
			}
			run.Samples = append(run.Samples, predictor.Sample{CPU: 0.1, Memory: m * mib})
		}
		if _, err := c.predictor.Record(context.Background(), run); err != nil {
			t.Fatalf("seed %s: %v", shape, err)
		}
	}
}

func namespace(t *testing.T, c *cluster, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	poll(t, "default service account in "+ns, 60*time.Second, func() (bool, error) {
		_, err := c.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	t.Cleanup(func() { _ = c.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
}

func create(t *testing.T, c *cluster, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	p, err := c.cs.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitBound waits for the pod's binding; it returns the node.
func waitBound(t *testing.T, c *cluster, ns, name string) string {
	t.Helper()
	var node string
	poll(t, "pod "+name+" bound", 90*time.Second, func() (bool, error) {
		p, err := c.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "", fmt.Errorf("conditions %+v", p.Status.Conditions)
	})
	return node
}

// waitUnschedulable waits for the scheduler to say the pod does not fit
// (and checks it is still unbound); it returns the scheduler's message.
func waitUnschedulable(t *testing.T, c *cluster, ns, name string) string {
	t.Helper()
	var msg string
	poll(t, "pod "+name+" unschedulable", 90*time.Second, func() (bool, error) {
		p, err := c.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			t.Fatalf("pod %s bound to %s, want it refused", name, p.Spec.NodeName)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
				msg = cond.Message
				return true, nil
			}
		}
		return false, fmt.Errorf("conditions %+v", p.Status.Conditions)
	})
	return msg
}

// TestPluginPacksPeaksApart is issue 14's placement check: two pods whose
// predicted 800 MB peaks do not overlap are placed on one node with 1 GB
// allocatable by the Prescient plugin, where the default scheduler, by the
// declared 800Mi requests, refuses the second; a third whose peak meets
// the first's is refused by the plugin too.
func TestPluginPacksPeaksApart(t *testing.T) {
	c := startCluster(t)
	ns := "e2e-place"
	namespace(t, c, ns)
	fakeNode(t, c, "fake-default", "1Gi")
	fakeNode(t, c, "fake-prescient", "1Gi")
	seedShape(t, c, ns, "early", 0, 60)
	seedShape(t, c, ns, "late", 100, 160)

	// The default scheduler, by requests.
	create(t, c, fakePod(ns, "default-1", "fake-default", "early", ""))
	if n := waitBound(t, c, ns, "default-1"); n != "fake-default" {
		t.Fatalf("default-1 on %s", n)
	}
	create(t, c, fakePod(ns, "default-2", "fake-default", "late", ""))
	msg := waitUnschedulable(t, c, ns, "default-2")
	t.Logf("default scheduler, second 800Mi pod on 1Gi: %s", msg)
	if !strings.Contains(msg, "Insufficient memory") {
		t.Errorf("default scheduler refused for %q, want Insufficient memory", msg)
	}

	// The Prescient plugin, by the curves.
	t0 := time.Now()
	create(t, c, fakePod(ns, "early", "fake-prescient", "early", "prescient"))
	create(t, c, fakePod(ns, "late", "fake-prescient", "late", "prescient"))
	for _, name := range []string{"early", "late"} {
		if n := waitBound(t, c, ns, name); n != "fake-prescient" {
			t.Fatalf("%s on %s", name, n)
		}
	}
	t.Logf("plugin: both 800 MB peaks on the 1 GiB node in %v", time.Since(t0).Round(time.Millisecond))
	var cal core.CalendarView
	if err := getJSON(c.schedURL+"/calendars/fake-prescient", &cal); err != nil {
		t.Fatal(err)
	}
	for _, h := range cal.Holds {
		t.Logf("calendar fake-prescient: %s %s committed=%v peak %.0f MiB until %v", h.ID, h.Kind, h.Committed, h.Peak.Memory/mib, h.End.Format(time.TimeOnly))
		if h.Kind != core.HoldCurve || !h.Committed {
			t.Errorf("hold %+v: want a committed curve", h)
		}
	}
	if len(cal.Holds) != 2 {
		t.Errorf("calendar holds %d pods, want 2", len(cal.Holds))
	}
	p, err := c.cs.CoreV1().Pods(ns).Get(context.Background(), "late", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Annotations["prescient.io/placement"] == "" {
		t.Error("no placement record on the pod bound by the plugin")
	}

	create(t, c, fakePod(ns, "early-2", "fake-prescient", "early", "prescient"))
	msg = waitUnschedulable(t, c, ns, "early-2")
	t.Logf("plugin, a third pod whose peak meets the first's: %s", msg)
	if !strings.Contains(msg, "prescient") {
		t.Errorf("refused for %q, want the plugin's reason", msg)
	}
}

// TestUnreserveOnFailedBind: a binding the API server refuses (an
// admission policy denies bindings to one node) makes the framework call
// Unreserve, which gives the node's calendar back.
func TestUnreserveOnFailedBind(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "e2e-unreserve"
	namespace(t, c, ns)
	fakeNode(t, c, "fake-fail", "1Gi")
	seedShape(t, c, ns, "early", 0, 60)

	deny := admissionv1.Deny
	pol := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-no-binding-to-fake-fail"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/binding"}}},
			}}},
			Validations: []admissionv1.Validation{{Expression: "!object.target.name.startsWith('fake-fail')", Message: "e2e: no binding to fake-fail"}},
		},
	}
	if _, err := c.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), pol.Name, metav1.DeleteOptions{})
	})
	b := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: pol.Name, ValidationActions: []admissionv1.ValidationAction{deny}},
	}
	if _, err := c.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), b.Name, metav1.DeleteOptions{})
	})
	// The policy takes effect when the API server has loaded it: a probe
	// pod's binding says so — to a node name the policy covers that does
	// not exist, so that a probe bound before the policy holds nothing on
	// fake-fail's calendar.
	poll(t, "the binding policy in effect", 60*time.Second, func() (bool, error) {
		probe := create(t, c, fakePod(ns, fmt.Sprintf("probe-%d", time.Now().UnixNano()), "nowhere", "probe", "no-such-scheduler"))
		defer c.cs.CoreV1().Pods(ns).Delete(ctx, probe.Name, metav1.DeleteOptions{})
		err := c.cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: probe.Name, Namespace: ns},
			Target: corev1.ObjectReference{Kind: "Node", Name: "fake-fail-probe"}}, metav1.CreateOptions{})
		return err != nil && strings.Contains(err.Error(), "no binding to fake-fail"), err
	})

	pod := create(t, c, fakePod(ns, "refused", "fake-fail", "early", "prescient"))
	var info scheduler.PodInfo
	poll(t, "a failed bind, then Unreserve", 90*time.Second, func() (bool, error) {
		if err := getJSON(c.schedURL+"/pods/"+string(pod.UID), &info); err != nil {
			return false, err
		}
		failed := false
		for _, e := range info.Events {
			if e.What == "bind-failed" {
				failed = true
			}
			if failed && e.What == "unreserve" {
				return true, nil
			}
		}
		return false, fmt.Errorf("events %+v", info.Events)
	})
	t.Logf("pod events: %+v", info.Events)
	// Between its retries the pod holds nothing on the node.
	poll(t, "fake-fail's calendar empty", 60*time.Second, func() (bool, error) {
		var cal core.CalendarView
		if err := getJSON(c.schedURL+"/calendars/fake-fail", &cal); err != nil {
			return false, err
		}
		return len(cal.Holds) == 0 && cal.FreeNow.Memory == cal.Capacity.Memory, fmt.Errorf("calendar %+v", cal)
	})
	var st scheduler.Stats
	if err := getJSON(c.schedURL+"/stats", &st); err != nil {
		t.Fatal(err)
	}
	if st.BindErrors < 1 || st.Unreserved < 1 {
		t.Errorf("stats %+v: want bind errors and unreserves", st)
	}
	p, err := c.cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Errorf("pod bound to %q despite the policy", p.Spec.NodeName)
	}
}
