package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("agent: invalid config")

const bytesPerMiB = 1 << 20

// Recorder records finished runs; *predictor.Client is one.
type Recorder interface {
	Record(ctx context.Context, req predictor.RunRequest) (predictor.RunResponse, error)
}

// Resizer changes a running container's memory in place (the pod's resize
// subresource). request and limit are bytes.
type Resizer interface {
	ResizeMemory(ctx context.Context, namespace, pod, container string, request, limit int64) error
}

// SampleSink stores samples; *store.Samples is one.
type SampleSink interface {
	Append(taskID, sig string, ss ...resource.Sample) error
}

// OwnerResolver resolves a Job to its CronJob; *webhook.KubeOwners is one.
type OwnerResolver = webhook.OwnerResolver

// Config configures an Agent. The zero value of each optional field means
// its default.
type Config struct {
	Node        string        // this node's name; required
	CgroupMount string        // where the host's cgroups are mounted; default /sys/fs/cgroup
	CgroupRoot  string        // the kubelet's cgroupRoot; default: searched for
	Step        time.Duration // sampling step, the predictor's; default 1 s
	Recorder    Recorder      // required
	Resizer     Resizer       // nil: never resize
	Samples     SampleSink    // nil: samples are kept only until the run is reported
	Owners      OwnerResolver // nil: a Job's owner kind is "Job" unless the webhook said otherwise
	EnvDeny     []string      // added to the signature's deny list (the webhook's --env-deny)
	// ResizeAt is the share of its memory limit a container's working set
	// reaches before the limit is raised; default 0.8.
	ResizeAt float64
	// Grow is the factor a raised limit has over the larger of the old
	// limit and the working set; default 1.5.
	Grow float64
	// ResizeEvery is the least time between two resizes of a container;
	// default 10 s.
	ResizeEvery time.Duration
	// MaxSamples bounds one run's samples (the rest are dropped, the run
	// is reported as far as it was kept); default 6 h of steps.
	MaxSamples int
	// Attribution is how long an ended container waits for its status to
	// name it (and say why it ended) before it is reported as it is, or
	// dropped when never named (a pod sandbox); default 60 s.
	Attribution time.Duration
	Log         *slog.Logger // nil discards
}

func (c *Config) validate() error {
	if c.CgroupMount == "" {
		c.CgroupMount = "/sys/fs/cgroup"
	}
	if c.Step == 0 {
		c.Step = time.Second
	}
	if c.ResizeAt == 0 {
		c.ResizeAt = 0.8
	}
	if c.Grow == 0 {
		c.Grow = 1.5
	}
	if c.ResizeEvery == 0 {
		c.ResizeEvery = 10 * time.Second
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = int(6 * time.Hour / c.Step)
	}
	if c.Attribution == 0 {
		c.Attribution = 60 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Node == "":
		return fmt.Errorf("no node name: %w", ErrConfig)
	case c.Recorder == nil:
		return fmt.Errorf("no recorder: %w", ErrConfig)
	case c.Step < 10*time.Millisecond:
		return fmt.Errorf("step %v below 10ms: %w", c.Step, ErrConfig)
	case c.ResizeAt <= 0 || c.ResizeAt > 1:
		return fmt.Errorf("resizeAt %v outside (0, 1]: %w", c.ResizeAt, ErrConfig)
	case c.Grow <= 1:
		return fmt.Errorf("grow %v must be above 1: %w", c.Grow, ErrConfig)
	}
	return nil
}

// Stats counts what the agent did.
type Stats struct {
	Pods         int   `json:"pods"`       // pods tracked now
	Containers   int   `json:"containers"` // container cgroups sampled now
	Samples      int64 `json:"samples"`
	Runs         int64 `json:"runs"` // runs reported
	OOMRuns      int64 `json:"oomRuns"`
	ReportErrors int64 `json:"reportErrors"`
	Resizes      int64 `json:"resizes"`
	ResizeErrors int64 `json:"resizeErrors"`
	Dropped      int64 `json:"dropped"` // ended containers never named (sandboxes) or unsigned
}

// Agent profiles one node's pods. Safe for concurrent use: mu guards all
// of its state; no API call is made while it is held.
type Agent struct {
	cfg    Config
	signer *podsig.Signer

	mu      sync.Mutex
	hier    hierarchy                 // guarded by mu (its root is found once)
	pods    map[types.UID]*podState   // guarded by mu
	ctrs    map[string]*ctr           // guarded by mu: by container id
	pending []*pendingRun             // guarded by mu: runs to report
	stats   Stats                     // guarded by mu
	ownerOf map[types.UID]ownerResult // guarded by mu
}

type ownerResult struct {
	kind string
	err  error
}

type podState struct {
	pod     *corev1.Pod
	rel     string // the pod's cgroup, relative; "" until found
	gone    bool   // deleted from the API
	missing int    // ticks its cgroup was looked for in vain
}

type ctr struct {
	id, rel    string
	pod        types.UID
	name       string // from the pod's status; "" until named (a sandbox never is)
	sampler    *profile.Sampler
	start      time.Time
	samples    []predictor.Sample
	series     []resource.Sample // this tick's, for the TSDB
	truncated  bool
	ended      time.Time // zero while running
	term       *corev1.ContainerStateTerminated
	limit      int64 // bytes; 0 when none
	lastResize time.Time
	// lastWS and lastAt are the previous sample's working set (bytes) and
	// time; rate is its growth in bytes a second, smoothed (0 while it
	// does not grow).
	lastWS float64
	lastAt time.Time
	rate   float64
}

type pendingRun struct {
	req   predictor.RunRequest
	what  string // namespace/pod/container, for the log
	tries int
	oom   bool
}

// New returns an agent; it reads the host's cgroup layout at once.
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	signer, err := podsig.NewSigner(podsig.Config{EnvDenyExtra: cfg.EnvDeny})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &Agent{
		cfg: cfg, signer: signer, hier: detect(cfg.CgroupMount, cfg.CgroupRoot),
		pods: make(map[types.UID]*podState), ctrs: make(map[string]*ctr), ownerOf: make(map[types.UID]ownerResult),
	}, nil
}

// Sync takes a pod's latest state (an informer's add or update): it is
// tracked while it runs on this node, and its status names its containers
// and says how they ended.
func (a *Agent) Sync(ctx context.Context, pod *corev1.Pod) {
	if pod.Spec.NodeName != a.cfg.Node {
		return
	}
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	a.mu.Lock()
	_, known := a.ownerOf[pod.UID]
	_, tracked := a.pods[pod.UID]
	a.mu.Unlock()
	if terminal && !tracked {
		return // finished before (or long before) this agent saw it run
	}
	if !known {
		kind, err := a.owner(ctx, pod) // an API call: outside the lock
		a.mu.Lock()
		a.ownerOf[pod.UID] = ownerResult{kind, err}
		a.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ps := a.pods[pod.UID]
	if ps == nil {
		ps = &podState{}
		a.pods[pod.UID] = ps
	}
	ps.pod = pod
	a.attribute(ps)
}

// Forget is called when a pod is deleted: its containers are reported as
// they end, then it is forgotten.
func (a *Agent) Forget(pod *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ps := a.pods[pod.UID]; ps != nil {
		ps.pod, ps.gone = pod, true
		a.attribute(ps)
	}
}

// attribute names the pod's tracked containers from its status and marks
// the ended ones. Caller holds mu.
func (a *Agent) attribute(ps *podState) {
	pod := ps.pod
	for _, cs := range pod.Status.ContainerStatuses {
		limit := memLimit(pod, cs)
		if c := a.ctrs[trimRuntime(cs.ContainerID)]; c != nil && cs.ContainerID != "" {
			c.name = cs.Name
			if limit > 0 && (c.limit == 0 || limit > c.limit || c.lastResize.IsZero()) {
				c.limit = limit
			}
			if t := cs.State.Terminated; t != nil {
				c.term = t
			}
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			if c := a.ctrs[trimRuntime(t.ContainerID)]; c != nil && t.ContainerID != "" {
				c.name, c.term = cs.Name, t
			}
		}
	}
}

// memLimit is the container's memory limit in bytes: what the kubelet
// applied (its status), else its spec; 0 when none.
func memLimit(pod *corev1.Pod, cs corev1.ContainerStatus) int64 {
	if cs.Resources != nil {
		if q, ok := cs.Resources.Limits[corev1.ResourceMemory]; ok {
			return q.Value()
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == cs.Name {
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				return q.Value()
			}
		}
	}
	return 0
}

func memRequest(pod *corev1.Pod, name string) int64 {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == name && cs.Resources != nil {
			if q, ok := cs.Resources.Requests[corev1.ResourceMemory]; ok {
				return q.Value()
			}
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
				return q.Value()
			}
		}
	}
	return 0
}

// owner is the pod's owner kind for its signature: the webhook's, else its
// controller's, a Job resolved to its CronJob.
func (a *Agent) owner(ctx context.Context, pod *corev1.Pod) (string, error) {
	if rec, ok := webhookRecord(pod); ok {
		for _, c := range rec.Containers {
			if c.Owner != "" {
				return c.Owner, nil
			}
		}
	}
	kind := podsig.OwnerKind(pod)
	ref := controllerRef(pod)
	if a.cfg.Owners == nil || ref == nil || (kind != "Job" && kind != "ReplicaSet") {
		return kind, nil
	}
	up, err := a.cfg.Owners.ControllerKind(ctx, pod.Namespace, *ref)
	if err != nil {
		return kind, fmt.Errorf("owner %s %s: %w", ref.Kind, ref.Name, err)
	}
	if up != "" {
		return up, nil
	}
	return kind, nil
}

// resizeLead is how many steps a resize takes to act: the sample that
// asks for it, the API call, the kubelet applying it to the cgroup.
const resizeLead = 3

// resize is one resize to make.
type resize struct {
	ns, pod, container string
	request, limit     int64
	ws                 float64
}

// Tick samples every container at now, reports the runs that ended and
// raises the limits of containers about to run out of memory. It is meant
// to be called every Step.
func (a *Agent) Tick(ctx context.Context, now time.Time) {
	a.mu.Lock()
	a.discover(now)
	var resizes []resize
	type append1 struct {
		id, sig string
		ss      []resource.Sample
	}
	var appends []append1
	for id, c := range a.ctrs {
		if !c.ended.IsZero() {
			continue
		}
		s := c.sampler.Sample(now)
		a.stats.Samples++
		ps := a.pods[c.pod]
		if len(c.samples) < a.cfg.MaxSamples {
			c.samples = append(c.samples, predictor.Sample{
				CPU: s.CPU, Memory: s.MemoryMB * bytesPerMiB, IO: s.IOPS, Network: s.NetMbps(),
			})
		} else {
			c.truncated = true
		}
		if a.cfg.Samples != nil && c.name != "" && ps != nil {
			if sig, err := a.sign(ps, c.name); err == nil {
				appends = append(appends, append1{id: id, sig: sig.Hash, ss: []resource.Sample{s}})
			}
		}
		if r, ok := a.wantResize(c, ps, s, now); ok {
			resizes = append(resizes, r)
		}
	}
	a.finish(now)
	runs := a.pending
	a.pending = nil
	a.mu.Unlock()

	for _, ap := range appends {
		if err := a.cfg.Samples.Append(ap.id, ap.sig, ap.ss...); err != nil {
			a.cfg.Log.Debug("tsdb append", "container", ap.id, "err", err)
		}
	}
	a.report(ctx, runs)
	for _, r := range resizes {
		err := a.cfg.Resizer.ResizeMemory(ctx, r.ns, r.pod, r.container, r.request, r.limit)
		a.mu.Lock()
		if err != nil {
			a.stats.ResizeErrors++
		} else {
			a.stats.Resizes++
		}
		a.mu.Unlock()
		if err != nil {
			a.cfg.Log.Warn("resize", "pod", r.ns+"/"+r.pod, "container", r.container, "err", err)
			continue
		}
		a.cfg.Log.Info("resized in place", "pod", r.ns+"/"+r.pod, "container", r.container,
			"workingSetMiB", math.Round(r.ws/bytesPerMiB), "limitMiB", r.limit/bytesPerMiB, "requestMiB", r.request/bytesPerMiB)
	}
}

// wantResize decides whether c's memory limit must grow: when its working
// set passes ResizeAt of the limit, at most once every ResizeEvery — or
// at once, whatever the last resize, when at its growth rate it would
// reach 95 % of the limit within two steps (a fixed rate limit alone let
// a pod growing 4 MiB/s run into the kernel between two resizes). The new
// limit is Grow times the larger of the working set and the old limit,
// and at least what the working set reaches at its growth rate over
// resizeLead steps (sampled, sent, applied by the kubelet), with a fifth
// to spare. Caller holds mu.
func (a *Agent) wantResize(c *ctr, ps *podState, s resource.Sample, now time.Time) (resize, bool) {
	if !s.Avail.Has(resource.Memory) {
		return resize{}, false
	}
	ws := s.MemoryMB * bytesPerMiB
	if !c.lastAt.IsZero() && now.After(c.lastAt) {
		r := max(ws-c.lastWS, 0) / now.Sub(c.lastAt).Seconds()
		c.rate = 0.5*c.rate + 0.5*r
	}
	c.lastWS, c.lastAt = ws, now
	if a.cfg.Resizer == nil || c.name == "" || c.limit <= 0 || ps == nil || ps.gone {
		return resize{}, false
	}
	lim := float64(c.limit)
	urgent := ws+c.rate*2*a.cfg.Step.Seconds() >= 0.95*lim
	if !urgent && (ws < a.cfg.ResizeAt*lim || now.Sub(c.lastResize) < a.cfg.ResizeEvery) {
		return resize{}, false
	}
	want := max(max(ws, lim)*a.cfg.Grow, ws+1.2*c.rate*resizeLead*a.cfg.Step.Seconds())
	limit := int64(math.Ceil(want/bytesPerMiB)) * bytesPerMiB
	req := min(max(memRequest(ps.pod, c.name), int64(math.Ceil(ws/bytesPerMiB))*bytesPerMiB), limit)
	c.lastResize, c.limit = now, limit
	return resize{ns: ps.pod.Namespace, pod: ps.pod.Name, container: c.name, request: req, limit: limit, ws: ws}, true
}

// discover finds the cgroups of the tracked pods and their containers:
// new ones are opened, vanished ones marked ended. Caller holds mu.
func (a *Agent) discover(now time.Time) {
	seen := make(map[string]bool, len(a.ctrs))
	for uid, ps := range a.pods {
		if ps.rel == "" {
			if ps.gone || ps.pod.Status.Phase == corev1.PodSucceeded || ps.pod.Status.Phase == corev1.PodFailed {
				if ps.missing++; ps.missing > 3 {
					a.dropPod(uid)
				}
				continue
			}
			rel, err := a.hier.podDir(string(uid))
			if err != nil {
				ps.missing++
				continue
			}
			ps.rel = rel
		}
		ids, err := a.hier.containers(ps.rel)
		if err != nil { // the pod's cgroup went: every container ended
			ps.rel = ""
			ps.missing = 0
			continue
		}
		for id, rel := range ids {
			seen[id] = true
			if a.ctrs[id] != nil {
				continue
			}
			s, err := profile.NewSampler(a.hier.target(rel), nil)
			if err != nil {
				a.cfg.Log.Debug("open container cgroup", "cgroup", rel, "err", err)
				continue
			}
			s.Sample(now) // primes the rates
			a.ctrs[id] = &ctr{id: id, rel: rel, pod: uid, sampler: s, start: now}
		}
	}
	for id, c := range a.ctrs {
		if !seen[id] && c.ended.IsZero() {
			c.ended = now
		}
	}
	for _, ps := range a.pods {
		a.attribute(ps)
	}
}

// dropPod forgets a pod whose containers are all reported. Caller holds mu.
func (a *Agent) dropPod(uid types.UID) {
	for _, c := range a.ctrs {
		if c.pod == uid {
			return
		}
	}
	delete(a.pods, uid)
	delete(a.ownerOf, uid)
}

// finish turns ended containers into runs to report: once their status
// says how they ended, or after Attribution. Caller holds mu.
func (a *Agent) finish(now time.Time) {
	for id, c := range a.ctrs {
		ps := a.pods[c.pod]
		if c.ended.IsZero() && c.term != nil {
			c.ended = now // the status said so first
		}
		if c.ended.IsZero() {
			continue
		}
		if c.term == nil && now.Sub(c.ended) < a.cfg.Attribution && ps != nil && !ps.gone {
			continue
		}
		_ = c.sampler.Close()
		delete(a.ctrs, id)
		if c.name == "" || ps == nil || len(c.samples) == 0 {
			a.stats.Dropped++
			continue
		}
		sig, err := a.sign(ps, c.name)
		if err != nil {
			a.stats.Dropped++
			a.cfg.Log.Debug("container not signed: run not reported", "pod", ps.pod.Namespace+"/"+ps.pod.Name, "container", c.name, "err", err)
			continue
		}
		samples := c.samples
		oom := c.term != nil && c.term.Reason == "OOMKilled"
		if oom {
			// What it needed is unknown but above the limit it died at:
			// as internal/sched sizes an OOM retry, twice that limit.
			last := samples[len(samples)-1]
			peak := last.Memory
			for _, s := range samples {
				peak = max(peak, s.Memory)
			}
			last.Memory = 2 * max(float64(c.limit), peak)
			samples = append(samples, last)
			a.stats.OOMRuns++
		}
		req := predictor.RunRequest{Signature: sig.Hash, Code: sig.Code, InputBytes: float64(sig.InputBytes),
			Start: c.start, StepSeconds: a.cfg.Step.Seconds(), Samples: samples}
		if len(sig.Inputs) > 0 {
			req.InputType = sig.Inputs[0].Type
		}
		a.pending = append(a.pending, &pendingRun{req: req, what: ps.pod.Namespace + "/" + ps.pod.Name + "/" + c.name, oom: oom})
	}
	for uid, ps := range a.pods {
		if ps.gone {
			a.dropPod(uid) // once its containers are reported
		}
	}
	a.stats.Pods, a.stats.Containers = len(a.pods), len(a.ctrs)
}

// sign returns the signature of a container of ps. Caller holds mu.
func (a *Agent) sign(ps *podState, name string) (podsig.Signature, error) {
	o := a.ownerOf[ps.pod.UID]
	kind := o.kind
	if kind == "" {
		kind = podsig.OwnerKind(ps.pod)
	}
	return a.signer.Sign(ps.pod, name, kind)
}

// maxTries bounds the attempts to report one run.
const maxTries = 10

// report sends runs to the predictor; failed ones are kept for the next
// tick (up to maxTries).
func (a *Agent) report(ctx context.Context, runs []*pendingRun) {
	var retry []*pendingRun
	for _, r := range runs {
		_, err := a.cfg.Recorder.Record(ctx, r.req)
		if err == nil {
			a.cfg.Log.Info("run reported", "container", r.what, "signature", r.req.Signature[:12], "samples", len(r.req.Samples), "oomKilled", r.oom)
			a.mu.Lock()
			a.stats.Runs++
			a.mu.Unlock()
			continue
		}
		r.tries++
		a.mu.Lock()
		a.stats.ReportErrors++
		a.mu.Unlock()
		if r.tries < maxTries && !errors.Is(err, predictor.ErrBadRequest) {
			retry = append(retry, r)
		} else {
			a.cfg.Log.Warn("run not reported", "container", r.what, "tries", r.tries, "err", err)
		}
	}
	if len(retry) > 0 {
		a.mu.Lock()
		a.pending = append(retry, a.pending...)
		a.mu.Unlock()
	}
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Close releases every open cgroup file. The agent must not be used after.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for id, c := range a.ctrs {
		errs = append(errs, c.sampler.Close())
		delete(a.ctrs, id)
	}
	return errors.Join(errs...)
}
