package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/prescient-sched/prescient/k8s/internal/agent"
)

// TestResizeBeforeOOM: a pod whose use grows past its limit (64Mi, 4 MiB a
// second to 128 MiB of files in the host's /dev/shm, a tmpfs whose pages
// are charged to the container that writes them; a memory-backed emptyDir
// would be sized by the pod's limit at creation and fill up first) has its
// limit raised in place by the node agent before the kernel OOM-kills it:
// it completes, never restarted, with a larger limit than it started with.
func TestResizeBeforeOOM(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "e2e-resize"
	namespace(t, c, ns)
	shm := "/dev/shm/prescient-e2e-grow"
	t.Cleanup(func() { _ = os.RemoveAll(shm) })
	dir := corev1.HostPathDirectoryOrCreate
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "grow", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "grow", Image: "docker.io/local/busybox:1", ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", "i=0; while [ $i -lt 64 ]; do dd if=/dev/zero of=/scratch/f$i bs=1M count=2 2>/dev/null || exit 3; i=$((i+1)); sleep 0.5; done; rm -f /scratch/f*; echo grown"},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: q("50m"), corev1.ResourceMemory: q("32Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: q("64Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: shm, Type: &dir}}}},
		},
	}
	create(t, c, pod)
	var p *corev1.Pod
	poll(t, "the growing pod done", 180*time.Second, func() (bool, error) {
		var err error
		p, err = c.cs.CoreV1().Pods(ns).Get(ctx, "grow", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed {
			for _, cs := range p.Status.ContainerStatuses {
				if term := cs.State.Terminated; term != nil {
					t.Fatalf("container ended %s (exit %d; limit now %v): %+v", term.Reason, term.ExitCode, p.Spec.Containers[0].Resources.Limits.Memory(), p.Status)
				}
			}
		}
		return p.Status.Phase == corev1.PodSucceeded, fmt.Errorf("phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	lim := p.Spec.Containers[0].Resources.Limits.Memory()
	t.Logf("limit after the run: %v (started at 64Mi)", lim)
	if lim.Cmp(q("64Mi")) <= 0 {
		t.Errorf("limit %v: want it raised above 64Mi", lim)
	}
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 || cs[0].State.Terminated == nil || cs[0].State.Terminated.Reason == "OOMKilled" {
		t.Errorf("status %+v: want one run, not OOM-killed", cs)
	}
	var st agent.Stats
	if err := getJSON(c.agentURL+"/stats", &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("node agent: %+v", st)
	if st.Resizes < 1 {
		t.Errorf("agent stats %+v: want a resize", st)
	}
}
