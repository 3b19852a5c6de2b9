package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/prescient-sched/prescient/internal/profile"
)

// labelNode marks the node's own series ({node="local", dim=…}), beside the
// tasks' ({task, sig, dim}).
const (
	labelNode = "node"
	nodeLocal = "local"
)

// nodeColumn is one stored series of the node: one field of
// profile.NodeSample.
type nodeColumn struct {
	name      string
	group     profile.NodeSet
	scaleLog2 int
	get       func(*profile.NodeSample) float64
	set       func(*profile.NodeSample, float64)
}

// nodeColumns are the node's series. Values are rounded to binary
// fractions as the tasks' are (see columns): CPU to 2^-13 core, memory to
// 1 KiB, counts to 1/4, pressure shares to 2^-16.
var nodeColumns = []nodeColumn{
	{"cores", profile.NodeCPU, 0, func(s *profile.NodeSample) float64 { return s.Cores }, func(s *profile.NodeSample, v float64) { s.Cores = v }},
	{"cpu_busy_cores", profile.NodeCPU, 13, func(s *profile.NodeSample) float64 { return s.CPUBusy }, func(s *profile.NodeSample, v float64) { s.CPUBusy = v }},
	{"mem_total", profile.NodeMemory, 10, func(s *profile.NodeSample) float64 { return s.MemTotalMB }, func(s *profile.NodeSample, v float64) { s.MemTotalMB = v }},
	{"mem_available", profile.NodeMemory, 10, func(s *profile.NodeSample) float64 { return s.MemAvailableMB }, func(s *profile.NodeSample, v float64) { s.MemAvailableMB = v }},
	{"runnable", profile.NodeProcs, 2, func(s *profile.NodeSample) float64 { return s.Runnable }, func(s *profile.NodeSample, v float64) { s.Runnable = v }},
	{"blocked", profile.NodeProcs, 2, func(s *profile.NodeSample) float64 { return s.Blocked }, func(s *profile.NodeSample, v float64) { s.Blocked = v }},
	{"psi_cpu_some", profile.NodeCPUPressure, 16, func(s *profile.NodeSample) float64 { return s.CPUPressure.Some }, func(s *profile.NodeSample, v float64) { s.CPUPressure.Some = v }},
	{"psi_cpu_full", profile.NodeCPUPressure, 16, func(s *profile.NodeSample) float64 { return s.CPUPressure.Full }, func(s *profile.NodeSample, v float64) { s.CPUPressure.Full = v }},
	{"psi_memory_some", profile.NodeMemoryPressure, 16, func(s *profile.NodeSample) float64 { return s.MemoryPressure.Some }, func(s *profile.NodeSample, v float64) { s.MemoryPressure.Some = v }},
	{"psi_memory_full", profile.NodeMemoryPressure, 16, func(s *profile.NodeSample) float64 { return s.MemoryPressure.Full }, func(s *profile.NodeSample, v float64) { s.MemoryPressure.Full = v }},
	{"psi_io_some", profile.NodeIOPressure, 16, func(s *profile.NodeSample) float64 { return s.IOPressure.Some }, func(s *profile.NodeSample, v float64) { s.IOPressure.Some = v }},
	{"psi_io_full", profile.NodeIOPressure, 16, func(s *profile.NodeSample) float64 { return s.IOPressure.Full }, func(s *profile.NodeSample, v float64) { s.IOPressure.Full = v }},
}

// nodeRefs caches the node's label sets and head series references (see
// taskRefs).
type nodeRefs struct {
	lsets []labels.Labels
	refs  []atomic.Uint64
}

func newNodeRefs() *nodeRefs {
	r := &nodeRefs{lsets: make([]labels.Labels, len(nodeColumns)), refs: make([]atomic.Uint64, len(nodeColumns))}
	for i, c := range nodeColumns {
		r.lsets[i] = labels.FromStrings(labelDim, c.name, labelNode, nodeLocal)
	}
	return r
}

func quantizeTo(v float64, scaleLog2 int) float64 {
	k := math.Ldexp(1, scaleLog2)
	return math.Round(v*k) / k
}

// AppendNode stores samples of the whole node (profile.NodeSampler), in one
// transaction. Groups missing from a sample's Avail are not stored. Errors
// are Append's.
func (s *Samples) AppendNode(ss ...profile.NodeSample) error {
	for i := range ss {
		if ss[i].Time.IsZero() {
			return fmt.Errorf("node sample %d: zero time: %w", i, ErrInvalid)
		}
		for _, c := range nodeColumns {
			if v := c.get(&ss[i]); ss[i].Avail.Has(c.group) && (math.IsNaN(v) || math.IsInf(v, 0)) {
				return fmt.Errorf("node sample %d: %s value %v is not finite: %w", i, c.name, v, ErrInvalid)
			}
		}
	}
	if len(ss) == 0 {
		return nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.nodeOnce.Do(func() { s.node = newNodeRefs() })
	e := s.node
	refs := make([]storage.SeriesRef, len(nodeColumns))
	create := false
	for c := range refs {
		refs[c] = storage.SeriesRef(e.refs[c].Load())
		create = create || refs[c] == 0
	}
	if create {
		s.createMu.Lock() // a series may be created (see createMu)
		defer s.createMu.Unlock()
	}
	app := s.db.AppenderV2(context.Background())
	n := 0
	for i := range ss {
		smp := &ss[i]
		t := smp.Time.UnixMilli()
		for c, col := range nodeColumns {
			if !smp.Avail.Has(col.group) {
				continue
			}
			ref, err := app.Append(refs[c], e.lsets[c], 0, t, quantizeTo(col.get(smp), col.scaleLog2), nil, nil, storage.AOptions{})
			if err != nil {
				s.metrics.failed.Inc()
				err = classifyAppendErr(err)
				if rerr := app.Rollback(); rerr != nil {
					err = fmt.Errorf("%w (rollback: %w)", err, rerr)
				}
				return fmt.Errorf("append node sample %d (%s at %s): %w", i, col.name, smp.Time.UTC().Format(time.RFC3339Nano), err)
			}
			refs[c] = ref
			n++
		}
	}
	if err := app.Commit(); err != nil {
		s.metrics.failed.Inc()
		return fmt.Errorf("commit node samples: %w", classifyAppendErr(err))
	}
	for c := range refs {
		if refs[c] != 0 {
			e.refs[c].Store(uint64(refs[c]))
		}
	}
	s.metrics.appended.Add(float64(n))
	return nil
}

// Node returns the node's samples with from ≤ Time ≤ to, in time order. A
// sample's Avail holds the groups with at least one series value at that
// millisecond.
func (s *Samples) Node(from, to time.Time) ([]profile.NodeSample, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	q, err := s.db.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("node samples: querier: %w", err)
	}
	defer q.Close()
	byName := map[string]int{}
	for i, c := range nodeColumns {
		byName[c.name] = i
	}
	at := map[int64]*profile.NodeSample{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labelNode, nodeLocal))
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		c, ok := byName[series.Labels().Get(labelDim)]
		if !ok {
			continue
		}
		col := nodeColumns[c]
		it = series.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if value.IsStaleNaN(v) {
				continue
			}
			smp := at[t]
			if smp == nil {
				smp = &profile.NodeSample{Time: time.UnixMilli(t).UTC()}
				at[t] = smp
			}
			col.set(smp, v)
			smp.Avail |= col.group
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("node samples: read %s: %w", col.name, err)
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("node samples: select: %w", err)
	}
	out := make([]profile.NodeSample, 0, len(at))
	for _, smp := range at {
		out = append(out, *smp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}
