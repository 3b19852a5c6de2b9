package store

import (
	"math"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Label names of every sample series.
const (
	labelTask = "task"
	labelSig  = "sig"
	labelDim  = "dim"
)

// column is one stored series of a task: one float field of
// resource.Sample.
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

// columns describes each column: its dim label value, the resource.Dim
// that says whether it is available, and its quantum as a power of two.
//
// Values are rounded to a multiple of 2^-scaleLog2. Such numbers have short
// float64 mantissas, and the Gorilla XOR encoding the TSDB uses stores only
// the bits that change between neighbours: a noisy curve in full float
// precision costs ~8 bytes a sample, the same curve rounded this way ~1-2.
// A power of two (not 0.01) keeps the stored number in its natural unit and
// the rounding exact.
//
// CPU is stored in cores under "cpu_cores". Its quantum, 2^-13 core
// (≈ 0.012 %), is an eighth of the ledger's millicore. The percent series
// had 1/128 %; in BenchmarkBytesPerSample 2^-14 core (finer than that)
// costs 0.4 % more bytes a sample than it did, 2^-13 core 0.6 % fewer.
var columns = [numColumns]struct {
	name      string
	dim       resource.Dim
	scaleLog2 int
}{
	colCPU:    {"cpu_cores", resource.CPU, 13}, // 1/8192 core
	colMem:    {"mem", resource.Memory, 10},    // 1/1024 MiB = 1 KiB
	colRSS:    {"rss", resource.Memory, 10},
	colPeak:   {"peak", resource.Memory, 10},
	colIO:     {"io", resource.IO, 7},       // 1/128 op/s
	colNetIn:  {"net_in", resource.Net, 10}, // 1/1024 Mbit/s ≈ 1 kbit/s
	colNetOut: {"net_out", resource.Net, 10},
}

// legacyCPU is the dim label of the CPU series written before CPU was
// counted in cores: percent of one core (100 = one core), quantum 1/128 %.
// Nothing writes it any more; state directories from before still hold
// it, and reads convert it to cores.
const legacyCPU = "cpu"

// columnByName maps a dim label value back to its column; pct reports a
// legacy percent series, whose values the reader converts to cores.
func columnByName(name string) (c column, pct, ok bool) {
	if name == legacyCPU {
		return colCPU, true, true
	}
	for c := range numColumns {
		if columns[c].name == name {
			return c, false, true
		}
	}
	return 0, false, false
}

// get returns column c of s.
func (c column) get(s *resource.Sample) float64 {
	switch c {
	case colCPU:
		return s.CPU
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
func (c column) set(s *resource.Sample, v float64) {
	switch c {
	case colCPU:
		s.CPU = v
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
	s.Avail = s.Avail.With(columns[c].dim)
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
