package resource

import (
	"math"
	"time"
)

// Sample is one measurement of one task. A dimension not in Avail was not
// measurable (on this host, or at this instant) and its fields are
// meaningless, not zero.
type Sample struct {
	Time       time.Time
	CPU        float64 // cores; 0.5 = half a core
	MemoryMB   float64 // working set in MiB: usage - inactive_file (cAdvisor)
	RSSMB      float64 // MiB
	PeakMB     float64 // high-water mark of usage so far, MiB
	IOPS       float64 // read + write ops/s
	NetInMbps  float64
	NetOutMbps float64
	Avail      Set
	// CPUSeconds is the CPU time the measured group has used since it was
	// created (its counter: v1 cpuacct.usage, v2 cpu.stat usage_usec), 0
	// when unknown. A task's last value is its exact CPU-seconds, which
	// the integral of its sampled rates misses by the tail after the last
	// sample. Not part of Avail: not a rate, and not stored per sample.
	CPUSeconds float64
	// CPUThrottledSeconds is the time the group's CFS quota has held its
	// threads back since it was created (v1 cpu.stat throttled_time, v2
	// cpu.stat throttled_usec), 0 when unknown or never throttled. Only a
	// quota throttles: contention under weights shows as a longer run.
	CPUThrottledSeconds float64
}

// NetMbps is the total of both directions.
func (s Sample) NetMbps() float64 { return s.NetInMbps + s.NetOutMbps }

// Value returns the sample's amount in dimension d: CPU cores, the
// working set (MemoryMB), IOPS or NetMbps. It does not look at Avail.
func (s Sample) Value(d Dim) float64 {
	switch d {
	case CPU:
		return s.CPU
	case Memory:
		return s.MemoryMB
	case IO:
		return s.IOPS
	case Net:
		return s.NetMbps()
	}
	return 0
}

// Vector returns the sample's amounts (see Value), 0 in the dimensions
// not in Avail.
func (s Sample) Vector() Vector {
	var v Vector
	for d := range NumDims {
		if s.Avail.Has(d) {
			v[d] = s.Value(d)
		}
	}
	return v
}

// Summary is the peak and mean of a run's samples, per dimension over the
// samples in which that dimension was available (and not NaN). N counts
// every sample; a dimension never available is not in Avail and its Peak
// and Mean are 0. Peak is never below 0.
type Summary struct {
	N          int
	Avail      Set
	Peak, Mean Vector
}

// Accumulator builds a Summary one sample at a time, for a run whose
// samples are not kept. The zero value is ready to use. Not safe for
// concurrent use.
type Accumulator struct {
	n    int
	cnt  [NumDims]int
	sum  Vector
	peak Vector
}

// Add counts one sample.
func (a *Accumulator) Add(s Sample) {
	a.n++
	for d := range NumDims {
		x := s.Value(d)
		if !s.Avail.Has(d) || math.IsNaN(x) {
			continue
		}
		a.cnt[d]++
		a.sum[d] += x
		a.peak[d] = max(a.peak[d], x)
	}
}

// N is the number of samples added.
func (a *Accumulator) N() int { return a.n }

// Summary returns the summary of the samples added so far.
func (a *Accumulator) Summary() Summary {
	sm := Summary{N: a.n, Peak: a.peak}
	for d := range NumDims {
		if a.cnt[d] > 0 {
			sm.Avail = sm.Avail.With(d)
			sm.Mean[d] = a.sum[d] / float64(a.cnt[d])
		}
	}
	return sm
}

// Summarize returns the summary of ss.
func Summarize(ss []Sample) Summary {
	var a Accumulator
	for _, s := range ss {
		a.Add(s)
	}
	return a.Summary()
}
