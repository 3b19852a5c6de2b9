package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// naiveSoft recomputes the usage of every slot in the window straight
// from the live reservations and the plans of hard allocations: per
// reservation the max of the steps touching the slot, summed.
func naiveSoft(l *Ledger) map[int64]qvec {
	out := map[int64]qvec{}
	for _, r := range l.res {
		sh, start := &r.sh, r.start
		switch {
		case r.planned:
			sh, start = &r.placed, r.pstart
		case r.kind != Soft:
			continue
		}
		mine := map[int64]qvec{}
		for k := range sh.offs {
			a := start + sh.offs[k]
			for s := floorDiv(a, l.width); s <= floorDiv(a+sh.durs[k]-1, l.width); s++ {
				mine[s] = mine[s].max(sh.sized[k])
			}
		}
		for s, v := range mine {
			if s >= l.cal.origin && s < l.cal.end() {
				out[s] = out[s].add(v)
			}
		}
	}
	return out
}

// naiveEarliest tries every start at which the answer can change — the
// asked earliest and every instant a step's start crosses a slot boundary —
// in order, checking every slot of every step against naive usage.
func naiveEarliest(l *Ledger, sh *shape, from int64) (int64, bool) {
	w := l.width
	left := l.capq.sub(l.flat)
	for _, v := range sh.sized {
		if v.firstOver(left) >= 0 {
			return 0, false
		}
	}
	soft := naiveSoft(l)
	end := l.cal.end() * w
	s0 := max(from, l.cal.origin*w)
	cands := []int64{s0}
	for k := range sh.offs {
		for m := floorDiv(s0+sh.offs[k], w) + 1; m*w-sh.offs[k] <= end; m++ {
			cands = append(cands, m*w-sh.offs[k])
		}
	}
	slices.Sort(cands)
	for _, c := range cands {
		if c < s0 {
			continue
		}
		if c+sh.total > end {
			return 0, false
		}
		ok := true
		for k := range sh.offs {
			a := c + sh.offs[k]
			for s := floorDiv(a, w); ok && s <= floorDiv(a+sh.durs[k]-1, w); s++ {
				if soft[s].add(sh.sized[k]).firstOver(left) >= 0 {
					ok = false
				}
			}
		}
		if ok {
			return c, true
		}
	}
	return 0, false
}

// checkInvariants compares the calendar with a naive recomputation.
func checkInvariants(t *testing.T, l *Ledger, step int) {
	t.Helper()
	soft := naiveSoft(l)
	var peak qvec
	for s := l.cal.origin; s < l.cal.end(); s++ {
		if got, want := l.cal.at(s), soft[s]; got != want {
			t.Fatalf("op %d: slot %d: calendar has %v, reservations sum to %v", step, s, got, want)
		}
		peak = peak.max(soft[s])
	}
	if got := l.cal.peak(); got != peak {
		t.Fatalf("op %d: tree peak %v, naive %v", step, got, peak)
	}
	var hard, flat qvec
	nSoft := 0
	for _, r := range l.res {
		if r.kind == Hard {
			hard = hard.add(r.hard)
			if !r.planned {
				flat = flat.add(r.hard)
				continue
			}
			// A plan covers the limits in the slot they were set in,
			// and ends inside the window.
			if got := r.placed.in(r.pstart, floorDiv(r.pstart, l.width), l.width); r.hard.firstOver(got) >= 0 {
				t.Fatalf("op %d: %s holds %v, its plan covers %v where they were set", step, r.id, r.hard, got)
			}
			if r.pstart+r.placed.total > l.cal.end()*l.width {
				t.Fatalf("op %d: %s's plan [%d, %d) ends after the window [%d, %d)", step, r.id, r.pstart, r.pstart+r.placed.total, l.cal.origin*l.width, l.cal.end()*l.width)
			}
		} else {
			nSoft++
			if r.hidx < 0 || l.exp[r.hidx] != r {
				t.Fatalf("op %d: soft %s not in expiry heap", step, r.id)
			}
		}
	}
	if hard != l.hard {
		t.Fatalf("op %d: hard total %v, allocations sum to %v", step, l.hard, hard)
	}
	if flat != l.flat {
		t.Fatalf("op %d: flat total %v, unplanned allocations sum to %v", step, l.flat, flat)
	}
	if d := l.hard.firstOver(l.capq); d >= 0 {
		t.Fatalf("op %d: committed %v exceeds capacity %v in %s", step, l.hard, l.capq, d)
	}
	if len(l.exp) != nSoft {
		t.Fatalf("op %d: expiry heap holds %d, %d soft reservations live", step, len(l.exp), nSoft)
	}
}

func randCurve(rng *rand.Rand, capv resource.Vector) Curve {
	n := 1 + rng.IntN(4)
	c := Curve{HiQ: 0.9}
	for range n {
		var p50, phi resource.Vector
		for d := range p50 {
			if rng.IntN(4) == 0 {
				continue // some dimensions unused
			}
			p50[d] = capv[d] * rng.Float64() * 0.6
			phi[d] = p50[d] + capv[d]*rng.Float64()*0.3
		}
		c.Steps = append(c.Steps, Step{Dur: time.Duration(200+rng.IntN(12000)) * time.Millisecond, P50: p50, PHi: phi})
	}
	return c
}

func randLimits(rng *rand.Rand, capv resource.Vector) task.Limits {
	var v resource.Vector
	for d := range v {
		v[d] = capv[d] * rng.Float64() * 0.5
	}
	return task.LimitsOf(v)
}

func TestPropertyRandomInterleavings(t *testing.T) {
	capv := resource.Vector{resource.CPU: 4, resource.Memory: 1000, resource.IO: 100, resource.Net: 100}
	for seed := range uint64(12) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x1ed6e5))
			q := []float64{0.5, 0.7, 0.9}[seed%3]
			l, err := New(Config{Capacity: capv, SlotWidth: time.Second, Horizon: 60 * time.Second, SoftQuantile: q, Start: t0, DefaultTTL: 20 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			created, ended := 0, 0
			endedIDs := map[string]int{}
			everReleased := map[string]bool{}
			ids := []string{}
			fits := 0
			for step := range 1500 {
				switch op := rng.IntN(100); {
				case op < 35: // reserve, checked against the naive earliest-fit scan
					id := fmt.Sprintf("t%d", step)
					c := randCurve(rng, capv)
					earliest := now.Add(time.Duration(rng.IntN(20000)) * time.Millisecond)
					sh, err := l.prepare(c)
					if err != nil {
						t.Fatal(err)
					}
					wantS, wantOK := naiveEarliest(l, &sh, earliest.UnixNano())
					// A shape prepared once answers as the curve does, at
					// the ledger's quantile and (sized anew) at another.
					for _, sq := range []float64{q, 0.95} {
						shp, err := NewShape(c, sq)
						if err != nil {
							t.Fatal(err)
						}
						f, err := l.EarliestFitShape(shp, earliest)
						if err != nil {
							t.Fatal(err)
						}
						if f.OK != wantOK || (wantOK && f.Start.UnixNano() != wantS) {
							t.Fatalf("op %d: EarliestFitShape (quantile %v) %+v, naive scan says ok=%v start=%v", step, sq, f, wantOK, time.Unix(0, wantS).Sub(t0))
						}
						// Fits at earliest itself exactly when the earliest
						// fit starts there.
						at, err := l.FitsAtShape(shp, earliest)
						if err != nil {
							t.Fatal(err)
						}
						if sq == q { // the unprepared curve answers the same
							if c2, err := l.FitsAt(c, earliest); err != nil || c2 != at {
								t.Fatalf("op %d: FitsAt %+v %v, FitsAtShape %+v", step, c2, err, at)
							}
						}
						atS := max(earliest.UnixNano(), l.cal.origin*l.width)
						if want := wantOK && wantS == atS; at.OK != want || (at.OK && at.Start.UnixNano() != atS) || (!at.OK && wantOK && at.Reason != ReasonBusy) {
							t.Fatalf("op %d: FitsAtShape (quantile %v) %+v, naive scan says ok=%v start=%v (asked %v)", step, sq, at, wantOK, time.Unix(0, wantS).Sub(t0), time.Unix(0, atS).Sub(t0))
						}
					}
					_, fit, err := l.SoftReserve(id, c, earliest, time.Duration(rng.IntN(30))*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if fit.OK != wantOK || (wantOK && fit.Start.UnixNano() != wantS) {
						t.Fatalf("op %d: fit %+v, naive scan says ok=%v start=%v", step, fit, wantOK, time.Unix(0, wantS).Sub(t0))
					}
					if fit.OK {
						created++
						fits++
						ids = append(ids, id)
						if fit.Start.Before(earliest) || !fit.End.Equal(fit.Start.Add(c.Total())) {
							t.Fatalf("op %d: fit %+v for earliest %v", step, fit, earliest)
						}
					}
				case op < 45 && len(ids) > 0: // resize
					id := ids[rng.IntN(len(ids))]
					_, _, err := l.Resize(id, randCurve(rng, capv))
					if err != nil && !errors.Is(err, ErrReleased) && !errors.Is(err, ErrCommitted) {
						t.Fatalf("op %d: resize: %v", step, err)
					}
				case op < 60 && len(ids) > 0: // commit
					id := ids[rng.IntN(len(ids))]
					var err error
					if rng.IntN(2) == 0 {
						err = l.Commit(id, now, randLimits(rng, capv))
					} else {
						err = l.CommitPlan(id, now, randLimits(rng, capv), randCurve(rng, capv))
					}
					if err != nil && !errors.Is(err, ErrReleased) && !errors.Is(err, ErrCommitted) && !errors.Is(err, ErrOverCapacity) {
						t.Fatalf("op %d: commit: %v", step, err)
					}
					if everReleased[id] && !errors.Is(err, ErrReleased) {
						t.Fatalf("op %d: commit after release: %v, want ErrReleased", step, err)
					}
				case op < 70 && len(ids) > 0: // adjust, or replan what is left
					id := ids[rng.IntN(len(ids))]
					if rng.IntN(3) == 0 {
						err := l.Replan(id, now, randCurve(rng, capv))
						if err != nil && !errors.Is(err, ErrReleased) && !errors.Is(err, ErrNotCommitted) && !errors.Is(err, ErrUnplanned) {
							t.Fatalf("op %d: replan: %v", step, err)
						}
						break
					}
					err := l.Adjust(id, now, randLimits(rng, capv))
					if err != nil && !errors.Is(err, ErrReleased) && !errors.Is(err, ErrNotCommitted) && !errors.Is(err, ErrOverCapacity) {
						t.Fatalf("op %d: adjust: %v", step, err)
					}
				case op < 85 && len(ids) > 0: // release, sometimes twice, sometimes unknown
					id := ids[rng.IntN(len(ids))]
					if rng.IntN(10) == 0 {
						id = "never-reserved"
					}
					if l.Release(id) {
						ended++
						endedIDs[id]++
						everReleased[id] = true
					}
					if l.Release(id) {
						t.Fatalf("op %d: second release of %s released again", step, id)
					}
				default: // time passes; now and then far past the horizon
					d := time.Duration(rng.IntN(4000)) * time.Millisecond
					if rng.IntN(40) == 0 {
						d = 2 * time.Minute
					}
					now = now.Add(d)
					for _, r := range l.Expire(now) {
						if r.Kind != Soft || r.Expires.After(now) {
							t.Fatalf("op %d: expired %+v at %v", step, r, now)
						}
						ended++
						endedIDs[r.ID]++
						everReleased[r.ID] = true
					}
				}
				checkInvariants(t, l, step)
			}
			for _, id := range ids {
				if l.Release(id) {
					ended++
					endedIDs[id]++
				}
			}
			if created != ended {
				t.Fatalf("%d reservations made, %d ended", created, ended)
			}
			for id, n := range endedIDs {
				if n != 1 {
					t.Fatalf("%s ended %d times", id, n)
				}
			}
			if l.hard != (qvec{}) || l.flat != (qvec{}) || l.cal.peak() != (qvec{}) || len(l.res) != 0 || len(l.exp) != 0 {
				t.Fatalf("after releasing everything: hard %v soft peak %v live %d heap %d", l.hard, l.cal.peak(), len(l.res), len(l.exp))
			}
			if fits < 20 {
				t.Fatalf("only %d reservations fitted: the test exercises too little", fits)
			}
		})
	}
}

// TestCalendarAgainstArray drives the tree with random adds, window moves
// and "last over threshold" queries, including ranges that wrap the ring.
func TestCalendarAgainstArray(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 32
	c := newCalendar(1, n)
	c.reset(-5) // negative slot numbers work too
	arr := map[int64]qvec{}
	for step := range 20000 {
		switch rng.IntN(4) {
		case 0, 1:
			from := c.origin + int64(rng.IntN(n))
			to := from + int64(rng.IntN(n))
			var v qvec
			for d := range v {
				v[d] = int64(rng.IntN(100))
			}
			if rng.IntN(3) == 0 {
				// remove something that is there: subtract the minimum over the range
				v = qvec{}
				for d := range v {
					v[d] = 1 << 60
				}
				for s := from; s <= min(to, c.end()-1); s++ {
					v = qvec{min(v[0], arr[s][0]), min(v[1], arr[s][1]), min(v[2], arr[s][2]), min(v[3], arr[s][3])}
				}
				v = v.neg()
			}
			c.add(from, to, v)
			for s := from; s <= min(to, c.end()-1); s++ {
				arr[s] = arr[s].add(v)
			}
		case 2:
			o := c.origin + int64(rng.IntN(n/4))
			if rng.IntN(50) == 0 {
				o += 2 * n
			}
			if c.advance(o) {
				arr = map[int64]qvec{}
			}
			for s := range arr {
				if s < c.origin {
					delete(arr, s)
				}
			}
		case 3:
			from := c.origin + int64(rng.IntN(n))
			to := min(from+int64(rng.IntN(n)), c.end()-1)
			var thr qvec
			for d := range thr {
				thr[d] = int64(rng.IntN(200))
			}
			want := int64(-1)
			for s := to; s >= from; s-- {
				if arr[s].firstOver(thr) >= 0 {
					want = s
					break
				}
			}
			if got := c.lastOver(from, to, thr); got != want {
				t.Fatalf("step %d: lastOver(%d, %d, %v) = %d, want %d", step, from, to, thr, got, want)
			}
			wantFree := int64(-1)
			for s := from; s < c.end(); s++ {
				if arr[s].firstOver(thr) < 0 {
					wantFree = s
					break
				}
			}
			need := int64(1 + rng.IntN(8))
			wantRun := int64(-1)
			for a := from; a+need <= c.end(); a++ {
				ok := true
				for s := a; s < a+need; s++ {
					ok = ok && arr[s].firstOver(thr) < 0
				}
				if ok {
					wantRun = a
					break
				}
			}
			if got := c.firstRun(from, need, thr); got != wantRun {
				t.Fatalf("step %d: firstRun(%d, %d, %v) = %d, want %d", step, from, need, thr, got, wantRun)
			}
			if got := c.firstRun(from, 1, thr); got != wantFree {
				t.Fatalf("step %d: firstFree(%d, %v) = %d, want %d", step, from, thr, got, wantFree)
			}
		}
		for s := c.origin; s < c.end(); s++ {
			if c.at(s) != arr[s] {
				t.Fatalf("step %d: slot %d = %v, want %v", step, s, c.at(s), arr[s])
			}
		}
	}
}
