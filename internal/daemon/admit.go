package daemon

import (
	"fmt"
	"sync"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/task"
)

// Admitter decides whether a queued task may start now, and accounts for
// what started tasks hold. It is the seam where the predicted-curve ledger
// (internal/ledger: soft reservations over time, commit, release) plugs in;
// until then FitAdmitter fits declared requests against capacity.
//
// The daemon calls Admit in queue order and Release exactly when a task it
// admitted or restored has ended. Implementations must be safe for
// concurrent use. "Does not fit" is a result (ok false and a reason), not
// an error.
type Admitter interface {
	// Name identifies the policy in NodeStatus.
	Name() string
	// Admit reserves req for task id if it fits now.
	Admit(id string, req task.Limits) (ok bool, reason string)
	// Restore reserves req for a task found running after a restart,
	// whether or not it fits.
	Restore(id string, req task.Limits)
	// Release frees id's reservation. It is idempotent and a no-op for an
	// id never admitted.
	Release(id string)
	// Usage reports capacity and what is reserved now.
	Usage() (capacity, used api.Resources)
}

// FitAdmitter admits a task when its CPU and memory requests fit in what
// capacity has left.
type FitAdmitter struct {
	capacity api.Resources

	mu   sync.Mutex // guards the fields below
	used api.Resources
	held map[string]api.Resources
}

var _ Admitter = (*FitAdmitter)(nil)

// NewFitAdmitter returns a FitAdmitter for this capacity.
func NewFitAdmitter(capacity api.Resources) *FitAdmitter {
	return &FitAdmitter{capacity: capacity, held: map[string]api.Resources{}}
}

// Name implements Admitter.
func (f *FitAdmitter) Name() string { return "fit" }

// Admit implements Admitter.
func (f *FitAdmitter) Admit(id string, req task.Limits) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.held[id]; ok {
		return true, ""
	}
	const eps = 1e-9
	if f.used.CPUCores+req.CPUCores > f.capacity.CPUCores+eps {
		return false, fmt.Sprintf("cpu: %.2f of %.2f cores reserved, %.2f requested", f.used.CPUCores, f.capacity.CPUCores, req.CPUCores)
	}
	if f.used.MemoryMB+req.MemoryMB > f.capacity.MemoryMB+eps {
		return false, fmt.Sprintf("memory: %.0f of %.0f MB reserved, %.0f requested", f.used.MemoryMB, f.capacity.MemoryMB, req.MemoryMB)
	}
	f.hold(id, req)
	return true, ""
}

func (f *FitAdmitter) hold(id string, req task.Limits) {
	r := api.Resources{CPUCores: req.CPUCores, MemoryMB: req.MemoryMB}
	f.held[id] = r
	f.used.CPUCores += r.CPUCores
	f.used.MemoryMB += r.MemoryMB
}

// Restore implements Admitter.
func (f *FitAdmitter) Restore(id string, req task.Limits) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.held[id]; !ok {
		f.hold(id, req)
	}
}

// Release implements Admitter.
func (f *FitAdmitter) Release(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.held[id]
	if !ok {
		return
	}
	delete(f.held, id)
	f.used.CPUCores = max(f.used.CPUCores-r.CPUCores, 0)
	f.used.MemoryMB = max(f.used.MemoryMB-r.MemoryMB, 0)
	if len(f.held) == 0 {
		f.used = api.Resources{} // no drift from float sums
	}
}

// Usage implements Admitter.
func (f *FitAdmitter) Usage() (api.Resources, api.Resources) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.capacity, f.used
}

// fits reports whether req could ever fit.
func fitsCapacity(capacity api.Resources, req task.Limits) bool {
	return req.CPUCores <= capacity.CPUCores+1e-9 && req.MemoryMB <= capacity.MemoryMB+1e-9
}
