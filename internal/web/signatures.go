package web

import (
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// recentRuns is how many of a signature's newest succeeded runs its error
// and slack are averaged over.
const recentRuns = 20

// Signature is one row of GET /v1/dashboard/signatures.
type Signature struct {
	Signature string    `json:"signature"`
	Argv      []string  `json:"argv"` // of its newest run
	Runs      int       `json:"runs"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
	Cancelled int       `json:"cancelled"`
	Active    int       `json:"active"` // queued or running
	LastAt    time.Time `json:"last_at"`
	// Model served its newest prediction ("requests": none, the declared
	// requests sized it).
	Model     string  `json:"model"`
	MeanDurS  float64 `json:"mean_duration_s"`
	Scored    int     `json:"scored"` // succeeded runs behind the figures below
	ErrCPU    *ratio  `json:"error_cpu"`
	ErrMemory *ratio  `json:"error_memory"`
	// Slack is 1 − mean use / time-weighted mean hard limit: the share of
	// what was held that went unused.
	SlackCPU    *ratio `json:"slack_cpu"`
	SlackMemory *ratio `json:"slack_memory"`
}

// ratio is a fraction sent with three decimals.
type ratio float64

func (r ratio) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, math.Round(float64(r)*1000)/1000, 'f', -1, 64), nil
}

func (d *Dashboard) handleSignatures(w http.ResponseWriter, r *http.Request) {
	limit := DefaultSigTasks
	if s := r.URL.Query().Get("tasks"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeErr(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "tasks must be a positive integer"})
			return
		}
		limit = n
	}
	ts, err := d.src.Tasks(r, api.ListOptions{Limit: limit})
	if err != nil {
		writeErr(w, err)
		return
	}
	sigs := Signatures(ts)
	if sigs == nil {
		sigs = []Signature{}
	}
	writeJSON(w, sigs)
}

// Signatures summarises tasks (newest first) by signature, the most
// recently run first.
func Signatures(ts []api.Task) []Signature {
	by := map[string]*Signature{}
	type acc struct{ errC, errM, slkC, slkM, dur []float64 }
	accs := map[string]*acc{}
	var order []*Signature
	for _, t := range ts {
		s := by[t.Signature]
		if s == nil {
			s = &Signature{Signature: t.Signature, Argv: t.Spec.Argv, LastAt: t.SubmittedAt, Model: "requests"}
			if t.Prediction != nil && t.Prediction.Model != "" {
				s.Model = t.Prediction.Model
			}
			by[t.Signature], accs[t.Signature] = s, &acc{}
			order = append(order, s)
		}
		a := accs[t.Signature]
		s.Runs++
		switch t.State {
		case api.StateSucceeded:
			s.Succeeded++
		case api.StateFailed:
			s.Failed++
		case api.StateCancelled:
			s.Cancelled++
		default:
			s.Active++
		}
		if t.State != api.StateSucceeded || t.StartedAt == nil || t.FinishedAt == nil || len(a.dur) >= recentRuns {
			continue
		}
		a.dur = append(a.dur, t.DurationS)
		s.Scored++
		p50 := predictedPeak(t)
		if t.Peak.CPUPct != nil && *t.Peak.CPUPct > 0 && p50.CPUCores > 0 {
			peak := *t.Peak.CPUPct / 100
			a.errC = append(a.errC, math.Abs(p50.CPUCores-peak)/peak)
		}
		if t.Peak.MemoryMB != nil && *t.Peak.MemoryMB > 0 && p50.MemoryMB > 0 {
			a.errM = append(a.errM, math.Abs(p50.MemoryMB-*t.Peak.MemoryMB) / *t.Peak.MemoryMB)
		}
		lc, lm := heldLimits(t)
		if t.Mean.CPUPct != nil && lc > 0 {
			a.slkC = append(a.slkC, clamp01(1-*t.Mean.CPUPct/100/lc))
		}
		if t.Mean.MemoryMB != nil && lm > 0 {
			a.slkM = append(a.slkM, clamp01(1-*t.Mean.MemoryMB/lm))
		}
	}
	out := make([]Signature, 0, len(order))
	for _, s := range order {
		a := accs[s.Signature]
		s.MeanDurS = math.Round(mean(a.dur)*1000) / 1000
		s.ErrCPU, s.ErrMemory, s.SlackCPU, s.SlackMemory = meanRatio(a.errC), meanRatio(a.errM), meanRatio(a.slkC), meanRatio(a.slkM)
		out = append(out, *s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastAt.After(out[j].LastAt) })
	return out
}

// predictedPeak is the peak of a task's predicted median curve, or its
// requests when it had no prediction.
func predictedPeak(t api.Task) api.Amounts {
	if t.Prediction == nil || len(t.Prediction.Steps) == 0 {
		return api.Amounts{CPUCores: t.Requests.CPUCores, MemoryMB: t.Requests.MemoryMB}
	}
	var p api.Amounts
	for _, s := range t.Prediction.Steps {
		p.CPUCores, p.MemoryMB = max(p.CPUCores, s.P50.CPUCores), max(p.MemoryMB, s.P50.MemoryMB)
	}
	return p
}

// heldLimits are the time-weighted mean hard limits (cores, MB) a task
// held over its run, by its allocations; without allocations, its limits.
func heldLimits(t api.Task) (cpu, mem float64) {
	if len(t.Allocations) == 0 || t.StartedAt == nil || t.FinishedAt == nil {
		return t.Limits.CPUCores, t.Limits.MemoryMB
	}
	start, end := *t.StartedAt, *t.FinishedAt
	total := end.Sub(start).Seconds()
	if total <= 0 {
		a := t.Allocations[0].Limits
		return a.CPUCores, a.MemoryMB
	}
	var cur api.Limits
	at := start
	var sc, sm float64
	for _, a := range t.Allocations {
		if a.Time.After(end) {
			break
		}
		if a.Time.After(at) {
			dt := a.Time.Sub(at).Seconds()
			sc, sm = sc+cur.CPUCores*dt, sm+cur.MemoryMB*dt
			at = a.Time
		}
		if a.Reason != "release" {
			cur = a.Limits
		}
	}
	if end.After(at) {
		dt := end.Sub(at).Seconds()
		sc, sm = sc+cur.CPUCores*dt, sm+cur.MemoryMB*dt
	}
	return sc / total, sm / total
}

func clamp01(v float64) float64 { return min(max(v, 0), 1) }

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func meanRatio(v []float64) *ratio {
	if len(v) == 0 {
		return nil
	}
	r := ratio(mean(v))
	return &r
}
