package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Defaults of SamplesConfig.
const (
	DefaultRetention        = 30 * 24 * time.Hour
	DefaultOutOfOrderWindow = 6 * time.Hour
)

// maxCachedTasks bounds the series-reference cache. Evicting an entry only
// costs one label-set lookup on that task's next append.
const maxCachedTasks = 1 << 16

// SamplesConfig configures OpenSamples.
type SamplesConfig struct {
	Dir       string        // TSDB directory; created if missing
	Retention time.Duration // how long persisted blocks are kept; 0 = DefaultRetention
	// OutOfOrderWindow is how far behind the newest sample of the whole
	// store an append may reach, for example a task's curve appended in one
	// batch when it ends. 0 = DefaultOutOfOrderWindow; negative = only the
	// TSDB's in-order window (about an hour behind the newest sample).
	OutOfOrderWindow time.Duration
	Logger           *slog.Logger          // nil = discard
	Registerer       prometheus.Registerer // nil = no metrics registered
}

// validate fills defaults and rejects bad values.
func (c *SamplesConfig) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("samples dir is empty: %w", ErrInvalid)
	}
	switch {
	case c.Retention == 0:
		c.Retention = DefaultRetention
	case c.Retention < 0:
		return fmt.Errorf("retention %v is negative: %w", c.Retention, ErrInvalid)
	case c.Retention < time.Millisecond:
		return fmt.Errorf("retention %v is below the TSDB's 1 ms resolution: %w", c.Retention, ErrInvalid)
	}
	switch {
	case c.OutOfOrderWindow == 0:
		c.OutOfOrderWindow = DefaultOutOfOrderWindow
	case c.OutOfOrderWindow < 0:
		c.OutOfOrderWindow = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Samples is the time-series store of task samples, an embedded Prometheus
// TSDB. It is safe for concurrent use.
type Samples struct {
	db      *tsdb.DB
	log     *slog.Logger
	metrics *samplesMetrics

	// closeMu is held for reading by every operation and for writing by
	// Close, so Close waits for calls in flight.
	closeMu sync.RWMutex
	closed  bool // guarded by closeMu

	refsMu sync.RWMutex
	refs   map[refKey]*taskRefs // guarded by refsMu; the entries are immutable but for their atomic refs

	// createMu serialises appends that create series. Why: the TSDB head
	// gives series ids in creation order but adds them to its in-memory
	// postings after, and when two appenders race it "repairs" the order
	// by swapping elements of a postings list that a concurrent query may
	// be reading (prometheus/prometheus#15317, open; the copying fix was
	// reverted for its allocations). Created one at a time, series reach
	// the postings in id order, no repair happens, and queries need no
	// lock. Appends to existing series — all but a task's first — do not
	// take it.
	createMu sync.Mutex

	nodeOnce sync.Once
	node     *nodeRefs // the node's series (see AppendNode), made once
}

// refKey identifies the series set of one task.
type refKey struct{ task, sig string }

// taskRefs caches the label sets and head series references of one task's
// columns. A reference can go stale when the head drops the series after
// compaction; the TSDB then falls back to the label set (which is why it is
// always passed) and returns the new reference, which replaces the old one.
type taskRefs struct {
	lsets [numColumns]labels.Labels
	refs  [numColumns]atomic.Uint64
}

// OpenSamples opens (creating if needed) the TSDB in cfg.Dir. It fails with
// ErrLocked if another DB holds the directory.
func OpenSamples(cfg SamplesConfig) (*Samples, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create samples dir: %w", err)
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	opts.MinBlockDuration = tsdb.DefaultBlockDuration
	// As Prometheus does: compacted blocks grow up to a tenth of the
	// retention (at most 31 days), so retention deletes in small steps.
	maxBlock := min(cfg.Retention/10, 31*24*time.Hour).Milliseconds()
	opts.MaxBlockDuration = max(maxBlock, opts.MinBlockDuration)
	opts.OutOfOrderTimeWindow = cfg.OutOfOrderWindow.Milliseconds()
	// The head's series map is split into StripeSize locked stripes; the
	// default (16,384) is sized for a Prometheus server with millions of
	// series and costs ~6.5 MB of heap up front. One node's tasks write a
	// few series each, from a handful of goroutines: 1,024 stripes keep
	// lock contention nil at a sixteenth of the memory (the daemon's idle
	// RSS target is 50 MB).
	opts.StripeSize = 1024

	db, err := tsdb.Open(cfg.Dir, cfg.Logger, cfg.Registerer, opts, nil)
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("open tsdb %s: lock held by %s: %w: %w", cfg.Dir, lockHolder(filepath.Join(cfg.Dir, "lock")), ErrLocked, err)
		}
		return nil, fmt.Errorf("open tsdb %s: %w", cfg.Dir, err)
	}
	return &Samples{
		db:      db,
		log:     cfg.Logger,
		metrics: newSamplesMetrics(cfg.Registerer),
		refs:    make(map[refKey]*taskRefs),
	}, nil
}

// validName checks a task id or signature used as a label value.
func validName(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty: %w", what, ErrInvalid)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s %q is not valid UTF-8: %w", what, v, ErrInvalid)
	}
	return nil
}

// Append stores ss as samples of task taskID with signature sig, in one
// transaction: either all of them are stored or, on error, none. Samples of
// one task must come in time order unless they fall inside the out-of-order
// window. Dimensions missing from a sample's Avail are not stored.
//
// Errors wrap ErrInvalid (empty id or signature, zero time, non-finite
// value), ErrOutOfOrder, ErrDuplicate or ErrClosed.
func (s *Samples) Append(taskID, sig string, ss ...resource.Sample) error {
	if err := validName("task id", taskID); err != nil {
		return err
	}
	if err := validName("signature", sig); err != nil {
		return err
	}
	for i := range ss {
		if err := validSample(&ss[i]); err != nil {
			return fmt.Errorf("task %s sample %d: %w", taskID, i, err)
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

	e := s.taskRefs(taskID, sig)
	var refs [numColumns]storage.SeriesRef
	for c := range refs {
		refs[c] = storage.SeriesRef(e.refs[c].Load())
	}

	avail := ss[0].Avail
	for i := range ss {
		avail |= ss[i].Avail
	}
	for c := range refs {
		if refs[c] == 0 && avail.Has(columns[c].dim) {
			s.createMu.Lock() // a series will be created (see createMu)
			defer s.createMu.Unlock()
			break
		}
	}

	app := s.db.AppenderV2(context.Background())
	n := 0
	for i := range ss {
		smp := &ss[i]
		t := smp.Time.UnixMilli()
		for c := range numColumns {
			if !smp.Avail.Has(columns[c].dim) {
				continue
			}
			ref, err := app.Append(refs[c], e.lsets[c], 0, t, c.quantize(c.get(smp)), nil, nil, storage.AOptions{})
			if err != nil {
				s.metrics.failed.Inc()
				err = classifyAppendErr(err)
				if rerr := app.Rollback(); rerr != nil {
					err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
				}
				return fmt.Errorf("append task %s sample %d (%s at %s): %w",
					taskID, i, columns[c].name, smp.Time.UTC().Format(time.RFC3339Nano), err)
			}
			refs[c] = ref
			n++
		}
	}
	if err := app.Commit(); err != nil {
		s.metrics.failed.Inc()
		return fmt.Errorf("commit samples of task %s: %w", taskID, classifyAppendErr(err))
	}
	for c := range refs {
		if refs[c] != 0 {
			e.refs[c].Store(uint64(refs[c]))
		}
	}
	s.metrics.appended.Add(float64(n))
	return nil
}

// validSample rejects what the TSDB would store wrongly or not at all.
func validSample(smp *resource.Sample) error {
	if smp.Time.IsZero() {
		return fmt.Errorf("zero time: %w", ErrInvalid)
	}
	for c := range numColumns {
		if !smp.Avail.Has(columns[c].dim) {
			continue
		}
		v := c.quantize(c.get(smp))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s value %v is not finite: %w", columns[c].name, c.get(smp), ErrInvalid)
		}
	}
	return nil
}

// classifyAppendErr adds this package's sentinel to a TSDB append error,
// keeping the original in the chain.
func classifyAppendErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample),
		errors.Is(err, storage.ErrOutOfBounds),
		errors.Is(err, storage.ErrTooOldSample):
		return fmt.Errorf("%w: %w", ErrOutOfOrder, err)
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return fmt.Errorf("%w: %w", ErrDuplicate, err)
	}
	return err
}

// taskRefs returns the cache entry of (task, sig), creating it if needed.
func (s *Samples) taskRefs(taskID, sig string) *taskRefs {
	k := refKey{taskID, sig}
	s.refsMu.RLock()
	e := s.refs[k]
	s.refsMu.RUnlock()
	if e != nil {
		return e
	}

	e = &taskRefs{}
	for c := range numColumns {
		e.lsets[c] = labels.FromStrings(labelDim, columns[c].name, labelSig, sig, labelTask, taskID)
	}
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	if old := s.refs[k]; old != nil {
		return old
	}
	if len(s.refs) >= maxCachedTasks {
		for k := range s.refs { // evict an arbitrary entry
			delete(s.refs, k)
			break
		}
	}
	s.refs[k] = e
	return e
}

// Forget drops the cached series references of a task, typically when it
// has ended. Its samples stay stored. Appending to it again still works.
func (s *Samples) Forget(taskID string) {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	for k := range s.refs {
		if k.task == taskID {
			delete(s.refs, k)
		}
	}
}

// point is one stored value of one column.
type point struct {
	t int64
	v float64
}

// Curve returns every stored sample of a task in time order. A sample's
// Avail holds the dimensions that had at least one series value at that
// millisecond; the fields of the others are zero and meaningless. A task
// without samples gives an empty curve and no error.
func (s *Samples) Curve(taskID string) ([]resource.Sample, error) {
	if err := validName("task id", taskID); err != nil {
		return nil, err
	}
	runs, err := s.query(labels.MustNewMatcher(labels.MatchEqual, labelTask, taskID))
	if err != nil {
		return nil, fmt.Errorf("curve of task %s: %w", taskID, err)
	}
	return mergeColumns(runs[taskID]), nil
}

// Runs returns the curves of every task with signature sig, by task id.
func (s *Samples) Runs(sig string) (map[string][]resource.Sample, error) {
	if err := validName("signature", sig); err != nil {
		return nil, err
	}
	runs, err := s.query(labels.MustNewMatcher(labels.MatchEqual, labelSig, sig))
	if err != nil {
		return nil, fmt.Errorf("runs of signature %s: %w", sig, err)
	}
	out := make(map[string][]resource.Sample, len(runs))
	for id, cols := range runs {
		out[id] = mergeColumns(cols)
	}
	return out, nil
}

// taskColumns holds the points of one task by column. A column read from
// more than one series (the task was appended under two signatures, or
// its CPU is in both a legacy percent series and a cores series) is
// marked unsorted.
type taskColumns struct {
	pts      [numColumns][]point
	unsorted [numColumns]bool
	seen     [numColumns]bool
}

// query reads all series matching m, grouped by task.
func (s *Samples) query(m *labels.Matcher) (map[string]*taskColumns, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	q, err := s.db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("querier: %w", err)
	}
	defer q.Close()

	out := make(map[string]*taskColumns)
	set := q.Select(context.Background(), false, nil, m)
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		lset := series.Labels()
		c, pct, ok := columnByName(lset.Get(labelDim))
		if !ok {
			continue // not one of ours
		}
		id := lset.Get(labelTask)
		tc := out[id]
		if tc == nil {
			tc = &taskColumns{}
			out[id] = tc
		}
		if tc.seen[c] {
			tc.unsorted[c] = true
		}
		tc.seen[c] = true
		it = series.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			if value.IsStaleNaN(v) {
				continue
			}
			if pct {
				v = resource.CoresOfPct(v) // a series from before CPU was in cores
			}
			tc.pts[c] = append(tc.pts[c], point{t, v})
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("read series %s: %w", lset, err)
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	if ws := set.Warnings(); len(ws) > 0 {
		s.log.Warn("tsdb query warnings", "matcher", m.String(), "warnings", ws.AsErrors())
	}
	return out, nil
}

// mergeColumns joins a task's columns into samples, one per distinct
// millisecond, in time order.
func mergeColumns(tc *taskColumns) []resource.Sample {
	if tc == nil {
		return []resource.Sample{}
	}
	total := 0
	for c := range numColumns {
		if tc.unsorted[c] {
			slices.SortStableFunc(tc.pts[c], func(a, b point) int { return cmp.Compare(a.t, b.t) })
		}
		total = max(total, len(tc.pts[c]))
	}
	out := make([]resource.Sample, 0, total)
	var pos [numColumns]int
	for {
		// The next time is the smallest head among the columns.
		next, any := int64(math.MaxInt64), false
		for c := range numColumns {
			if pos[c] < len(tc.pts[c]) && tc.pts[c][pos[c]].t <= next {
				next, any = tc.pts[c][pos[c]].t, true
			}
		}
		if !any {
			return out
		}
		smp := resource.Sample{Time: time.UnixMilli(next).UTC()}
		for c := range numColumns {
			// A loop, not an if: one column read from two series may
			// repeat a millisecond; the first value wins.
			first := true
			for pos[c] < len(tc.pts[c]) && tc.pts[c][pos[c]].t == next {
				if first {
					c.set(&smp, tc.pts[c][pos[c]].v)
					first = false
				}
				pos[c]++
			}
		}
		out = append(out, smp)
	}
}

// Compact runs the TSDB's compaction now rather than at its next tick:
// head ranges old enough are persisted as blocks, blocks are merged, and
// blocks beyond the retention are deleted.
func (s *Samples) Compact() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.db.Compact(context.Background()); err != nil {
		return fmt.Errorf("compact tsdb: %w", err)
	}
	return nil
}

// Close flushes and closes the TSDB and stops its goroutines. It waits for
// calls in flight and is idempotent.
func (s *Samples) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close tsdb: %w", err)
	}
	return nil
}

// dir returns the TSDB directory.
func (s *Samples) dir() string { return s.db.Dir() }
