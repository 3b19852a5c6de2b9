//go:build !linux

package ledger

import (
	"errors"
	"fmt"
	"runtime"
)

// Detect is only implemented on Linux; elsewhere configure the capacity
// explicitly. It still validates its arguments.
func Detect(iops, netMbps float64) (Vector, error) {
	if _, _, err := withIONetDefaults(iops, netMbps); err != nil {
		return Vector{}, fmt.Errorf("detect: %w", err)
	}
	return Vector{}, fmt.Errorf("detect: memory on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
