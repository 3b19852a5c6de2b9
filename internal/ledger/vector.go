package ledger

import (
	"fmt"
	"math"

	"github.com/prescient-sched/prescient/internal/task"
)

// Dim indexes one resource dimension of a Vector.
type Dim int

// The dimensions the ledger accounts for, in Vector order.
const (
	CPU    Dim = iota // cores; 0.5 = half a core
	Memory            // MiB
	IO                // block IO operations per second
	Net               // megabits per second
	NumDims
)

var dimNames = [NumDims]string{"cpu", "memory", "iops", "net"}

func (d Dim) String() string {
	if d < 0 || d >= NumDims {
		return fmt.Sprintf("Dim(%d)", int(d))
	}
	return dimNames[d]
}

// Vector is an amount of each resource: cores, MiB, IO ops/s, Mbps.
type Vector [NumDims]float64

// FromLimits converts hard limits to a Vector (Pids is not a ledger
// dimension and is dropped).
func FromLimits(l task.Limits) Vector {
	return Vector{CPU: l.CPUCores, Memory: l.MemoryMB, IO: l.IOPS, Net: l.NetMbps}
}

// Limits converts v to task limits (Pids left zero).
func (v Vector) Limits() task.Limits {
	return task.Limits{CPUCores: v[CPU], MemoryMB: v[Memory], IOPS: v[IO], NetMbps: v[Net]}
}

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

// LessEq reports whether v ≤ w in every dimension.
func (v Vector) LessEq(w Vector) bool {
	for d := range v {
		if v[d] > w[d] {
			return false
		}
	}
	return true
}

func (v Vector) String() string {
	return fmt.Sprintf("cpu=%g memory=%gMB iops=%g net=%gMbps", v[CPU], v[Memory], v[IO], v[Net])
}

// validate rejects negative, NaN, infinite or absurd amounts.
func (v Vector) validate() error {
	for d, x := range v {
		if !(x >= 0) || x > maxAmount {
			return fmt.Errorf("%s amount %v is out of range [0, %g]", Dim(d), x, maxAmount)
		}
	}
	return nil
}

// The calendar counts in integer milli-units (millicores, KB-ish for memory,
// milli-ops/s, kbit/s) so that adding and removing reservations is exact:
// with float64 sums, a calendar that has seen a million reserve/release pairs
// drifts away from zero and the "sum over reservations equals the calendar's
// totals" invariant could only hold approximately.
const (
	scale     = 1000
	maxAmount = 1e12 // the bound task.Limits.Validate uses; 1e15 milli-units fits int64 with room for 9000 at once
	quantEps  = 1e-6 // tolerance so that 0.1*1000 rounds to 100, not 101
)

// qvec is a Vector in milli-units.
type qvec [NumDims]int64

// demand rounds up: the calendar never under-counts what a task may use.
func demand(v Vector) qvec {
	var q qvec
	for d, x := range v {
		q[d] = int64(math.Ceil(x*scale - quantEps))
		if q[d] < 0 {
			q[d] = 0
		}
	}
	return q
}

// supply rounds down: the calendar never over-states capacity.
func supply(v Vector) qvec {
	var q qvec
	for d, x := range v {
		q[d] = int64(math.Floor(x*scale + quantEps))
		if q[d] < 0 {
			q[d] = 0
		}
	}
	return q
}

func (q qvec) vector() Vector {
	var v Vector
	for d, x := range q {
		v[d] = float64(x) / scale
	}
	return v
}

func (q qvec) add(w qvec) qvec {
	for d := range q {
		q[d] += w[d]
	}
	return q
}

func (q qvec) sub(w qvec) qvec {
	for d := range q {
		q[d] -= w[d]
	}
	return q
}

func (q qvec) max(w qvec) qvec {
	for d := range q {
		q[d] = max(q[d], w[d])
	}
	return q
}

func (q qvec) min(w qvec) qvec {
	for d := range q {
		q[d] = min(q[d], w[d])
	}
	return q
}

func (q qvec) neg() qvec {
	for d := range q {
		q[d] = -q[d]
	}
	return q
}

// firstOver returns the first dimension in which q > w, or -1.
func (q qvec) firstOver(w qvec) Dim {
	for d := range q {
		if q[d] > w[d] {
			return Dim(d)
		}
	}
	return -1
}
