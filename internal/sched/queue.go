package sched

import "slices"

// fifo is one priority's queue in arrival order. Removal from the middle
// (a cancel, a backfilled start) leaves a hole that is skipped and
// compacted away once holes outnumber entries, so push, remove and a full
// scan are all amortised O(1) per entry.
type fifo struct {
	items []*entry // nil = hole
	head  int      // items before head are holes
	n     int      // live entries
	// def is the index of the first deferred entry (see Config.PlanDepth),
	// or -1. Deferred entries are always a suffix of the live entries: an
	// entry is deferred only when pushed at the tail, and undeferred only
	// from the front of the deferred run.
	def int
}

func newFIFO() *fifo { return &fifo{def: -1} }

func (q *fifo) len() int { return q.n }

func (q *fifo) push(e *entry) {
	e.qi = len(q.items)
	q.items = append(q.items, e)
	q.n++
	if e.deferred && q.def < 0 {
		q.def = e.qi
	}
}

// insert puts e at index i, ahead of the entry there (live or a hole),
// shifting the rest up by one. A deferred e must be inserted at or after
// the first deferred entry, a planned one before it: deferred entries
// stay a suffix.
func (q *fifo) insert(e *entry, i int) {
	q.items = slices.Insert(q.items, i, e)
	for j := i; j < len(q.items); j++ {
		if x := q.items[j]; x != nil {
			x.qi = j
		}
	}
	q.n++
	if q.def >= i {
		q.def++
	}
	if e.deferred && (q.def < 0 || i < q.def) {
		q.def = i
	}
}

// after returns the index of the first live entry whose tag is above
// tag, or -1.
func (q *fifo) after(tag uint64) int {
	for i := q.head; i < len(q.items); i++ {
		if x := q.items[i]; x != nil && x.tag > tag {
			return i
		}
	}
	return -1
}

// firstDeferred returns the first deferred entry, or nil.
func (q *fifo) firstDeferred() *entry {
	if q.def < 0 {
		return nil
	}
	return q.items[q.def]
}

// lastPlanned returns the last live entry before the deferred ones, or nil.
func (q *fifo) lastPlanned() *entry {
	i := len(q.items)
	if q.def >= 0 {
		i = q.def
	}
	for i--; i >= q.head; i-- {
		if q.items[i] != nil {
			return q.items[i]
		}
	}
	return nil
}

// deferLast marks e, which must be lastPlanned, deferred.
func (q *fifo) deferLast(e *entry) {
	e.deferred = true
	q.def = e.qi
}

// undefer marks the first deferred entry planned; e must be it.
func (q *fifo) undefer(e *entry) {
	e.deferred = false
	q.def = -1
	if x, i := q.next(e.qi + 1); x != nil {
		q.def = i
	}
}

func (q *fifo) remove(e *entry) {
	if e.qi < 0 || e.qi >= len(q.items) || q.items[e.qi] != e {
		return
	}
	if q.def == e.qi {
		q.def = -1
		if x, i := q.next(e.qi + 1); x != nil {
			q.def = i
		}
	}
	q.items[e.qi] = nil
	e.qi = -1
	q.n--
	for q.head < len(q.items) && q.items[q.head] == nil {
		q.head++
	}
	if q.n == 0 {
		q.items, q.head, q.def = q.items[:0], 0, -1
		return
	}
	if holes := len(q.items) - q.n; holes > 32 && holes > q.n {
		d := q.firstDeferred()
		live := q.items[:0]
		for _, x := range q.items[q.head:] {
			if x != nil {
				x.qi = len(live)
				live = append(live, x)
			}
		}
		clear(q.items[len(live):])
		q.items, q.head = live, 0
		if d != nil {
			q.def = d.qi
		}
	}
}

// next returns the first live entry at or after index i and its index
// (nil, len when none).
func (q *fifo) next(i int) (*entry, int) {
	for i = max(i, q.head); i < len(q.items); i++ {
		if q.items[i] != nil {
			return q.items[i], i
		}
	}
	return nil, len(q.items)
}

// dueHeap orders reserved queued entries by reserved start, then arrival.
type dueHeap []*entry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].resStart.Equal(h[j].resStart) {
		return h[i].resStart.Before(h[j].resStart)
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}
