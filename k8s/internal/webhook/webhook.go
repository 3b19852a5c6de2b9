package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
)

// Labels and annotations.
const (
	// LabelOptIn opts a pod in ("true") or out ("false"); on a namespace,
	// "enabled" opts in every pod of it that does not say "false". The
	// MutatingWebhookConfiguration's selectors do the choosing
	// (deploy/); the handler only honours "false".
	LabelOptIn = "prescient.io/predict"
	// AnnotationResources records, per container, what was declared,
	// what was set and why (a JSON Record). A pod that has it is not
	// changed again.
	AnnotationResources = "prescient.io/resources"
)

// Errors returned by this package.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("webhook: invalid config")
	// ErrRequest reports an admission request that cannot be read.
	ErrRequest = errors.New("webhook: bad request")
)

// maxReviewBytes bounds an AdmissionReview body (the API server sends
// objects of at most 3 MiB).
const maxReviewBytes = 4 << 20

// Predictor answers predictions; *predictor.Client is one.
type Predictor interface {
	Predict(ctx context.Context, req predictor.PredictRequest) (predictor.PredictResponse, error)
}

// OwnerResolver resolves a controller to its own controller's kind (a
// Job to "CronJob", a ReplicaSet to "Deployment"), "" when it has none.
// Implementations are safe for concurrent use.
type OwnerResolver interface {
	ControllerKind(ctx context.Context, namespace string, ref metav1.OwnerReference) (string, error)
}

// Config configures a Handler.
type Config struct {
	Predictor Predictor      // required
	Signer    *podsig.Signer // required
	// Owners resolves a Job to its CronJob (and a ReplicaSet to its
	// Deployment); nil keeps the pod's own controller kind.
	Owners OwnerResolver
	// Timeout bounds the predictor calls of one admission; default 2 s.
	Timeout time.Duration
	// MinCPU and MinMemory floor what is set; default 10m and 16Mi.
	MinCPU, MinMemory resource.Quantity
	// LimitHeadroom is the fraction added on top of the predicted upper
	// peak for a limit; default 0.25.
	LimitHeadroom float64
	// Sources are the cold-start rungs trusted to set resources; default
	// exact, size, code (a global prior is no better than what was
	// declared).
	Sources []string
	Log     *slog.Logger
}

func (c *Config) validate() error {
	if c.Predictor == nil || c.Signer == nil {
		return fmt.Errorf("predictor and signer are required: %w", ErrConfig)
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.MinCPU.IsZero() {
		c.MinCPU = resource.MustParse("10m")
	}
	if c.MinMemory.IsZero() {
		c.MinMemory = resource.MustParse("16Mi")
	}
	if c.LimitHeadroom == 0 {
		c.LimitHeadroom = 0.25
	}
	if c.Sources == nil {
		c.Sources = []string{"exact", "size", "code"}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Timeout < 0 || c.LimitHeadroom < 0 || math.IsNaN(c.LimitHeadroom) || c.MinCPU.Sign() < 0 || c.MinMemory.Sign() < 0 {
		return fmt.Errorf("timeout %v, headroom %v, min cpu %v, min memory %v: %w", c.Timeout, c.LimitHeadroom, &c.MinCPU, &c.MinMemory, ErrConfig)
	}
	return nil
}

// Handler is the mutating admission webhook: at pod creation it signs each
// container, asks the predictor for its curve, and rewrites its CPU and
// memory requests (and the limits it declared) to the predicted values,
// recording in AnnotationResources what was declared, what was set and
// why. It never denies a pod: any failure leaves the pod as declared,
// with the reason in the annotation. Safe for concurrent use.
type Handler struct {
	cfg Config
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg}, nil
}

// Record is the value of AnnotationResources.
type Record struct {
	Version    int               `json:"version"`
	Containers []ContainerRecord `json:"containers"`
}

// ContainerRecord is one container's entry in a Record.
type ContainerRecord struct {
	Name      string                       `json:"name"`
	Signature string                       `json:"signature,omitempty"`
	Code      string                       `json:"code,omitempty"`
	Owner     string                       `json:"owner,omitempty"`
	Source    string                       `json:"source,omitempty"`
	Declared  corev1.ResourceRequirements  `json:"declared"`
	Set       *corev1.ResourceRequirements `json:"set,omitempty"` // nil: left as declared
	Why       string                       `json:"why"`
}

// patchOp is one RFC 6902 JSON Patch operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// ServeHTTP serves AdmissionReview v1 requests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	review, err := decodeReview(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := h.Review(r.Context(), review.Request)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// decodeReview reads an AdmissionReview v1 with a request.
func decodeReview(r io.Reader) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r).Decode(&review); err != nil {
		return nil, fmt.Errorf("decode admission review: %w: %w", ErrRequest, err)
	}
	if review.Request == nil {
		return nil, fmt.Errorf("admission review without a request: %w", ErrRequest)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("%s %s: want admission.k8s.io/v1 AdmissionReview: %w", review.APIVersion, review.Kind, ErrRequest)
	}
	return &review, nil
}

// Review answers one admission request: always allowed, with a patch when
// something was predicted.
func (h *Handler) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return resp
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		resp.Warnings = []string{"prescient: pod not decoded, left as declared"}
		h.cfg.Log.Warn("decode pod", "err", err)
		return resp
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	ops := h.Mutate(ctx, &pod)
	if len(ops) == 0 {
		return resp
	}
	patch, err := json.Marshal(ops)
	if err != nil { // cannot happen: the values are API types
		h.cfg.Log.Error("encode patch", "err", err)
		return resp
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	return resp
}

// Mutate returns the JSON Patch for pod: new resources for the containers
// that have a trusted prediction, and the annotation for every container.
// No patch for a pod that opted out or was already handled.
func (h *Handler) Mutate(ctx context.Context, pod *corev1.Pod) []patchOp {
	if pod.Labels[LabelOptIn] == "false" {
		return nil
	}
	if _, done := pod.Annotations[AnnotationResources]; done {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	log := h.cfg.Log.With("namespace", pod.Namespace, "pod", podName(pod))

	rec := Record{Version: 1}
	var ops []patchOp
	owner, ownerErr := h.owner(ctx, pod)
	guaranteed := isGuaranteed(pod)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cr := ContainerRecord{Name: c.Name, Declared: c.Resources, Owner: owner}
		switch set, why := h.container(ctx, pod, c, owner, ownerErr, guaranteed, &cr); {
		case set != nil:
			cr.Set, cr.Why = set, why
			ops = append(ops, patchOp{Op: "add", Path: fmt.Sprintf("/spec/containers/%d/resources", i), Value: set})
		default:
			cr.Why = why
		}
		log.Debug("container", "container", c.Name, "signature", cr.Signature, "set", cr.Set != nil, "why", cr.Why)
		rec.Containers = append(rec.Containers, cr)
	}
	b, _ := json.Marshal(rec) // API types and strings: cannot fail
	if pod.Annotations == nil {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{AnnotationResources: string(b)}})
	} else {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations/" + escapePointer(AnnotationResources), Value: string(b)})
	}
	return ops
}

// container decides one container's resources: nil to leave them as
// declared, with the reason either way.
func (h *Handler) container(ctx context.Context, pod *corev1.Pod, c *corev1.Container, owner string, ownerErr error, guaranteed bool, cr *ContainerRecord) (*corev1.ResourceRequirements, string) {
	if pod.Spec.Resources != nil {
		return nil, "pod-level resources are set: left as declared"
	}
	if ownerErr != nil {
		return nil, "owner not resolved, so no signature: " + ownerErr.Error()
	}
	sig, err := h.cfg.Signer.Sign(pod, c.Name, owner)
	if err != nil {
		return nil, "not signed: " + err.Error()
	}
	cr.Signature, cr.Code = sig.Hash, sig.Code
	f := sig.Features()
	p, err := h.cfg.Predictor.Predict(ctx, predictor.PredictRequest{Signature: f.Signature, Code: f.Code, InputBytes: f.InputBytes, InputType: f.InputType})
	if errors.Is(err, predictor.ErrNoHistory) {
		return nil, "no history for this signature or its code: left as declared"
	}
	if err != nil {
		return nil, "predictor unavailable, left as declared: " + err.Error()
	}
	cr.Source = p.Source
	if !slices.Contains(h.cfg.Sources, p.Source) {
		return nil, fmt.Sprintf("prediction from %q history only: left as declared", p.Source)
	}
	set, why := h.resources(c.Resources, p, guaranteed)
	return &set, why
}

// resources derives a container's new requirements from a prediction:
//
//	requests.cpu    = peak of the median CPU curve        (CPU is compressible)
//	requests.memory = peak of the upper memory curve      (memory is not)
//	limits          = only those declared: upper peak × (1 + headroom), ≥ request
//	guaranteed pod  = requests = limits = upper peak × (1 + headroom), kept guaranteed
//
// each at least the configured floor; other resources are kept.
func (h *Handler) resources(decl corev1.ResourceRequirements, p predictor.PredictResponse, guaranteed bool) (corev1.ResourceRequirements, string) {
	k := 1 + h.cfg.LimitHeadroom
	cpuReq := milli(p.CPU.Peak.P50, h.cfg.MinCPU)
	memReq := mebi(p.Memory.Peak.Upper, h.cfg.MinMemory)
	cpuLim := milli(p.CPU.Peak.Upper*k, h.cfg.MinCPU)
	memLim := mebi(p.Memory.Peak.Upper*k, h.cfg.MinMemory)
	if cpuLim.Cmp(cpuReq) < 0 {
		cpuLim = cpuReq
	}
	set := corev1.ResourceRequirements{Requests: cloneList(decl.Requests), Limits: cloneList(decl.Limits), Claims: decl.Claims}
	if set.Requests == nil {
		set.Requests = corev1.ResourceList{}
	}
	why := fmt.Sprintf("predicted from %s history (model %s, p%.0f): cpu peak p50 %.3f / upper %.3f cores, memory peak upper %.1f MiB",
		p.Source, p.Model, 100*p.UpperQuantile, p.CPU.Peak.P50, p.CPU.Peak.Upper, p.Memory.Peak.Upper/(1<<20))
	if guaranteed {
		set.Requests[corev1.ResourceCPU], set.Limits[corev1.ResourceCPU] = cpuLim, cpuLim
		set.Requests[corev1.ResourceMemory], set.Limits[corev1.ResourceMemory] = memLim, memLim
		return set, why + fmt.Sprintf("; guaranteed QoS kept: requests = limits = upper × %.2f", k)
	}
	set.Requests[corev1.ResourceCPU] = cpuReq
	set.Requests[corev1.ResourceMemory] = memReq
	if _, ok := set.Limits[corev1.ResourceCPU]; ok {
		set.Limits[corev1.ResourceCPU] = cpuLim
	}
	if _, ok := set.Limits[corev1.ResourceMemory]; ok {
		set.Limits[corev1.ResourceMemory] = memLim
	}
	return set, why + fmt.Sprintf("; declared limits set to upper × %.2f", k)
}

// milli is cores as a quantity rounded up to a millicore, at least floor.
func milli(cores float64, floor resource.Quantity) resource.Quantity {
	q := *resource.NewMilliQuantity(int64(math.Ceil(cores*1000-1e-9)), resource.DecimalSI)
	if q.Cmp(floor) < 0 {
		return floor.DeepCopy()
	}
	return q
}

// mebi is bytes as a quantity rounded up to a MiB, at least floor.
func mebi(bytes float64, floor resource.Quantity) resource.Quantity {
	q := *resource.NewQuantity(int64(math.Ceil(bytes/(1<<20)-1e-9))<<20, resource.BinarySI)
	if q.Cmp(floor) < 0 {
		return floor.DeepCopy()
	}
	return q
}

func cloneList(l corev1.ResourceList) corev1.ResourceList {
	if l == nil {
		return nil
	}
	out := make(corev1.ResourceList, len(l))
	for k, v := range l {
		out[k] = v.DeepCopy()
	}
	return out
}

// isGuaranteed reports whether the pod as declared has the Guaranteed QoS
// class: every container, init containers included, limits CPU and
// memory, with requests equal to limits (defaulting has already copied
// limits into missing requests).
func isGuaranteed(pod *corev1.Pod) bool {
	all := slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)
	if len(all) == 0 {
		return false
	}
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			l, ok := c.Resources.Limits[r]
			if !ok {
				return false
			}
			if q, ok := c.Resources.Requests[r]; ok && q.Cmp(l) != 0 {
				return false
			}
		}
	}
	return true
}

// owner is the owner kind that enters the signature.
func (h *Handler) owner(ctx context.Context, pod *corev1.Pod) (string, error) {
	kind := podsig.OwnerKind(pod)
	if h.cfg.Owners == nil || (kind != "Job" && kind != "ReplicaSet") {
		return kind, nil
	}
	ref := metav1.GetControllerOf(pod)
	up, err := h.cfg.Owners.ControllerKind(ctx, pod.Namespace, *ref)
	if err != nil {
		return kind, fmt.Errorf("%s %s/%s: %w", ref.Kind, pod.Namespace, ref.Name, err)
	}
	if up != "" {
		return up, nil
	}
	return kind, nil
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "…"
}

// escapePointer escapes a JSON Pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
