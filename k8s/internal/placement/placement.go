// Package placement owns the record a pod carries once Prescient's
// scheduler has placed it by its predicted curve: the annotation
// prescient.io/placement, written with the pod's binding (so one API call
// binds and records). It says on which node, from when, and what each
// container was planned to hold in each step of the node's calendar. The
// scheduler reads it back to rebuild its calendars after a restart; the
// node agent reads it to move a container's requests along its curve.
//
// This package is light on purpose (no scheduler framework): the node agent
// and the webhook use it too.
package placement

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Annotation is the pod annotation holding a Record as JSON.
const Annotation = "prescient.io/placement"

// Version is the Record format written.
const Version = 1

// Bounds of a decoded Record.
const (
	maxSteps      = 1 << 16
	maxContainers = 64
	minStep       = time.Millisecond
	maxStep       = time.Hour
	maxMilli      = 1 << 40 // millicores
	maxMiB        = 1 << 40
)

// ErrRecord reports an annotation that is not a valid Record.
var ErrRecord = errors.New("placement: invalid record")

// Record is the value of Annotation.
type Record struct {
	Version int    `json:"version"`
	Node    string `json:"node"`
	// Start is when the curve was placed (the binding); step i covers
	// [Start + i·Step, Start + (i+1)·Step).
	Start       time.Time `json:"start"`
	StepSeconds float64   `json:"stepSeconds"`
	// Source is the cold-start rung of the predictions (exact, size, code).
	Source     string      `json:"source,omitempty"`
	Containers []Container `json:"containers"`
}

// Container is one container's planned hold, per step.
type Container struct {
	Name      string  `json:"name"`
	CPUMilli  []int64 `json:"cpuMilli"`  // millicores, rounded up
	MemoryMiB []int64 `json:"memoryMiB"` // MiB, rounded up
}

// Step is the record's step.
func (r *Record) Step() time.Duration {
	return time.Duration(math.Round(r.StepSeconds * float64(time.Second)))
}

// End is when the last container's curve ends.
func (r *Record) End() time.Time {
	n := 0
	for _, c := range r.Containers {
		n = max(n, len(c.CPUMilli))
	}
	return r.Start.Add(time.Duration(n) * r.Step())
}

// Find returns the named container's entry.
func (r *Record) Find(name string) (*Container, bool) {
	for i := range r.Containers {
		if r.Containers[i].Name == name {
			return &r.Containers[i], true
		}
	}
	return nil, false
}

// Window returns the most a container holds (millicores, MiB) over the
// steps that overlap [elapsed, elapsed+lookahead); ok is false once its
// curve has ended.
func (c *Container) Window(step, elapsed, lookahead time.Duration) (cpuMilli, memMiB int64, ok bool) {
	if step <= 0 {
		return 0, 0, false
	}
	from := max(int(elapsed/step), 0)
	to := int((elapsed + max(lookahead, 0)) / step)
	for i := from; i <= to && i < len(c.CPUMilli); i++ {
		cpuMilli, memMiB, ok = max(cpuMilli, c.CPUMilli[i]), max(memMiB, c.MemoryMiB[i]), true
	}
	return cpuMilli, memMiB, ok
}

// Encode returns the annotation's value.
func (r *Record) Encode() (string, error) {
	if err := r.validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode placement: %w", err)
	}
	return string(b), nil
}

// Decode reads and checks an annotation's value. Unknown fields are
// ignored (a newer writer may add some); a newer Version is refused.
func Decode(s string) (Record, error) {
	var r Record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Record{}, fmt.Errorf("decode placement: %w: %w", ErrRecord, err)
	}
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func (r *Record) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("placement: %s: %w", fmt.Sprintf(format, a...), ErrRecord)
	}
	switch {
	case r.Version != Version:
		return bad("version %d, want %d", r.Version, Version)
	case r.Node == "":
		return bad("no node")
	case r.Start.IsZero():
		return bad("no start")
	case !(r.StepSeconds >= minStep.Seconds() && r.StepSeconds <= maxStep.Seconds()):
		return bad("step %v s outside [%v, %v]", r.StepSeconds, minStep, maxStep)
	case len(r.Containers) == 0 || len(r.Containers) > maxContainers:
		return bad("%d containers", len(r.Containers))
	}
	for _, c := range r.Containers {
		if c.Name == "" || len(c.CPUMilli) != len(c.MemoryMiB) || len(c.CPUMilli) == 0 || len(c.CPUMilli) > maxSteps {
			return bad("container %q: %d cpu and %d memory steps", c.Name, len(c.CPUMilli), len(c.MemoryMiB))
		}
		for i := range c.CPUMilli {
			if c.CPUMilli[i] < 0 || c.CPUMilli[i] > maxMilli || c.MemoryMiB[i] < 0 || c.MemoryMiB[i] > maxMiB {
				return bad("container %q step %d: %d m, %d MiB", c.Name, i, c.CPUMilli[i], c.MemoryMiB[i])
			}
		}
	}
	return nil
}
