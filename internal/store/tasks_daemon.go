package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/prescient-sched/prescient/internal/task"
)

// This file adds, for the daemon, a side table of opaque values kept next
// to task records: the daemon's own bookkeeping (the submitting user, the
// attempt count) that task.Record does not carry. Values live in a bucket
// of their own, "aux:<name>", written in the same fsynced transaction as
// the records they belong to, so a record and its side value are never seen
// apart. Older binaries ignore the bucket, so the schema version is
// unchanged.

func auxBucket(name string) []byte { return []byte("aux:" + name) }

// PutBatchAux is PutBatch that also stores aux[i], when non-nil, under
// rs[i].ID in the side table name, in the same transaction (one fsync).
// aux may be shorter than rs; missing entries leave the side value as is.
func (t *Tasks) PutBatchAux(name string, rs []*task.Record, aux [][]byte) error {
	if len(rs) == 0 {
		return nil
	}
	if name == "" {
		return fmt.Errorf("put aux: empty table name: %w", ErrInvalid)
	}
	if len(aux) > len(rs) {
		return fmt.Errorf("put aux: %d values for %d records: %w", len(aux), len(rs), ErrInvalid)
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
		b, err := tx.CreateBucketIfNotExists(auxBucket(name))
		if err != nil {
			return fmt.Errorf("create aux table %s: %w", name, err)
		}
		for i, r := range rs {
			if err := t.put(tx, r, vals[i]); err != nil {
				return fmt.Errorf("put %s: %w", r.ID, err)
			}
			if i < len(aux) && aux[i] != nil {
				if err := b.Put([]byte(r.ID), aux[i]); err != nil {
					return fmt.Errorf("put aux %s: %w", r.ID, err)
				}
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

// Aux returns the side values of ids in table name, in one read
// transaction; a missing value is nil. The slices are copies.
func (t *Tasks) Aux(name string, ids ...string) ([][]byte, error) {
	out := make([][]byte, len(ids))
	err := t.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(auxBucket(name))
		if b == nil {
			return nil
		}
		for i, id := range ids {
			if v := b.Get([]byte(id)); v != nil {
				out[i] = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, t.wrapErr(err)
	}
	return out, nil
}
