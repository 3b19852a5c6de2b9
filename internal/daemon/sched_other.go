//go:build !linux

package daemon

import (
	"errors"
	"log/slog"

	"github.com/prescient-sched/prescient/internal/executor"
)

func setSoftMemory(executor.CgroupDirs, float64) error {
	return errors.New("soft memory limits need Linux cgroups")
}

func lowerPriority(*slog.Logger) {}
