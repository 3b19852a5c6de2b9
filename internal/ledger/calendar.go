package ledger

import "slices"

// calendar is a ring of n fixed-width time slots (n a power of two) holding,
// per slot, the summed soft-reservation usage in milli-units, under a
// segment tree with lazy range-add and per-dimension range-max.
//
// Why hand-written: the targets (≥ 50,000 soft reserves/s and a p99
// earliest-fit ≤ 1 ms with 10,000 reservations) rule out scanning
// reservations or slots per query, and no maintained Go library offers a
// vector-valued max/add tree with a "rightmost slot over a per-dimension
// threshold" descent, which is what the earliest-fit search needs. A tree
// over slots (not over reservations) keeps every operation O(log n)
// regardless of how many reservations overlap.
//
// The window is [origin, origin+n) in absolute slot numbers (slot s covers
// [s·width, (s+1)·width) nanoseconds since the Unix epoch); absolute slot s
// lives at position s & (n-1). Moving origin forward zeroes the slots that
// fall off the front, which become the new slots at the back: nothing can be
// there yet, because every reservation is placed inside the window it was
// placed in.
//
// The tree does not push lazies down: mx[i] is the max over node i's range
// including the adds recorded at i and below, lz[i] the adds applied to all
// of node i's range. A slot's value is its leaf plus its ancestors' lz.
type calendar struct {
	width  int64 // slot width, ns
	n      int   // number of slots, a power of two
	mask   int64
	origin int64  // absolute number of the window's first slot
	mx     []qvec // per node: max over its range
	mn     []qvec // per node: min over its range (to skip saturated stretches)
	lz     []qvec

	// batching: addPos records the leaves whose ancestors need a pull in
	// pend instead of pulling at once; flush pulls the union of their
	// paths level by level. A reservation's 8–16 boundary leaves lie
	// within a few dozen slots, so their paths merge after a few levels:
	// about 40 node fixes instead of 2 × 8 × log n (the ledger benchmark's
	// place costs a third of what it did).
	batching bool
	pend     []int
}

func newCalendar(width int64, n int) *calendar {
	return &calendar{width: width, n: n, mask: int64(n - 1), mx: make([]qvec, 2*n), mn: make([]qvec, 2*n), lz: make([]qvec, n)}
}

// slotOf is the absolute slot holding instant ns (floor division).
func (c *calendar) slotOf(ns int64) int64 {
	s := ns / c.width
	if ns%c.width != 0 && ns < 0 {
		s--
	}
	return s
}

// end is the absolute number of the first slot after the window.
func (c *calendar) end() int64 { return c.origin + int64(c.n) }

func (c *calendar) apply(i int, v *qvec) {
	for d := range v {
		c.mx[i][d] += v[d]
		c.mn[i][d] += v[d]
	}
	if i < c.n {
		for d := range v {
			c.lz[i][d] += v[d]
		}
	}
}

func (c *calendar) pull(i int) {
	for i > 1 {
		i >>= 1
		c.fix(i)
	}
}

// addPos adds v to positions [l, r) (no wrap).
func (c *calendar) addPos(l, r int, v qvec) {
	l += c.n
	r += c.n
	l0, r0 := l, r-1
	for l < r {
		if l&1 == 1 {
			c.apply(l, &v)
			l++
		}
		if r&1 == 1 {
			r--
			c.apply(r, &v)
		}
		l >>= 1
		r >>= 1
	}
	if c.batching {
		c.pend = append(c.pend, l0, r0)
		return
	}
	c.pull(l0)
	c.pull(r0)
}

// batch starts deferring pulls until flush.
func (c *calendar) batch() { c.batching = true }

// flush ends a batch: it fixes every ancestor of the pending leaves once,
// bottom up (all leaves are at the same depth, so one level at a time
// finishes a node's children before the node).
func (c *calendar) flush() {
	c.batching = false
	p := c.pend
	if len(p) == 0 {
		return
	}
	slices.Sort(p)
	p = slices.Compact(p)
	for p[0] > 1 {
		w := 0
		for _, i := range p {
			i >>= 1
			if w > 0 && p[w-1] == i {
				continue
			}
			p[w] = i
			w++
			c.fix(i)
		}
		p = p[:w]
	}
	c.pend = c.pend[:0]
}

// fix recomputes node i's max and min from its children and its lazy.
func (c *calendar) fix(i int) {
	l, r, z := &c.mx[2*i], &c.mx[2*i+1], &c.lz[i]
	ln, rn := &c.mn[2*i], &c.mn[2*i+1]
	for d := range z {
		c.mx[i][d] = max(l[d], r[d]) + z[d]
		c.mn[i][d] = min(ln[d], rn[d]) + z[d]
	}
}

// add adds v to absolute slots [from, to], clipped to the window.
func (c *calendar) add(from, to int64, v qvec) {
	from = max(from, c.origin)
	to = min(to, c.end()-1)
	if from > to {
		return
	}
	pf, pt := int(from&c.mask), int(to&c.mask)
	if pf <= pt && to-from < int64(c.n) {
		c.addPos(pf, pt+1, v)
		return
	}
	c.addPos(pf, c.n, v)
	c.addPos(0, pt+1, v)
}

// pos returns the value at position p.
func (c *calendar) pos(p int) qvec {
	i := p + c.n
	v := c.mx[i]
	for i >>= 1; i >= 1; i >>= 1 {
		v = v.add(c.lz[i])
	}
	return v
}

// at returns the soft usage in absolute slot s, zero outside the window.
func (c *calendar) at(s int64) qvec {
	if s < c.origin || s >= c.end() {
		return qvec{}
	}
	return c.pos(int(s & c.mask))
}

// peak returns the per-dimension maxima over the whole window.
func (c *calendar) peak() qvec { return c.mx[1] }

// lastOver returns the last absolute slot in [from, to] (inside the window)
// whose usage exceeds thr in some dimension, or -1.
func (c *calendar) lastOver(from, to int64, thr qvec) int64 {
	pf, pt := int(from&c.mask), int(to&c.mask)
	if pf <= pt && to-from < int64(c.n) {
		if p := c.lastOverPos(1, 0, c.n-1, pf, pt, qvec{}, &thr); p >= 0 {
			return from + int64(p-pf)
		}
		return -1
	}
	// Wrapped: the positions [0, pt] hold the later slots.
	if p := c.lastOverPos(1, 0, c.n-1, 0, pt, qvec{}, &thr); p >= 0 {
		return to - int64(pt-p)
	}
	if p := c.lastOverPos(1, 0, c.n-1, pf, c.n-1, qvec{}, &thr); p >= 0 {
		return from + int64(p-pf)
	}
	return -1
}

// lastOverPos descends from node (covering positions [nl, nr], with acc the
// sum of its ancestors' lazies) to the rightmost position in [l, r] over
// thr. A node entirely inside [l, r] that is over thr always holds such a
// position, so the descent visits O(log n) nodes.
func (c *calendar) lastOverPos(node, nl, nr, l, r int, acc qvec, thr *qvec) int {
	if r < nl || nr < l {
		return -1
	}
	m := &c.mx[node]
	over := false
	for d := range thr {
		if m[d]+acc[d] > thr[d] {
			over = true
			break
		}
	}
	if !over {
		return -1
	}
	if nl == nr {
		return nl
	}
	acc = acc.add(c.lz[node])
	mid := (nl + nr) / 2
	if p := c.lastOverPos(2*node+1, mid+1, nr, l, r, acc, thr); p >= 0 {
		return p
	}
	return c.lastOverPos(2*node, nl, mid, l, r, acc, thr)
}

// advance moves the window's start to absolute slot o. It reports whether
// the window moved by n slots or more, in which case the calendar is empty
// and the caller must re-add what still lies inside the new window.
func (c *calendar) advance(o int64) (cleared bool) {
	if o <= c.origin {
		return false
	}
	if o-c.origin >= int64(c.n) {
		c.reset(o)
		return true
	}
	for s := c.origin; s < o; s++ {
		p := int(s & c.mask)
		if v := c.pos(p); v != (qvec{}) {
			c.addPos(p, p+1, v.neg())
		}
	}
	c.origin = o
	return false
}

// reset empties the calendar and puts its window at o.
func (c *calendar) reset(o int64) {
	clear(c.mx)
	clear(c.mn)
	clear(c.lz)
	c.origin = o
}

// runState carries a free run across the in-order walk of firstRun.
type runState struct {
	need  int64 // slots wanted
	run   int64 // length of the free run ending at the last slot walked
	start int64 // absolute slot where that run began
	base  int64 // absolute slot of position 0 of the segment being walked
	thr   qvec
}

// firstRun returns the first absolute slot a ≥ from such that the need
// slots [a, a+need) are inside the window and all ≤ thr in every dimension,
// or -1. It walks the tree in time order, taking a node whose max is under
// thr as one free stretch and skipping a node whose min is over thr in some
// dimension as one busy stretch, so its cost grows with the number of
// free/busy boundaries it crosses (times log n), not with slots — the
// earliest-fit search uses it to leap over a busy, fragmented calendar.
func (c *calendar) firstRun(from, need int64, thr qvec) int64 {
	from = max(from, c.origin)
	to := c.end() - 1
	if from > to || need <= 0 || to-from+1 < need {
		return -1
	}
	st := runState{need: need, thr: thr}
	pf, pt := int(from&c.mask), int(to&c.mask)
	if pf <= pt {
		st.base = from - int64(pf)
		return c.runPos(1, 0, c.n-1, pf, pt, qvec{}, &st)
	}
	st.base = from - int64(pf)
	if a := c.runPos(1, 0, c.n-1, pf, c.n-1, qvec{}, &st); a >= 0 {
		return a
	}
	st.base = to - int64(pt)
	return c.runPos(1, 0, c.n-1, 0, pt, qvec{}, &st)
}

func (c *calendar) runPos(node, nl, nr, l, r int, acc qvec, st *runState) int64 {
	if r < nl || nr < l {
		return -1
	}
	if l <= nl && nr <= r {
		mx, mn := &c.mx[node], &c.mn[node]
		free, busy := true, false
		for d := range st.thr {
			if mx[d]+acc[d] > st.thr[d] {
				free = false
			}
			if mn[d]+acc[d] > st.thr[d] {
				busy = true
			}
		}
		switch {
		case free:
			if st.run == 0 {
				st.start = st.base + int64(nl)
			}
			st.run += int64(nr - nl + 1)
			if st.run >= st.need {
				return st.start
			}
			return -1
		case busy || nl == nr:
			st.run = 0
			return -1
		}
	}
	acc = acc.add(c.lz[node])
	mid := (nl + nr) / 2
	if a := c.runPos(2*node, nl, mid, l, r, acc, st); a >= 0 {
		return a
	}
	return c.runPos(2*node+1, mid+1, nr, l, r, acc, st)
}
