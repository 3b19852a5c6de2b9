package daemon

import (
	"sort"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/profile"
)

// nodeObserver is implemented by a Policy that takes the node's load each
// sampling tick (before the tasks' samples of that tick).
type nodeObserver interface {
	ObserveNode(s profile.NodeSample)
}

// loadOf is a node sample as the predictor reads it.
func loadOf(s profile.NodeSample) predict.Load {
	var l predict.Load
	if s.Avail.Has(profile.NodeCPU) {
		l.CPU, l.Cores = s.CPUBusy, s.Cores
	}
	l.Memory = s.MemoryUtil()
	if s.Avail.Has(profile.NodeCPUPressure) {
		l.CPUPressure = s.CPUPressure.Some
	}
	if s.Avail.Has(profile.NodeIOPressure) {
		l.IOPressure = s.IOPressure.Some
	}
	if s.Avail.Has(profile.NodeProcs) {
		l.Runnable = s.Runnable
	}
	return l
}

// nodeLoadAPI is a node sample in the API's form.
func nodeLoadAPI(s profile.NodeSample) *api.NodeLoad {
	n := &api.NodeLoad{Time: s.Time}
	if s.Avail.Has(profile.NodeCPU) {
		n.CPU = &api.NodeCPU{Cores: s.Cores, BusyCores: s.CPUBusy}
	}
	if s.Avail.Has(profile.NodeMemory) {
		n.Memory = &api.NodeMemory{TotalMB: s.MemTotalMB, AvailableMB: s.MemAvailableMB}
	}
	if s.Avail.Has(profile.NodeProcs) {
		n.Runnable, n.Blocked = ptr(s.Runnable), ptr(s.Blocked)
	}
	for _, p := range []struct {
		name string
		g    profile.NodeSet
		v    profile.Pressure
	}{{"cpu", profile.NodeCPUPressure, s.CPUPressure}, {"memory", profile.NodeMemoryPressure, s.MemoryPressure}, {"io", profile.NodeIOPressure, s.IOPressure}} {
		if s.Avail.Has(p.g) {
			if n.Pressure == nil {
				n.Pressure = map[string]api.Pressure{}
			}
			n.Pressure[p.name] = api.Pressure{Some: p.v.Some, Full: p.v.Full}
		}
	}
	return n
}

// loadRing keeps the node's recent loads, to give a finished run the load
// at each of its samples. Safe for concurrent use; mu guards the fields.
type loadRing struct {
	mu    sync.Mutex
	at    []time.Time
	load  []predict.Load
	next  int
	full  bool
	limit int
}

func newLoadRing(n int) *loadRing {
	return &loadRing{at: make([]time.Time, n), load: make([]predict.Load, n), limit: n}
}

func (r *loadRing) add(t time.Time, l predict.Load) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[r.next], r.load[r.next] = t, l
	r.next = (r.next + 1) % r.limit
	if r.next == 0 {
		r.full = true
	}
}

// at returns for each time the last load at or before it (the oldest kept
// before that); nil when nothing is kept.
func (r *loadRing) loadsAt(ts []time.Time) []predict.Load {
	r.mu.Lock()
	n, start := r.next, 0
	if r.full {
		n, start = r.limit, r.next
	}
	at := make([]time.Time, n)
	ld := make([]predict.Load, n)
	for i := range n {
		k := (start + i) % r.limit
		at[i], ld[i] = r.at[k], r.load[k]
	}
	r.mu.Unlock()
	return loadsAt(at, ld, ts)
}

// loadsAt maps each of ts (ascending or not) to the last of loads (at
// ascending) at or before it; nil when loads is empty.
func loadsAt(at []time.Time, loads []predict.Load, ts []time.Time) []predict.Load {
	if len(at) == 0 {
		return nil
	}
	out := make([]predict.Load, len(ts))
	for i, t := range ts {
		k := sort.Search(len(at), func(j int) bool { return at[j].After(t) }) - 1
		out[i] = loads[max(k, 0)]
	}
	return out
}
