package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

// Run watches the pods of the agent's node and ticks every Step until ctx
// ends; it returns when both have stopped.
func (a *Agent) Run(ctx context.Context, cs kubernetes.Interface) error {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.Node).String()
		}))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.syncObj(ctx, obj) },
		UpdateFunc: func(_, obj any) { a.syncObj(ctx, obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				a.Forget(pod)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("pod informer: %w", ctx.Err())
	}
	a.cfg.Log.Info("node agent running", "node", a.cfg.Node, "cgroupV2", a.hier.v2, "step", a.cfg.Step)
	t := time.NewTicker(a.cfg.Step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Report what ended, with a short deadline of its own.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			a.Tick(rctx, time.Now())
			cancel()
			return nil
		case now := <-t.C:
			a.Tick(ctx, now)
		}
	}
}

func (a *Agent) syncObj(ctx context.Context, obj any) {
	if pod, ok := obj.(*corev1.Pod); ok {
		a.Sync(ctx, pod)
	}
}

// KubeResizer resizes through the API server's pods/resize subresource.
type KubeResizer struct{ cs kubernetes.Interface }

// NewKubeResizer returns a Resizer of cs.
func NewKubeResizer(cs kubernetes.Interface) *KubeResizer { return &KubeResizer{cs: cs} }

// ResizeMemory implements Resizer.
func (k *KubeResizer) ResizeMemory(ctx context.Context, ns, pod, container string, request, limit int64) error {
	type res struct {
		Requests corev1.ResourceList `json:"requests,omitempty"`
		Limits   corev1.ResourceList `json:"limits,omitempty"`
	}
	type ctr struct {
		Name      string `json:"name"`
		Resources res    `json:"resources"`
	}
	patch := map[string]any{"spec": map[string]any{"containers": []ctr{{Name: container, Resources: res{
		Requests: corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(request, resource.BinarySI)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(limit, resource.BinarySI)},
	}}}}}
	b, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("resize patch: %w", err)
	}
	if _, err := k.cs.CoreV1().Pods(ns).Patch(ctx, pod, types.StrategicMergePatchType, b, metav1.PatchOptions{}, "resize"); err != nil {
		return fmt.Errorf("resize %s/%s: %w", ns, pod, err)
	}
	return nil
}

func webhookRecord(pod *corev1.Pod) (webhook.Record, bool) {
	a, ok := pod.Annotations[webhook.AnnotationResources]
	if !ok {
		return webhook.Record{}, false
	}
	var rec webhook.Record
	if json.Unmarshal([]byte(a), &rec) != nil {
		return webhook.Record{}, false
	}
	return rec, true
}

func controllerRef(pod *corev1.Pod) *metav1.OwnerReference { return metav1.GetControllerOf(pod) }
