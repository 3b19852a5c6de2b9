package store

import (
	"math"

	"github.com/prescient-sched/prescient/internal/profile"
)

// Label names of every sample series.
const (
	labelTask = "task"
	labelSig  = "sig"
	labelDim  = "dim"
)

// column is one stored series of a task: one float field of profile.Sample.
type column uint8

const (
	colCPU column = iota
	colMem
	colRSS
	colPeak
	colIO
	colNetIn
	colNetOut
	numColumns
)

// columns describes each column: its dim label value, the profile.Dim that
// says whether it is available, and its quantum as a power of two.
//
// Values are rounded to a multiple of 2^-scaleLog2. Such numbers have short
// float64 mantissas, and the Gorilla XOR encoding the TSDB uses stores only
// the bits that change between neighbours: a noisy curve in full float
// precision costs ~8 bytes a sample, the same curve rounded this way ~1-2.
// A power of two (not 0.01) keeps the stored number in its natural unit and
// the rounding exact.
var columns = [numColumns]struct {
	name      string
	dim       profile.Dim
	scaleLog2 int
}{
	colCPU:    {"cpu", profile.CPU, 7},     // 1/128 %
	colMem:    {"mem", profile.Memory, 10}, // 1/1024 MiB = 1 KiB
	colRSS:    {"rss", profile.Memory, 10},
	colPeak:   {"peak", profile.Memory, 10},
	colIO:     {"io", profile.IO, 7},       // 1/128 op/s
	colNetIn:  {"net_in", profile.Net, 10}, // 1/1024 Mbit/s ≈ 1 kbit/s
	colNetOut: {"net_out", profile.Net, 10},
}

// columnByName maps a dim label value back to its column.
func columnByName(name string) (column, bool) {
	for c := range numColumns {
		if columns[c].name == name {
			return c, true
		}
	}
	return 0, false
}

// get returns column c of s.
func (c column) get(s *profile.Sample) float64 {
	switch c {
	case colCPU:
		return s.CPUPct
	case colMem:
		return s.MemoryMB
	case colRSS:
		return s.RSSMB
	case colPeak:
		return s.PeakMB
	case colIO:
		return s.IOPS
	case colNetIn:
		return s.NetInMbps
	default:
		return s.NetOutMbps
	}
}

// set stores v into column c of s and marks its dimension available.
func (c column) set(s *profile.Sample, v float64) {
	switch c {
	case colCPU:
		s.CPUPct = v
	case colMem:
		s.MemoryMB = v
	case colRSS:
		s.RSSMB = v
	case colPeak:
		s.PeakMB = v
	case colIO:
		s.IOPS = v
	case colNetIn:
		s.NetInMbps = v
	default:
		s.NetOutMbps = v
	}
	s.Avail |= profile.Dims(columns[c].dim)
}

// scales[c] is 2^columns[c].scaleLog2.
var scales = func() (s [numColumns]float64) {
	for c := range s {
		s[c] = math.Ldexp(1, columns[c].scaleLog2)
	}
	return s
}()

// quantize rounds v to the column's quantum. Multiplying and dividing by a
// power of two is exact (short of overflow, which gives ±Inf and is
// rejected), so quantize is idempotent: quantize(quantize(v)) == quantize(v).
func (c column) quantize(v float64) float64 {
	return math.Round(v*scales[c]) / scales[c]
}
