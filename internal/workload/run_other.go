//go:build !linux

package workload

import (
	"context"
	"errors"
	"io"
)

// Options tune Run.
type Options struct {
	Dir string
	Log io.Writer
}

// Run needs Linux (mmap, O_DIRECT, thread CPU clocks).
func Run(ctx context.Context, s Script, o Options) error {
	return errors.New("workload: only supported on linux")
}
