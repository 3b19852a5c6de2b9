package resource

import (
	"fmt"
	"math"
	"strings"
)

// Dim is one resource dimension. It indexes a [Vector].
type Dim int

// The dimensions, in Vector order.
const (
	CPU    Dim = iota // cores
	Memory            // MiB
	IO                // block IO operations per second
	Net               // megabits per second
	NumDims
)

var dimNames = [NumDims]string{"cpu", "memory", "io", "net"}

var dimUnits = [NumDims]string{"cores", "MiB", "ops/s", "Mbps"}

// String returns the dimension's name: "cpu", "memory", "io" or "net".
func (d Dim) String() string {
	if d < 0 || d >= NumDims {
		return fmt.Sprintf("Dim(%d)", int(d))
	}
	return dimNames[d]
}

// Unit returns the dimension's unit: "cores", "MiB", "ops/s" or "Mbps".
func (d Dim) Unit() string {
	if d < 0 || d >= NumDims {
		return ""
	}
	return dimUnits[d]
}

// Set is a set of dimensions. The zero Set is empty.
type Set uint8

// All is the set of every dimension.
const All Set = 1<<NumDims - 1

// SetOf returns the set of ds.
func SetOf(ds ...Dim) Set {
	var s Set
	for _, d := range ds {
		s = s.With(d)
	}
	return s
}

// Has reports whether d is in s.
func (s Set) Has(d Dim) bool { return d >= 0 && d < NumDims && s&(1<<d) != 0 }

// With returns s with d added.
func (s Set) With(d Dim) Set {
	if d < 0 || d >= NumDims {
		return s
	}
	return s | 1<<d
}

// String lists the set's dimensions, as "cpu|memory"; "none" when empty.
func (s Set) String() string {
	var b strings.Builder
	for d := range NumDims {
		if s.Has(d) {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(d.String())
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Vector is an amount of each resource, indexed by Dim: cores, MiB,
// IO ops/s, Mbps.
type Vector [NumDims]float64

// Add returns v + w.
func (v Vector) Add(w Vector) Vector {
	for d := range v {
		v[d] += w[d]
	}
	return v
}

// Sub returns v - w.
func (v Vector) Sub(w Vector) Vector {
	for d := range v {
		v[d] -= w[d]
	}
	return v
}

// Max returns the per-dimension maximum of v and w.
func (v Vector) Max(w Vector) Vector {
	for d := range v {
		v[d] = max(v[d], w[d])
	}
	return v
}

// Min returns the per-dimension minimum of v and w.
func (v Vector) Min(w Vector) Vector {
	for d := range v {
		v[d] = min(v[d], w[d])
	}
	return v
}

// LessEq reports whether v ≤ w in every dimension.
func (v Vector) LessEq(w Vector) bool {
	for d := range v {
		if v[d] > w[d] {
			return false
		}
	}
	return true
}

// Finite returns v with every NaN, infinite or negative amount replaced
// by 0: a measurement or a forecast that cannot be an amount counts as
// none.
func (v Vector) Finite() Vector {
	for d, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			v[d] = 0
		}
	}
	return v
}

// Validate rejects an amount that is negative, NaN or above limit (which
// rejects +Inf too), naming the first such dimension.
func (v Vector) Validate(limit float64) error {
	for d, x := range v {
		if !(x >= 0) || x > limit {
			return fmt.Errorf("%s amount %v is out of range [0, %g]", Dim(d), x, limit)
		}
	}
	return nil
}

// String formats v as "cpu=1.5 memory=300MB iops=0 net=0Mbps" (the form
// the ledger's and the scheduler's golden scripts record).
func (v Vector) String() string {
	return fmt.Sprintf("cpu=%g memory=%gMB iops=%g net=%gMbps", v[CPU], v[Memory], v[IO], v[Net])
}

// PctOfCores converts CPU in cores to percent of one core (100 = one
// core), the unit of the cpu_pct fields of Prescient's stable formats
// (API, stored task records, CLI JSON). Call it only where such a format
// is written.
func PctOfCores(cores float64) float64 { return cores * 100 }

// CoresOfPct converts percent of one core back to cores, where a stable
// format (or the sample store's pre-cores "cpu" series) is read.
func CoresOfPct(pct float64) float64 { return pct / 100 }
