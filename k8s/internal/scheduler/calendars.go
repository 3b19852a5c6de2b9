package scheduler

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/prescient-sched/prescient/k8s/internal/core"
	"github.com/prescient-sched/prescient/k8s/internal/placement"
)

// calendars holds one core.Calendar per node, made when a node is first
// looked at, and keeps each in step with the scheduler's view of the node:
// when a NodeInfo's generation changes, the pods it shows that the
// calendar does not hold are adopted (placed before a restart, by another
// scheduler, or assumed by another profile), and the pods the calendar
// holds that it no longer shows are released (deleted, finished, or
// forgotten after a failed bind). Safe for concurrent use.
type calendars struct {
	cfg core.CalendarConfig
	log *slog.Logger

	mu    sync.RWMutex
	nodes map[string]*nodeCal // guarded by mu
	pods  map[types.UID]string
	// pods (guarded by mu) maps each pod the calendars hold to its node.
}

type nodeCal struct {
	cal *core.Calendar

	mu  sync.Mutex   // held while syncing
	gen atomic.Int64 // the NodeInfo generation last synced; stored under mu, after the sync
}

func newCalendars(cfg core.CalendarConfig, log *slog.Logger) *calendars {
	return &calendars{cfg: cfg, log: log, nodes: make(map[string]*nodeCal), pods: make(map[types.UID]string)}
}

func capacityOf(ni fwk.NodeInfo) core.Usage {
	a := ni.GetAllocatable()
	return core.Usage{CPU: float64(a.GetMilliCPU()) / 1000, Memory: float64(a.GetMemory())}
}

// get returns node's calendar, or nil.
func (cs *calendars) get(node string) *core.Calendar {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if n := cs.nodes[node]; n != nil {
		return n.cal
	}
	return nil
}

// forNode returns the calendar of ni's node, made or brought in step with
// ni first.
func (cs *calendars) forNode(ni fwk.NodeInfo, now time.Time) *core.Calendar {
	node := ni.Node()
	cs.mu.RLock()
	n := cs.nodes[node.Name]
	cs.mu.RUnlock()
	if n == nil {
		cal, err := cs.cfg.NewCalendar(capacityOf(ni))
		if err != nil { // allocatable quantities: cannot be invalid
			cs.log.Error("node calendar", "node", node.Name, "err", err)
			return nil
		}
		cs.mu.Lock()
		if n = cs.nodes[node.Name]; n == nil {
			n = &nodeCal{cal: cal}
			n.gen.Store(-1)
			cs.nodes[node.Name] = n
		}
		cs.mu.Unlock()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if g := ni.GetGeneration(); g != n.gen.Load() {
		cs.sync(node.Name, n.cal, ni, now)
		n.gen.Store(g)
	}
	return n.cal
}

// current returns node's calendar when it is in step with generation gen
// of its NodeInfo, else nil. No sync, no lock but the map's: Filter's
// common case, once per node for every pod.
func (cs *calendars) current(node string, gen int64) *core.Calendar {
	cs.mu.RLock()
	n := cs.nodes[node]
	cs.mu.RUnlock()
	if n != nil && n.gen.Load() == gen {
		return n.cal
	}
	return nil
}

// sync brings cal in step with ni's pods.
func (cs *calendars) sync(node string, cal *core.Calendar, ni fwk.NodeInfo, now time.Time) {
	if err := cal.SetCapacity(capacityOf(ni), now); err != nil {
		cs.log.Warn("node capacity changed: some curves held flat", "node", node, "err", err)
	}
	pods := ni.GetPods()
	seen := make(map[string]bool, len(pods))
	for _, pi := range pods {
		pod := pi.GetPod()
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		id := string(pod.UID)
		seen[id] = true
		if _, ok := cal.Get(id); ok {
			continue
		}
		r := pi.CalculateResource().Resource
		reqs := core.Usage{CPU: float64(r.GetMilliCPU()) / 1000, Memory: float64(r.GetMemory())}
		plan, start := cs.planOf(pod, node, now)
		if err := cal.Adopt(id, plan, start, reqs, now); err != nil {
			cs.log.Warn("adopt pod", "node", node, "pod", klogName(pod), "err", err)
			continue
		}
		cs.track(pod.UID, node)
	}
	for _, id := range cal.IDs() {
		if !seen[id] && cal.Release(id) {
			cs.untrack(types.UID(id), node)
		}
	}
}

// planOf reads a pod's placement record back into a plan, when it has one
// for this node; else it is held by its requests.
func (cs *calendars) planOf(pod *corev1.Pod, node string, now time.Time) (*core.Plan, time.Time) {
	start := now
	if pod.Status.StartTime != nil {
		start = pod.Status.StartTime.Time
	}
	a, ok := pod.Annotations[placement.Annotation]
	if !ok {
		return nil, start
	}
	rec, err := placement.Decode(a)
	if err != nil || rec.Node != node {
		cs.log.Debug("placement record not used", "pod", klogName(pod), "err", err)
		return nil, start
	}
	curve := core.PodCurve{Step: rec.Step()}
	for _, c := range rec.Containers {
		cc := core.ContainerCurve{Name: c.Name, Hold: make([]core.Usage, len(c.CPUMilli)), Upper: make([]core.Usage, len(c.CPUMilli))}
		for i := range c.CPUMilli {
			cc.Hold[i] = core.Usage{CPU: float64(c.CPUMilli[i]) / 1000, Memory: float64(c.MemoryMiB[i]) * (1 << 20)}
			cc.Upper[i] = cc.Hold[i]
		}
		curve.Containers = append(curve.Containers, cc)
	}
	// The record is already widened by the start slack: plan it without.
	cfg := cs.cfg
	cfg.StartSlack = -1
	plan, err := cfg.NewPlan(curve)
	if err != nil {
		return nil, start
	}
	return plan, rec.Start
}

func (cs *calendars) track(uid types.UID, node string) {
	cs.mu.Lock()
	cs.pods[uid] = node
	cs.mu.Unlock()
}

func (cs *calendars) untrack(uid types.UID, node string) {
	cs.mu.Lock()
	if cs.pods[uid] == node {
		delete(cs.pods, uid)
	}
	cs.mu.Unlock()
}

// nodeOf returns the node holding pod uid.
func (cs *calendars) nodeOf(uid types.UID) (string, bool) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	n, ok := cs.pods[uid]
	return n, ok
}

// names returns the nodes with a calendar, sorted.
func (cs *calendars) names() []string {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]string, 0, len(cs.nodes))
	for n := range cs.nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// forget drops the calendars of nodes that no longer exist.
func (cs *calendars) forget(node string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.nodes, node)
	for uid, n := range cs.pods {
		if n == node {
			delete(cs.pods, uid)
		}
	}
}

func klogName(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

func controllerOf(pod *corev1.Pod) *metav1.OwnerReference { return metav1.GetControllerOf(pod) }
