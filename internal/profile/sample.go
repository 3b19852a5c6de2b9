package profile

import "time"

// Dim is one measured dimension. Dims is a set of them.
type Dim uint8

// The dimensions a Sample may carry.
const (
	CPU Dim = 1 << iota
	Memory
	IO
	Net
)

// Dims is a set of Dim.
type Dims uint8

// Has reports whether d is in the set.
func (s Dims) Has(d Dim) bool { return uint8(s)&uint8(d) != 0 }

// Sample is one measurement of one task. A dimension not in Avail was not
// measurable on this host and its fields are meaningless (not zero).
type Sample struct {
	Time       time.Time
	CPUPct     float64 // 100 = one core
	MemoryMB   float64 // working set: usage - inactive_file (cAdvisor)
	RSSMB      float64
	PeakMB     float64 // high-water mark of usage so far
	IOPS       float64 // read + write ops/s
	NetInMbps  float64
	NetOutMbps float64
	Avail      Dims
}

// NetMbps is the total of both directions.
func (s Sample) NetMbps() float64 { return s.NetInMbps + s.NetOutMbps }
