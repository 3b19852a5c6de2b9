package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/prescient-sched/prescient/internal/task"
)

// schemaVersion is the layout of tasks.db: the buckets below and recordV1.
const schemaVersion = 1

// DefaultLockTimeout is how long opening waits for another holder of the
// state directory to let go.
const DefaultLockTimeout = time.Second

// The buckets of tasks.db. Index keys end in a sortable submission time and
// the id, so a reverse cursor walks newest first; the index values are
// empty.
//
//	meta      "schema" → uvarint schemaVersion
//	tasks     id → recordV1 envelope
//	by_time   when ‖ id
//	by_sig    signature ‖ 0x00 ‖ when ‖ id
//	by_state  state ‖ 0x00 ‖ when ‖ id
//
// when is 12 bytes: the Unix seconds of SubmittedAt with the sign bit
// flipped (so negative times sort first), then its nanoseconds, big-endian.
var (
	bucketMeta    = []byte("meta")
	bucketTasks   = []byte("tasks")
	bucketByTime  = []byte("by_time")
	bucketBySig   = []byte("by_sig")
	bucketByState = []byte("by_state")
	keySchema     = []byte("schema")
)

const whenLen = 12

// Tasks is the transactional store of task records, a bbolt file. It is
// safe for concurrent use; writes are serialised by bbolt.
type Tasks struct {
	db      *bolt.DB
	log     *slog.Logger
	metrics *tasksMetrics
}

// OpenTasks opens (creating if needed) the task store at path. If another
// process holds it, OpenTasks gives up after the lock timeout with an error
// wrapping ErrLocked that names the holder's pid where it can be found.
func OpenTasks(path string, opts ...Option) (*Tasks, error) {
	o := buildOptions(opts)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: lock held by %s for over %v: %w", path, lockHolder(path), o.lockTimeout, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close() // the init error is the one worth returning
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Tasks{db: db, log: o.logger, metrics: newTasksMetrics(o.registerer)}, nil
}

// initBuckets creates the buckets and checks the schema version.
func initBuckets(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
	}
	if v := meta.Get(keySchema); v != nil {
		got, n := binary.Uvarint(v)
		if n <= 0 {
			return fmt.Errorf("schema version %x unreadable: %w", v, ErrCorrupt)
		}
		if got != schemaVersion {
			return fmt.Errorf("tasks.db has schema %d, this binary reads %d: %w", got, schemaVersion, ErrSchema)
		}
	} else if err := meta.Put(keySchema, binary.AppendUvarint(nil, schemaVersion)); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	for _, name := range [][]byte{bucketTasks, bucketByTime, bucketBySig, bucketByState} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// appendWhen appends the 12-byte sortable form of t.
func appendWhen(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// indexKeys returns r's keys in by_time, by_sig and by_state.
func indexKeys(r *task.Record) (byTime, bySig, byState []byte) {
	suffix := appendWhen(nil, r.SubmittedAt)
	suffix = append(suffix, r.ID...)
	byTime = suffix
	bySig = append(append(append(make([]byte, 0, len(r.Signature)+1+len(suffix)), r.Signature...), 0), suffix...)
	byState = append(append(append(make([]byte, 0, len(r.State)+1+len(suffix)), r.State...), 0), suffix...)
	return byTime, bySig, byState
}

// idOfIndexKey returns the id at the end of an index key, whose prefix
// (empty for by_time) ends before byte start.
func idOfIndexKey(k []byte, start int) ([]byte, bool) {
	if len(k) < start+whenLen+1 {
		return nil, false
	}
	return k[start+whenLen:], true
}

// Put inserts r or replaces the record with its id, and updates the
// indexes in the same fsynced transaction. r is not retained.
func (t *Tasks) Put(r *task.Record) error {
	return t.PutBatch([]*task.Record{r})
}

// PutBatch puts every record in one transaction (one fsync): all or none.
// A later record with the id of an earlier one replaces it.
func (t *Tasks) PutBatch(rs []*task.Record) error {
	if len(rs) == 0 {
		return nil
	}
	vals := make([][]byte, len(rs))
	for i, r := range rs {
		if err := validRecord(r); err != nil {
			return err
		}
		v, err := encodeRecord(r)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	start := time.Now()
	err := t.db.Update(func(tx *bolt.Tx) error {
		for i, r := range rs {
			if err := t.put(tx, r, vals[i]); err != nil {
				return fmt.Errorf("put %s: %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return t.wrapErr(err)
	}
	t.metrics.commit.Observe(time.Since(start).Seconds())
	t.metrics.written.Add(float64(len(rs)))
	return nil
}

// put writes one record and moves its index entries inside tx.
func (t *Tasks) put(tx *bolt.Tx, r *task.Record, val []byte) error {
	tasks := tx.Bucket(bucketTasks)
	byTime, bySig, byState := tx.Bucket(bucketByTime), tx.Bucket(bucketBySig), tx.Bucket(bucketByState)
	id := []byte(r.ID)

	if old := tasks.Get(id); old != nil {
		if err := t.unindex(tx, id, old); err != nil {
			return err
		}
	}
	kt, ks, kst := indexKeys(r)
	if err := tasks.Put(id, val); err != nil {
		return err
	}
	if err := byTime.Put(kt, nil); err != nil {
		return err
	}
	if err := bySig.Put(ks, nil); err != nil {
		return err
	}
	return byState.Put(kst, nil)
}

// unindex deletes the index entries of the stored record id, whose value is
// old. If old cannot be decoded, its keys are unknown and the indexes are
// scanned for any entry of id instead: slow, but it keeps them consistent.
func (t *Tasks) unindex(tx *bolt.Tx, id, old []byte) error {
	prev, err := decodeRecord(old)
	if err == nil && prev.ID == string(id) {
		kt, ks, kst := indexKeys(prev)
		if err := tx.Bucket(bucketByTime).Delete(kt); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBySig).Delete(ks); err != nil {
			return err
		}
		return tx.Bucket(bucketByState).Delete(kst)
	}
	t.log.Warn("replacing an undecodable task record; scanning indexes for its entries", "task", string(id), "err", err)
	for _, name := range [][]byte{bucketByTime, bucketBySig, bucketByState} {
		if err := deleteIndexEntries(tx.Bucket(name), name, id); err != nil {
			return err
		}
	}
	return nil
}

// deleteIndexEntries deletes every key of index b that ends in id.
func deleteIndexEntries(b *bolt.Bucket, name, id []byte) error {
	var doomed [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		start := 0
		if !bytes.Equal(name, bucketByTime) {
			start = bytes.IndexByte(k, 0) + 1
			if start == 0 {
				continue
			}
		}
		if got, ok := idOfIndexKey(k, start); ok && bytes.Equal(got, id) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the record with this id, or an error wrapping ErrNotFound or
// ErrCorrupt.
func (t *Tasks) Get(id string) (*task.Record, error) {
	var r *task.Record
	err := t.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTasks).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("task %s: %w", id, ErrNotFound)
		}
		var err error
		if r, err = decodeRecord(v); err != nil {
			return fmt.Errorf("task %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, t.wrapErr(err)
	}
	return r, nil
}

// Filter selects records for List. Zero fields select everything.
type Filter struct {
	State     task.State // only records in this state
	Signature string     // only records with this signature
	Limit     int        // at most this many (newest first); 0 = all
}

// List returns the records matching f, newest SubmittedAt first (ties by
// id, descending). A record that cannot be decoded is logged and skipped,
// so one bad record does not hide the others; Get reports it.
func (t *Tasks) List(f Filter) ([]*task.Record, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, fmt.Errorf("list: unknown state %q: %w", f.State, ErrInvalid)
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("list: negative limit %d: %w", f.Limit, ErrInvalid)
	}
	// Walk the narrowest index that the filter names.
	index, prefix := bucketByTime, []byte(nil)
	switch {
	case f.Signature != "":
		index, prefix = bucketBySig, append([]byte(f.Signature), 0)
	case f.State != "":
		index, prefix = bucketByState, append([]byte(f.State), 0)
	}
	out := []*task.Record{}
	err := t.db.View(func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bucketTasks)
		c := tx.Bucket(index).Cursor()
		for k := seekLast(c, prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			id, ok := idOfIndexKey(k, len(prefix))
			if !ok {
				t.log.Warn("skipping malformed index key", "index", string(index), "key", fmt.Sprintf("%x", k))
				continue
			}
			v := tasks.Get(id)
			if v == nil {
				t.log.Warn("index entry without a record", "index", string(index), "task", string(id))
				continue
			}
			r, err := decodeRecord(v)
			if err != nil {
				t.log.Warn("skipping undecodable task record", "task", string(id), "err", err)
				continue
			}
			if f.State != "" && r.State != f.State {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) == f.Limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, t.wrapErr(err)
	}
	return out, nil
}

// seekLast positions c on the last key with the prefix (if any; the caller
// checks) and returns it. An empty prefix means the whole bucket.
func seekLast(c *bolt.Cursor, prefix []byte) []byte {
	if len(prefix) == 0 {
		k, _ := c.Last()
		return k
	}
	// Every key with the prefix sorts before the prefix with its last
	// byte incremented; the prefixes here end in 0x00, so that is 0x01.
	upper := bytes.Clone(prefix)
	upper[len(upper)-1]++
	if k, _ := c.Seek(upper); k == nil {
		k, _ = c.Last()
		return k
	}
	k, _ := c.Prev()
	return k
}

// BySignature returns up to limit records (0 = all) with signature sig,
// newest first.
func (t *Tasks) BySignature(sig string, limit int) ([]*task.Record, error) {
	if sig == "" {
		return nil, fmt.Errorf("by signature: empty signature: %w", ErrInvalid)
	}
	return t.List(Filter{Signature: sig, Limit: limit})
}

// wrapErr turns bbolt's closed-database error into ErrClosed.
func (t *Tasks) wrapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// Close closes the file and releases its lock. It waits for open
// transactions and is idempotent.
func (t *Tasks) Close() error {
	if err := t.db.Close(); err != nil {
		return fmt.Errorf("close tasks db: %w", err)
	}
	return nil
}
