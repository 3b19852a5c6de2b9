package daemon

import (
	"fmt"
	"sort"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// History reads the predictor's history from a state directory's store:
// the newest limit succeeded runs (0: all), at most perSig per signature
// (0: no bound), oldest first, each with its samples and the node's load
// at each sample (from the node series, where the daemon recorded them).
// The predict policy loads it at start; `prescient eval --state-dir`
// replays it.
func History(st *store.Store, limit, perSig int) ([]predict.Run, error) {
	recs, err := st.Tasks.List(store.Filter{State: task.Succeeded, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	per := map[string]int{}
	var keep []*task.Record
	for _, r := range recs { // newest first
		if r.StartedAt == nil || (perSig > 0 && per[r.Signature] >= perSig) {
			continue
		}
		per[r.Signature]++
		keep = append(keep, r)
	}
	ids := make([]string, len(keep))
	for i, r := range keep {
		ids[i] = r.ID
	}
	aux, err := st.Tasks.Aux(auxTable, ids...)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	out := make([]predict.Run, 0, len(keep))
	for i := len(keep) - 1; i >= 0; i-- {
		r := keep[i]
		m, _ := decodeMeta(aux[i])
		ss, err := st.Samples.Curve(r.ID)
		if err != nil || len(ss) == 0 {
			continue
		}
		run := predict.Run{
			Features: predict.Features{Signature: r.Signature, Code: m.Code, InputSize: float64(r.InputBytes)},
			Start:    *r.StartedAt, Samples: ss,
		}
		// The node's load from a little before the run's start (the tick
		// it was started on) to its last sample.
		if ns, err := st.Samples.Node(ss[0].Time.Add(-10*time.Second), ss[len(ss)-1].Time); err == nil && len(ns) > 0 {
			at := make([]time.Time, len(ns))
			ld := make([]predict.Load, len(ns))
			for k, n := range ns {
				at[k], ld[k] = n.Time, loadOf(n)
			}
			ts := make([]time.Time, len(ss))
			for k, s := range ss {
				ts[k] = s.Time
			}
			run.Load = loadsAt(at, ld, ts)
		}
		out = append(out, run)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}
