package ledger

import (
	"math"

	"github.com/prescient-sched/prescient/internal/resource"
)

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

// qvec is a resource.Vector in milli-units.
type qvec [resource.NumDims]int64

// demand rounds up: the calendar never under-counts what a task may use.
func demand(v resource.Vector) qvec {
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
func supply(v resource.Vector) qvec {
	var q qvec
	for d, x := range v {
		q[d] = int64(math.Floor(x*scale + quantEps))
		if q[d] < 0 {
			q[d] = 0
		}
	}
	return q
}

func (q qvec) vector() resource.Vector {
	var v resource.Vector
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
func (q qvec) firstOver(w qvec) resource.Dim {
	for d := range q {
		if q[d] > w[d] {
			return resource.Dim(d)
		}
	}
	return -1
}

// validAmounts rejects negative, NaN, infinite or absurd amounts.
func validAmounts(v resource.Vector) error { return v.Validate(maxAmount) }
