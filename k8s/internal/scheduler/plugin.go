package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/prescient-sched/prescient/k8s/internal/core"
	"github.com/prescient-sched/prescient/k8s/internal/placement"
	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

// Name is the plugin's name in a scheduler profile.
const Name = "Prescient"

const stateKey fwk.StateKey = Name + "/plan"

// Plugin is Prescient's placement plugin. Every pod of its profile gets a
// plan in PreFilter: the sum of its containers' predicted curves (from the
// predictor service), or its requests when some container has no trusted
// prediction. Filter and Score read each node's calendar of the plans of
// the pods on it (time-aware packing: a pod fits when its curve, started
// now, fits beside the others at every instant); Reserve places a soft
// reservation, Unreserve releases it (idempotently), Permit commits it
// and Bind writes the binding with the pod's placement record
// (placement.Annotation) in one API call.
//
// A pod rejected only because its curve collides with the node's — it
// would fit some seconds later — is put back in the active queue at that
// time rather than waiting for a cluster event.
//
// Safe for concurrent use (the framework runs Filter and Score on many
// nodes at once, and binding cycles in parallel).
type Plugin struct {
	h     fwk.Handle
	args  Args
	log   *slog.Logger
	klog  klog.Logger
	plan  *planner
	cals  *calendars
	retry *retrier
	stats stats
	now   func() time.Time
	srv   *http.Server // debug; nil unless Args.DebugAddress
}

var (
	_ fwk.PreFilterPlugin            = (*Plugin)(nil)
	_ fwk.FilterPlugin               = (*Plugin)(nil)
	_ fwk.PostFilterPlugin           = (*Plugin)(nil)
	_ fwk.ScorePlugin                = (*Plugin)(nil)
	_ fwk.ReservePlugin              = (*Plugin)(nil)
	_ fwk.PermitPlugin               = (*Plugin)(nil)
	_ fwk.BindPlugin                 = (*Plugin)(nil)
	_ fwk.EnqueueExtensions          = (*Plugin)(nil)
	_ fwk.SignPlugin                 = (*Plugin)(nil)
	_ frameworkruntime.PluginFactory = New
)

// New is the plugin's factory, for app.WithPlugin(Name, New). The plugin
// lives as long as ctx.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	var args Args
	if err := frameworkruntime.DecodeInto(obj, &args); err != nil {
		return nil, fmt.Errorf("%s args: %w: %w", Name, ErrArgs, err)
	}
	kl := klog.FromContext(ctx).WithValues("plugin", Name)
	return NewWith(ctx, args, h, Deps{Log: slog.New(logr.ToSlogHandler(kl))})
}

// Deps are what NewWith takes from outside instead of making it; the zero
// value of each field means the real thing.
type Deps struct {
	Predictor Predictor        // default: a predictor.Client of Args.PredictorURL
	Owners    OwnerResolver    // default: the API server through the handle's client
	Now       func() time.Time // default: time.Now
	Log       *slog.Logger     // nil discards
}

// NewWith builds the plugin from decoded args.
func NewWith(ctx context.Context, args Args, h fwk.Handle, d Deps) (*Plugin, error) {
	if err := args.validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Predictor == nil {
		d.Predictor = predictor.NewClient(args.PredictorURL, &http.Client{Timeout: args.PredictTimeout.Duration})
	}
	if d.Owners == nil && *args.ResolveOwners && h != nil && h.ClientSet() != nil {
		d.Owners = webhook.NewKubeOwners(h.ClientSet())
	}
	signer, err := podsig.NewSigner(podsig.Config{EnvDenyExtra: args.EnvDeny})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	cfg := core.CalendarConfig{Slot: args.Slot.Duration, Horizon: args.Horizon.Duration, StartSlack: args.StartSlack.Duration, Log: d.Log}
	if _, err := cfg.NewCalendar(core.Usage{}); err != nil {
		return nil, fmt.Errorf("%s calendar: %w: %w", Name, ErrArgs, err)
	}
	ttl := args.CacheTTL.Duration
	p := &Plugin{
		h: h, args: args, log: d.Log, klog: klog.FromContext(ctx), now: d.Now,
		plan: &planner{cfg: cfg, pred: d.Predictor, signer: signer, owners: d.Owners, sources: args.Sources,
			timeout: args.PredictTimeout.Duration, ttl: ttl, cache: make(map[string]cached)},
		cals: newCalendars(cfg, d.Log),
	}
	if h != nil {
		p.retry = newRetrier(h, d.Now)
		go p.retry.run(ctx)
	}
	if args.DebugAddress != "" {
		if err := p.serveDebug(ctx, args.DebugAddress); err != nil {
			return nil, err
		}
	}
	d.Log.Info("prescient plugin ready", "predictor", args.PredictorURL, "slot", cfg.Slot, "scoring", args.Scoring)
	return p, nil
}

// Name implements fwk.Plugin.
func (p *Plugin) Name() string { return Name }

// cycle is what PreFilter decided for a pod, for the rest of its
// scheduling and binding cycle. Immutable.
type cycle struct {
	planned
	now time.Time // the instant the cycle places the pod at
}

// Clone implements fwk.StateData: the cycle is immutable.
func (c *cycle) Clone() fwk.StateData { return c }

func cycleOf(state fwk.CycleState) (*cycle, *fwk.Status) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, fwk.AsStatus(fmt.Errorf("%s: no plan in the cycle state: %w", Name, err))
	}
	return d.(*cycle), nil
}

// PreFilter plans the pod. It never rejects: a pod without a trusted
// prediction is planned by its requests.
func (p *Plugin) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	t0 := time.Now()
	now := p.now()
	pl := p.plan.plan(ctx, pod, now)
	state.Write(stateKey, &cycle{planned: pl, now: now})
	if pl.plan.Flat() {
		p.stats.flat.Add(1)
		p.klog.V(4).Info("planned by requests", "pod", klog.KObj(pod), "why", pl.why)
	} else {
		p.stats.curve.Add(1)
	}
	p.stats.time(&p.stats.preFilter, t0)
	return nil, nil
}

// PreFilterExtensions implements fwk.PreFilterPlugin. There are none: the
// preemption dry run is not simulated on the calendars (a pod held by its
// curve is never counted as a victim's room).
func (p *Plugin) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter admits a node whose calendar holds the pod's plan, started now,
// at every instant.
func (p *Plugin) Filter(_ context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	defer p.stats.sampled(&p.stats.filter, p.stats.clock())
	c, st := cycleOf(state)
	if st != nil {
		return st
	}
	cal := p.calendar(ni, c.now)
	if cal == nil {
		return fwk.NewStatus(fwk.Error, "no calendar for node "+ni.Node().Name)
	}
	f := cal.Fits(c.plan, c.now)
	switch {
	case f.OK:
		return nil
	case f.Collides:
		return fwk.NewStatus(fwk.Unschedulable, collidesMsg)
	}
	return fwk.NewStatus(fwk.Unschedulable, "prescient: "+f.Reason)
}

// collidesMsg is Filter's message for a node the pod's curve collides
// with now (core.Fit.Collides), and only for those.
const collidesMsg = "prescient: " + core.CollidesReason

// PostFilter runs when no node fits the pod. Where the plugin rejected a
// node only because the pod's curve collides with the node's now, it
// finds when the pod would fit there, and the retrier puts the pod back
// in the active queue at the earliest of those times: time alone frees a
// calendar (a neighbour's curve comes down), and no cluster event would
// say so. That search walks a node's calendar; Filter asks only "does it
// fit now?" of every node it tries, and the walk is done here, for a pod
// that fits nowhere, on the nodes where waiting can help. It never makes
// the pod schedulable (DefaultPreemption, before it, may).
func (p *Plugin) PostFilter(_ context.Context, state fwk.CycleState, pod *corev1.Pod, statuses fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	c, st := cycleOf(state)
	if st != nil || p.retry == nil || p.h == nil {
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	nodes, err := statuses.NodesForStatusCode(p.h.SnapshotSharedLister().NodeInfos(), fwk.Unschedulable)
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	var first time.Time
	for _, ni := range nodes {
		name := ni.Node().Name
		if s := statuses.Get(name); s == nil || s.Plugin() != Name || s.Message() != collidesMsg {
			continue
		}
		cal := p.cals.get(name)
		if cal == nil {
			continue
		}
		if t, ok := cal.EarliestFit(c.plan, c.now); ok && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() {
		p.retry.at(pod, first)
	}
	return nil, fwk.NewStatus(fwk.Unschedulable)
}

// calendar returns ni's calendar, brought in step with ni — unless ni is
// not the snapshot's own (the preemption dry run filters on copies with
// victims removed: those must not release anything).
func (p *Plugin) calendar(ni fwk.NodeInfo, now time.Time) *core.Calendar {
	name := ni.Node().Name
	// A calendar in step with ni's generation serves ni as it is, whether
	// ni is the snapshot's or a copy not changed since (a changed copy
	// has a generation of its own).
	if cal := p.cals.current(name, ni.GetGeneration()); cal != nil {
		return cal
	}
	if p.h != nil {
		if real, err := p.h.SnapshotSharedLister().NodeInfos().Get(name); err == nil && real != ni {
			if cal := p.cals.get(name); cal != nil {
				return cal
			}
			ni = real
		}
	}
	return p.cals.forNode(ni, now)
}

// Score prefers (pack) the node left fullest, or (spread) emptiest, at
// the instants the pod holds most CPU and most memory.
func (p *Plugin) Score(_ context.Context, state fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	defer p.stats.sampled(&p.stats.score, p.stats.clock())
	c, st := cycleOf(state)
	if st != nil {
		return 0, st
	}
	cal := p.cals.get(ni.Node().Name)
	if cal == nil {
		return 0, nil
	}
	tc, tm := c.plan.PeakTimes()
	need := c.plan.Peak()
	capacity, fc, fm := cal.Room(c.now.Add(tc), c.now.Add(tm))
	left := func(free, need, capacity float64) float64 {
		if capacity <= 0 {
			return 0
		}
		return math.Min(math.Max((free-need)/capacity, 0), 1)
	}
	l := (left(fc.CPU, need.CPU, capacity.CPU) + left(fm.Memory, need.Memory, capacity.Memory)) / 2
	if p.args.Scoring == ScoreSpread {
		return int64(math.Round(l * float64(fwk.MaxNodeScore))), nil
	}
	return int64(math.Round((1 - l) * float64(fwk.MaxNodeScore))), nil
}

// ScoreExtensions implements fwk.ScorePlugin: scores are already 0…100.
func (p *Plugin) ScoreExtensions() fwk.ScoreExtensions { return nil }

// Reserve places the pod's soft reservation on the chosen node.
func (p *Plugin) Reserve(_ context.Context, state fwk.CycleState, pod *corev1.Pod, node string) *fwk.Status {
	t0 := time.Now()
	defer p.stats.time(&p.stats.reserve, t0)
	c, st := cycleOf(state)
	if st != nil {
		return st
	}
	cal := p.cals.get(node)
	if cal == nil {
		ni, err := p.h.SnapshotSharedLister().NodeInfos().Get(node)
		if err != nil {
			return fwk.AsStatus(fmt.Errorf("%s reserve: node %s: %w", Name, node, err))
		}
		cal = p.cals.forNode(ni, c.now)
	}
	f, err := cal.Reserve(string(pod.UID), c.plan, c.now)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("%s reserve: %w", Name, err))
	}
	if !f.OK {
		return fwk.NewStatus(fwk.Unschedulable, "prescient: "+f.Reason)
	}
	p.cals.track(pod.UID, node)
	if p.retry != nil {
		p.retry.done(pod.UID)
	}
	p.stats.reserved.Add(1)
	p.stats.event(pod.UID, "reserve", node)
	return nil
}

// Unreserve releases the pod's reservation; idempotent, and safe when
// Reserve never ran or failed.
func (p *Plugin) Unreserve(_ context.Context, _ fwk.CycleState, pod *corev1.Pod, node string) {
	t0 := time.Now()
	defer p.stats.time(&p.stats.unreserve, t0)
	if cal := p.cals.get(node); cal != nil && cal.Release(string(pod.UID)) {
		p.cals.untrack(pod.UID, node)
		p.stats.unreserved.Add(1)
		p.stats.event(pod.UID, "unreserve", node)
	}
}

// Permit commits the reservation — the pod is about to be bound: a curve
// stays for the pod's predicted life, requests become a hard allocation.
// It never waits or rejects; a bind that fails afterwards is undone by
// Unreserve.
//
// Why Permit and not PreBind: a PreBind plugin that takes part in a pod's
// binding makes kube-scheduler (v1.34+, NominatedNodeNameForExpectation)
// patch the pod's status with its nominated node before binding — one
// more API call per pod, which halved the scheduling throughput
// (BenchmarkSchedulingBasic5000Nodes: 320 against 750 pods/s). The commit
// is in memory only, so it needs no place in the binding cycle.
func (p *Plugin) Permit(_ context.Context, _ fwk.CycleState, pod *corev1.Pod, node string) (*fwk.Status, time.Duration) {
	t0 := time.Now()
	defer p.stats.time(&p.stats.permit, t0)
	cal := p.cals.get(node)
	if cal == nil {
		return fwk.AsStatus(fmt.Errorf("%s permit: no calendar for node %s", Name, node)), 0
	}
	if err := cal.Commit(string(pod.UID), p.now()); err != nil {
		return fwk.AsStatus(fmt.Errorf("%s permit: %w", Name, err)), 0
	}
	p.stats.committed.Add(1)
	p.stats.event(pod.UID, "commit", node)
	return nil, 0
}

// Bind binds a pod placed by its curve, with its placement record on the
// binding (the API server copies a binding's annotations to the pod). A
// pod placed by its requests is left to the DefaultBinder (Skip).
func (p *Plugin) Bind(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, node string) *fwk.Status {
	c, st := cycleOf(state)
	if st != nil {
		return st
	}
	if c.plan.Flat() {
		return fwk.NewStatus(fwk.Skip)
	}
	rec := recordOf(c, node)
	val, err := rec.Encode()
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("%s bind: %w", Name, err))
	}
	t0 := time.Now()
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			Annotations: map[string]string{placement.Annotation: val}},
		Target: corev1.ObjectReference{Kind: "Node", Name: node},
	}
	err = p.h.ClientSet().CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	p.stats.time(&p.stats.bind, t0)
	if err != nil {
		p.stats.bindErrors.Add(1)
		p.stats.event(pod.UID, "bind-failed", node)
		return fwk.AsStatus(fmt.Errorf("%s bind: %w", Name, err))
	}
	p.stats.bound.Add(1)
	p.stats.event(pod.UID, "bound", node)
	return nil
}

// recordOf is the pod's placement record: its containers' planned holds
// from the cycle's instant.
func recordOf(c *cycle, node string) placement.Record {
	slot, _ := c.plan.Steps()
	rec := placement.Record{Version: placement.Version, Node: node, Start: c.now.UTC(), StepSeconds: slot.Seconds(), Source: c.source}
	for _, cs := range c.plan.Containers() {
		pc := placement.Container{Name: cs.Name, CPUMilli: make([]int64, len(cs.Hold)), MemoryMiB: make([]int64, len(cs.Hold))}
		for i, u := range cs.Hold {
			pc.CPUMilli[i] = int64(math.Ceil(u.CPU*1000 - 1e-9))
			pc.MemoryMiB[i] = int64(math.Ceil(u.Memory/(1<<20) - 1e-9))
		}
		rec.Containers = append(rec.Containers, pc)
	}
	return rec
}

// SignPod implements fwk.SignPlugin: pods are never batched (a node's
// calendar changes with every placement, so one pod's result cannot be
// reused for the next).
func (p *Plugin) SignPod(context.Context, *corev1.Pod) ([]fwk.SignFragment, *fwk.Status) {
	return nil, fwk.NewStatus(fwk.Unschedulable, "prescient: placement depends on the node calendars")
}

// EventsToRegister implements fwk.EnqueueExtensions: room returns to a
// calendar when a pod leaves or shrinks, or a node comes or grows. (Room
// that returns with time is handled by the retrier.)
func (p *Plugin) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete | fwk.UpdatePodScaleDown}},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeAllocatable}},
	}, nil
}

// retrier puts pods back in the active queue when their curve would fit:
// a rejection the framework would otherwise only retry on a cluster event
// (or after minutes in the unschedulable queue). Safe for concurrent use.
type retrier struct {
	h   fwk.Handle
	now func() time.Time

	mu   sync.Mutex
	pods map[types.UID]retry // guarded by mu
}

type retry struct {
	pod *corev1.Pod
	at  time.Time
}

func newRetrier(h fwk.Handle, now func() time.Time) *retrier {
	return &retrier{h: h, now: now, pods: make(map[types.UID]retry)}
}

// at records that pod would fit at t (the earliest over the nodes seen).
func (r *retrier) at(pod *corev1.Pod, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.pods[pod.UID]; !ok || t.Before(e.at) {
		r.pods[pod.UID] = retry{pod: pod, at: t}
	}
}

// done forgets pod uid (it was placed).
func (r *retrier) done(uid types.UID) {
	r.mu.Lock()
	delete(r.pods, uid)
	r.mu.Unlock()
}

// run activates the pods whose time has come, every second, until ctx ends.
func (r *retrier) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.now()
		due := map[string]*corev1.Pod{}
		r.mu.Lock()
		for uid, e := range r.pods {
			if !now.Before(e.at) {
				due[string(uid)] = e.pod
				delete(r.pods, uid)
			}
		}
		r.mu.Unlock()
		if len(due) > 0 {
			r.h.Activate(klog.FromContext(ctx), due)
		}
	}
}

// stats counts what the plugin did and the time it spent, per extension
// point. Safe for concurrent use.
type stats struct {
	curve, flat                       atomic.Int64 // pods planned
	reserved, unreserved, committed   atomic.Int64
	bound, bindErrors                 atomic.Int64
	preFilter, filter, score, reserve timing
	unreserve, permit, bind           timing

	mu     sync.Mutex
	events map[types.UID][]podEvent // guarded by mu; the last few pods only
	order  []types.UID              // guarded by mu
}

type timing struct{ ns, n atomic.Int64 }

func (s *stats) time(t *timing, t0 time.Time) {
	t.ns.Add(int64(time.Since(t0)))
	t.n.Add(1)
}

// sampleEvery: Filter and Score run once per node for every pod — hundreds
// of calls per scheduling cycle, on many goroutines — and reading the
// clock twice in each was a tenth of their cost. One call in sampleEvery,
// at random, is timed and counts sampleEvery times; calls are counted
// exactly.
const sampleEvery = 16

// clock starts a sampled timing: the time now for one call in
// sampleEvery, else the zero time.
func (s *stats) clock() time.Time {
	if rand.Uint32()%sampleEvery != 0 {
		return time.Time{}
	}
	return time.Now()
}

// sampled ends a timing started by clock.
func (s *stats) sampled(t *timing, t0 time.Time) {
	if !t0.IsZero() {
		t.ns.Add(sampleEvery * int64(time.Since(t0)))
	}
	t.n.Add(1)
}

// podEvent is one thing that happened to a pod's reservation.
type podEvent struct {
	What string    `json:"what"`
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

const keptPods = 4096

func (s *stats) event(uid types.UID, what, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.events == nil {
		s.events = make(map[types.UID][]podEvent)
	}
	if _, ok := s.events[uid]; !ok {
		s.order = append(s.order, uid)
		if len(s.order) > keptPods {
			delete(s.events, s.order[0])
			s.order = s.order[1:]
		}
	}
	s.events[uid] = append(s.events[uid], podEvent{What: what, Node: node, At: time.Now()})
}
