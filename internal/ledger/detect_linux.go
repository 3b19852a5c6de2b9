//go:build linux

package ledger

import (
	"fmt"
	"os"
	"runtime"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Detect measures the node: CPU cores from runtime.NumCPU (the CPUs this
// process may run on), memory from /proc/meminfo's MemTotal, and IO ops/s
// and network Mbps as configured (0 means DefaultIOPS, DefaultNetMbps).
// Feed the result to NodeConfig.Capacity.
func Detect(iops, netMbps float64) (resource.Vector, error) {
	iops, netMbps, err := withIONetDefaults(iops, netMbps)
	if err != nil {
		return resource.Vector{}, fmt.Errorf("detect: %w", err)
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return resource.Vector{}, fmt.Errorf("detect: %w", err)
	}
	defer f.Close()
	mem, err := parseMeminfo(f)
	if err != nil {
		return resource.Vector{}, fmt.Errorf("detect: %w", err)
	}
	return resource.Vector{resource.CPU: float64(runtime.NumCPU()), resource.Memory: mem, resource.IO: iops, resource.Net: netMbps}, nil
}
