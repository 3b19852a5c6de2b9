package webhook

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// maxOwnerCache bounds the owner cache; it is emptied when full.
const maxOwnerCache = 4096

// KubeOwners resolves owners through the API server: a Job to its
// controller (a CronJob), a ReplicaSet to its (a Deployment). Answers are
// cached by the owner's UID (an object's controller does not change).
// Needs get on batch/jobs and apps/replicasets. Safe for concurrent use;
// mu guards cache.
type KubeOwners struct {
	cs kubernetes.Interface

	mu    sync.Mutex
	cache map[types.UID]string
}

var _ OwnerResolver = (*KubeOwners)(nil)

// NewKubeOwners returns a resolver over cs.
func NewKubeOwners(cs kubernetes.Interface) *KubeOwners {
	return &KubeOwners{cs: cs, cache: map[types.UID]string{}}
}

// ControllerKind implements OwnerResolver.
func (o *KubeOwners) ControllerKind(ctx context.Context, namespace string, ref metav1.OwnerReference) (string, error) {
	o.mu.Lock()
	kind, ok := o.cache[ref.UID]
	o.mu.Unlock()
	if ok {
		return kind, nil
	}
	var obj metav1.Object
	var err error
	switch ref.Kind {
	case "Job":
		obj, err = o.cs.BatchV1().Jobs(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	case "ReplicaSet":
		obj, err = o.cs.AppsV1().ReplicaSets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	default:
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get %s: %w", ref.Kind, err)
	}
	if obj.GetUID() != ref.UID {
		return "", fmt.Errorf("%s %s has uid %s, the pod names %s", ref.Kind, ref.Name, obj.GetUID(), ref.UID)
	}
	if c := metav1.GetControllerOfNoCopy(obj); c != nil {
		kind = c.Kind
	}
	o.mu.Lock()
	if len(o.cache) >= maxOwnerCache {
		clear(o.cache)
	}
	o.cache[ref.UID] = kind
	o.mu.Unlock()
	return kind, nil
}
