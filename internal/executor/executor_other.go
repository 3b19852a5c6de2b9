//go:build !linux

package executor

import (
	"context"
	"syscall"

	"github.com/prescient-sched/prescient/internal/task"
)

// Executor starts tasks in cgroups; cgroups exist only on Linux, so here
// New always fails with ErrUnsupported.
type Executor struct{}

// New fails with ErrUnsupported: cgroups exist only on Linux.
func New(cfg Config) (*Executor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// Mode is the host's cgroup layout.
func (e *Executor) Mode() Mode { return 0 }

// V2Root is the root cgroup's v2 directory; "" here.
func (e *Executor) V2Root() string { return "" }

// V1Root is always "" here.
func (e *Executor) V1Root(string) string { return "" }

// SetNetLimiter sets the NetLimiter used by later Start and Update calls.
func (e *Executor) SetNetLimiter(NetLimiter) {}

// Start fails with ErrUnsupported.
func (e *Executor) Start(context.Context, StartOptions) (*Process, error) { return nil, ErrUnsupported }

// Adopt fails with ErrUnsupported.
func (e *Executor) Adopt(string) (*Process, error) { return nil, ErrUnsupported }

// Close does nothing.
func (e *Executor) Close() error { return nil }

// Process is one task; none can exist here.
type Process struct{}

// Pid is the task's main process id.
func (p *Process) Pid() int { return 0 }

// Cgroups are the task's cgroup directories.
func (p *Process) Cgroups() CgroupDirs { return CgroupDirs{} }

// Update fails with ErrUnsupported.
func (p *Process) Update(task.Limits) error { return ErrUnsupported }

// Kill fails with ErrUnsupported.
func (p *Process) Kill() error { return ErrUnsupported }

// Wait fails with ErrUnsupported.
func (p *Process) Wait() (Exit, error) { return Exit{Code: -1, Unknown: true}, ErrUnsupported }

// Close does nothing.
func (p *Process) Close() error { return nil }

// signalName is the signal's name as records carry it.
func signalName(s syscall.Signal) string { return s.String() }
