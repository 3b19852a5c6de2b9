package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/task"
)

// auxTable is the store side table holding each task's meta.
const auxTable = "daemon"

// meta is the daemon's durable bookkeeping of a task, kept beside its
// record (store.Tasks.PutBatchAux) in the same transaction.
type meta struct {
	UID      uint32      `json:"uid"`
	GID      uint32      `json:"gid"`
	Groups   []uint32    `json:"groups,omitempty"`
	SetCred  bool        `json:"set_cred"`
	Attempt  int         `json:"attempt"` // runs lost (no exit status) so far
	Requests task.Limits `json:"requests"`
	Code     string      `json:"code,omitempty"` // the signature's code hash, for the predictor
	Priority int         `json:"priority,omitempty"`
	// What the policy knew of the task when it ended.
	Retries     int              `json:"retries,omitempty"`
	Prediction  *api.Prediction  `json:"prediction,omitempty"`
	Allocations []api.Allocation `json:"allocations,omitempty"`
	// Logs is what of the task's output was deleted: by rotation (from
	// exit.json, at the end) and by retention (pruneLogs).
	Logs *api.LogsDropped `json:"logs,omitempty"`
}

func encodeMeta(m meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode task meta: %w", err)
	}
	return b, nil
}

func decodeMeta(b []byte) (meta, bool) {
	var m meta
	if b == nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	return m, true
}

// cloneRec copies a record for the committer and for readers, so that
// later changes to the job's record do not race with them.
func cloneRec(r *task.Record) *task.Record {
	c := *r
	return &c
}

// writeReq is records (and optional metas) to commit in one batch.
type writeReq struct {
	recs []*task.Record
	aux  [][]byte
	done chan error
}

// commit stores recs (with their metas, when given) durably: it returns
// after the fsync of the batch they were part of.
func (d *Daemon) commit(recs []*task.Record, metas []meta) error {
	var aux [][]byte
	for _, m := range metas {
		b, err := encodeMeta(m)
		if err != nil {
			return err
		}
		aux = append(aux, b)
	}
	w := &writeReq{recs: recs, aux: aux, done: make(chan error, 1)}
	select {
	case d.writes <- w:
	case <-d.stop:
		return errStopping
	}
	select {
	case err := <-w.done:
		return err
	case <-d.commitDone:
		select {
		case err := <-w.done:
			return err
		default:
			return errStopping
		}
	}
}

// commitJob stores j's record and meta as they are now.
func (d *Daemon) commitJob(j *job) error {
	d.mu.Lock()
	rec, m := cloneRec(j.rec), j.meta
	d.mu.Unlock()
	return d.commit([]*task.Record{rec}, []meta{m})
}

// committer batches concurrent writes into one bbolt transaction: while
// one fsync runs, the next requests queue up and go together.
func (d *Daemon) committer() {
	defer close(d.commitDone)
	const maxBatch = 4096
	for {
		var first *writeReq
		select {
		case first = <-d.writes:
		case <-d.stop:
			// Commit what was handed over before the stop.
			for {
				select {
				case w := <-d.writes:
					w.done <- d.st.Tasks.PutBatchAux(auxTable, w.recs, w.aux)
				default:
					return
				}
			}
		}
		batch := []*writeReq{first}
		n := len(first.recs)
	drain:
		for n < maxBatch {
			select {
			case w := <-d.writes:
				batch = append(batch, w)
				n += len(w.recs)
			default:
				break drain
			}
		}
		recs := make([]*task.Record, 0, n)
		aux := make([][]byte, 0, n)
		for _, w := range batch {
			recs = append(recs, w.recs...)
			for i := range w.recs {
				var a []byte
				if i < len(w.aux) {
					a = w.aux[i]
				}
				aux = append(aux, a)
			}
		}
		start := time.Now()
		err := d.st.Tasks.PutBatchAux(auxTable, recs, aux)
		d.m.commitSecs.Observe(time.Since(start).Seconds())
		d.m.batchSize.Observe(float64(len(recs)))
		if err != nil && len(batch) > 1 {
			// One bad record must not fail the others: retry one by one.
			for _, w := range batch {
				w.done <- d.st.Tasks.PutBatchAux(auxTable, w.recs, w.aux)
			}
			continue
		}
		for _, w := range batch {
			w.done <- err
		}
	}
}

// noSpace reports whether err says the state directory's file system is
// full (or the daemon's quota on it is).
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
