//go:build !linux

package ledger

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Detect is only implemented on Linux; elsewhere configure the capacity
// explicitly. It still validates its arguments.
func Detect(iops, netMbps float64) (resource.Vector, error) {
	if _, _, err := withIONetDefaults(iops, netMbps); err != nil {
		return resource.Vector{}, fmt.Errorf("detect: %w", err)
	}
	return resource.Vector{}, fmt.Errorf("detect: memory on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
