package task

import "github.com/prescient-sched/prescient/internal/resource"

// Conversions between the task model and the resource vocabulary. They
// live here, not in package resource, because resource is the leaf every
// package imports (the profiler included) and must not depend on the task
// model; task depends on nothing else of Prescient's, so no cycle arises.

// Vector returns the limits as amounts per dimension (Pids is not a
// resource dimension and is dropped).
func (l Limits) Vector() resource.Vector {
	return resource.Vector{
		resource.CPU:    l.CPUCores,
		resource.Memory: l.MemoryMB,
		resource.IO:     l.IOPS,
		resource.Net:    l.NetMbps,
	}
}

// LimitsOf returns v as task limits (Pids left zero).
func LimitsOf(v resource.Vector) Limits {
	return Limits{CPUCores: v[resource.CPU], MemoryMB: v[resource.Memory], IOPS: v[resource.IO], NetMbps: v[resource.Net]}
}

// StatsOf returns the peak and mean of a run as stored in its Record. A
// dimension not in s.Avail is nil (unavailable, never zero).
//
// This is the one place a run's CPU becomes percent of one core: the
// stored records (tasks.db) and the API's peak/mean, which are these
// Stats, kept cpu_pct from before CPU was counted in cores, and records
// already on disk must keep their meaning.
func StatsOf(s resource.Summary) (peak, mean Stats) {
	stats := func(v resource.Vector) Stats {
		p := func(d resource.Dim, x float64) *float64 {
			if !s.Avail.Has(d) {
				return nil
			}
			return &x
		}
		return Stats{
			CPUPct:   p(resource.CPU, resource.PctOfCores(v[resource.CPU])),
			MemoryMB: p(resource.Memory, v[resource.Memory]),
			IOPS:     p(resource.IO, v[resource.IO]),
			NetMbps:  p(resource.Net, v[resource.Net]),
		}
	}
	return stats(s.Peak), stats(s.Mean)
}
