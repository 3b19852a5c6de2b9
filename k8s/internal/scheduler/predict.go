package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/prescient-sched/prescient/k8s/internal/core"
	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

// Predictor answers predictions; *predictor.Client is one.
type Predictor interface {
	Predict(ctx context.Context, req predictor.PredictRequest) (predictor.PredictResponse, error)
}

// OwnerResolver resolves a Job to its CronJob for the signature;
// *webhook.KubeOwners is one.
type OwnerResolver = webhook.OwnerResolver

// planner turns a pod into its plan: the sum of its containers' predicted
// curves, or its requests when any container has no trusted prediction.
// Safe for concurrent use.
type planner struct {
	cfg     core.CalendarConfig
	pred    Predictor
	signer  *podsig.Signer
	owners  OwnerResolver // may be nil
	sources []string
	timeout time.Duration
	ttl     time.Duration

	mu    sync.Mutex
	cache map[string]cached // guarded by mu: by the containers' features
}

type cached struct {
	plan    *core.Plan
	source  string
	expires time.Time
}

// planned is what the planner decided for a pod.
type planned struct {
	plan   *core.Plan
	source string // the least specific rung among the containers; "" for requests
	why    string // why the pod is placed by its requests
}

// plan returns pod's plan; it never fails: what cannot be predicted is
// placed by its requests, and why says so.
func (pl *planner) plan(ctx context.Context, pod *corev1.Pod, now time.Time) planned {
	reqs := requestsOf(pod)
	flat := func(why string) planned {
		p, err := pl.cfg.FlatPlan(reqs)
		if err != nil { // requests are API quantities: cannot be invalid
			p, _ = pl.cfg.FlatPlan(core.Usage{})
		}
		return planned{plan: p, why: why}
	}
	if pod.Spec.Resources != nil {
		return flat("pod-level resources: placed by its requests")
	}
	feats, err := pl.features(ctx, pod)
	if err != nil {
		return flat("not signed: " + err.Error())
	}
	key := cacheKey(feats)
	if pl.ttl > 0 {
		pl.mu.Lock()
		c, ok := pl.cache[key]
		pl.mu.Unlock()
		if ok && now.Before(c.expires) {
			return planned{plan: c.plan, source: c.source}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, pl.timeout)
	defer cancel()
	curve := core.PodCurve{}
	source := ""
	for i, f := range feats {
		p, err := pl.pred.Predict(ctx, predictor.PredictRequest{Signature: f.Signature, Code: f.Code, InputBytes: f.InputBytes, InputType: f.InputType})
		if errors.Is(err, predictor.ErrNoHistory) {
			return flat(fmt.Sprintf("container %s: no history: placed by its requests", pod.Spec.Containers[i].Name))
		}
		if err != nil {
			return flat(fmt.Sprintf("container %s: predictor unavailable, placed by its requests: %v", pod.Spec.Containers[i].Name, err))
		}
		if !slices.Contains(pl.sources, p.Source) {
			return flat(fmt.Sprintf("container %s: prediction from %q history only: placed by its requests", pod.Spec.Containers[i].Name, p.Source))
		}
		step := time.Duration(math.Round(p.StepSeconds * float64(time.Second)))
		if curve.Step == 0 {
			curve.Step = step
		} else if step != curve.Step {
			return flat(fmt.Sprintf("container %s: step %v differs from %v: placed by its requests", pod.Spec.Containers[i].Name, step, curve.Step))
		}
		cc, err := containerCurve(pod.Spec.Containers[i].Name, p)
		if err != nil {
			return flat(err.Error())
		}
		curve.Containers = append(curve.Containers, cc)
		if source == "" || rung(p.Source) > rung(source) {
			source = p.Source
		}
	}
	plan, err := pl.cfg.NewPlan(curve)
	if err != nil {
		return flat("curve not planned: " + err.Error())
	}
	if pl.ttl > 0 {
		pl.mu.Lock()
		if len(pl.cache) > 4096 { // a bound, not an LRU: the next misses refill it
			clear(pl.cache)
		}
		pl.cache[key] = cached{plan: plan, source: source, expires: now.Add(pl.ttl)}
		pl.mu.Unlock()
	}
	return planned{plan: plan, source: source}
}

// rung orders the cold-start chain, most specific first.
func rung(source string) int {
	switch source {
	case "exact":
		return 0
	case "size":
		return 1
	case "code":
		return 2
	}
	return 3
}

// features signs every container of pod. The owner kind is the one the
// webhook recorded (it resolved a Job to its CronJob), else the pod's
// controller's, resolved the same way when an OwnerResolver is set.
func (pl *planner) features(ctx context.Context, pod *corev1.Pod) ([]core.Features, error) {
	owner := ""
	if a, ok := pod.Annotations[webhook.AnnotationResources]; ok {
		var rec webhook.Record
		if json.Unmarshal([]byte(a), &rec) == nil {
			for _, c := range rec.Containers {
				if c.Owner != "" {
					owner = c.Owner
					break
				}
			}
		}
	}
	if owner == "" {
		owner = podsig.OwnerKind(pod)
		if ref := controllerOf(pod); pl.owners != nil && ref != nil && (owner == "Job" || owner == "ReplicaSet") {
			up, err := pl.owners.ControllerKind(ctx, pod.Namespace, *ref)
			if err != nil {
				return nil, fmt.Errorf("owner %s %s: %w", ref.Kind, ref.Name, err)
			}
			if up != "" {
				owner = up
			}
		}
	}
	out := make([]core.Features, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		sig, err := pl.signer.Sign(pod, c.Name, owner)
		if err != nil {
			return nil, err
		}
		out[i] = sig.Features()
	}
	return out, nil
}

func cacheKey(fs []core.Features) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s/%s/%g/%s;", f.Signature, f.Code, f.InputBytes, f.InputType)
	}
	return b.String()
}

// containerCurve reads a prediction: hold CPU at the median, memory at the
// upper quantile; upper both at the upper quantile.
func containerCurve(name string, p predictor.PredictResponse) (core.ContainerCurve, error) {
	n := max(len(p.CPU.Curve.P50), len(p.CPU.Curve.Upper), len(p.Memory.Curve.Upper))
	if n == 0 {
		return core.ContainerCurve{}, fmt.Errorf("container %s: empty curve: placed by its requests", name)
	}
	at := func(vs []float64, i int) float64 {
		if i < len(vs) {
			return vs[i]
		}
		return 0
	}
	cc := core.ContainerCurve{Name: name, Hold: make([]core.Usage, n), Upper: make([]core.Usage, n)}
	for i := range n {
		mem := at(p.Memory.Curve.Upper, i)
		cc.Hold[i] = core.Usage{CPU: at(p.CPU.Curve.P50, i), Memory: mem}
		cc.Upper[i] = core.Usage{CPU: max(at(p.CPU.Curve.Upper, i), cc.Hold[i].CPU), Memory: mem}
	}
	return cc, nil
}

// requestsOf is what the pod requests, as the scheduler counts it (init
// containers, sidecars and overhead included).
func requestsOf(pod *corev1.Pod) core.Usage {
	r := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	return core.Usage{CPU: float64(r.Cpu().MilliValue()) / 1000, Memory: float64(r.Memory().Value())}
}
