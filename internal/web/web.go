package web

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
)

//go:embed assets
var assets embed.FS

// Source is the daemon as the dashboard sees it. Every method but Node
// answers as the request's caller (the daemon reads who it is from the
// request's context) and returns *api.Error for what the API would
// refuse.
type Source interface {
	// Node is the node's status (GET /v1/node).
	Node() api.NodeStatus
	// Live returns the caller's queued and running tasks with what the
	// scheduler knows of them (reservations, allocations, use now):
	// every running task, and at most limit queued ones, oldest first.
	Live(r *http.Request, limit int) ([]api.Task, error)
	// Tasks lists the caller's tasks, newest first (GET /v1/tasks).
	Tasks(r *http.Request, o api.ListOptions) ([]api.Task, error)
	// Task returns one of the caller's tasks (GET /v1/tasks/{id}).
	Task(r *http.Request, id string) (*api.Task, error)
	// Samples returns the task's measured samples, oldest first.
	Samples(r *http.Request, id string) ([]resource.Sample, error)
}

// Defaults of Options.
const (
	DefaultHistoryStep = 5 * time.Second
	DefaultHistoryLen  = 720 // one hour at the default step
	DefaultLiveLimit   = 500
	DefaultSigTasks    = 2000
)

// Options tune a Dashboard; zero fields take the defaults above.
type Options struct {
	HistoryStep time.Duration // how often the node's history is recorded
	HistoryLen  int           // points kept
	Logger      *slog.Logger  // nil: discard
}

// Dashboard serves the pages and their data. Make one with New, register
// it with Register and run its history recorder with Run.
type Dashboard struct {
	src  Source
	opts Options
	log  *slog.Logger
	hist *history
	ui   http.Handler
}

// New returns a dashboard over src.
func New(src Source, o Options) *Dashboard {
	if o.HistoryStep <= 0 {
		o.HistoryStep = DefaultHistoryStep
	}
	if o.HistoryLen <= 0 {
		o.HistoryLen = DefaultHistoryLen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(assets, "assets") // cannot fail: the directory is embedded
	return &Dashboard{src: src, opts: o, log: o.Logger, hist: newHistory(o.HistoryLen),
		ui: http.StripPrefix("/dashboard/", http.FileServerFS(sub))}
}

// Register adds the dashboard's routes to mux: the pages under
// /dashboard/ and their data under /v1/dashboard/.
func (d *Dashboard) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /dashboard/", d.serveUI)
	mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /v1/dashboard/node", d.handleNode)
	mux.HandleFunc("GET /v1/dashboard/live", d.handleLive)
	mux.HandleFunc("GET /v1/dashboard/task/{id}", d.handleTask)
	mux.HandleFunc("GET /v1/dashboard/signatures", d.handleSignatures)
}

// Run records the node's history every HistoryStep until stop is closed.
func (d *Dashboard) Run(stop <-chan struct{}) {
	d.hist.record(time.Now(), d.src.Node())
	tick := time.NewTicker(d.opts.HistoryStep)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			d.hist.record(now, d.src.Node())
		}
	}
}

func (d *Dashboard) serveUI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The pages load only their own scripts and styles and talk only to
	// this origin; they may not be framed.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	d.ui.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	_ = json.NewEncoder(w).Encode(ae)
}

// nums is a column of numbers; NaN goes out as null.
type nums []float64

func (c nums) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(c)*8)
	b = append(b, '[')
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, v, 'g', 6, 64)
	}
	return append(b, ']'), nil
}

// times is a column of Unix times in seconds, sent to the millisecond.
type times []float64

func (c times) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(c)*15)
	b = append(b, '[')
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v, 'f', 3, 64)
	}
	return append(b, ']'), nil
}

// NodeReply is the body of GET /v1/dashboard/node: the node now and its
// recent history, by column (T in Unix seconds; per dimension in Dims
// order).
type NodeReply struct {
	Node    api.NodeStatus `json:"node"`
	StepS   float64        `json:"step_s"`
	T       times          `json:"t"`
	Dims    []string       `json:"dims"`
	Cap     []nums         `json:"capacity"`
	Commit  []nums         `json:"committed"`
	Soft    []nums         `json:"soft_reserved"`
	Used    []nums         `json:"used"`
	MachCPU nums           `json:"machine_cpu_cores"`
	MachMem nums           `json:"machine_memory_mb"`
	Load1   nums           `json:"loadavg_1m"`
}

func (d *Dashboard) handleNode(w http.ResponseWriter, r *http.Request) {
	pts := d.hist.snapshot()
	rep := NodeReply{Node: d.src.Node(), StepS: d.opts.HistoryStep.Seconds(), Dims: Dims,
		T: make(times, len(pts)), MachCPU: make(nums, len(pts)), MachMem: make(nums, len(pts)), Load1: make(nums, len(pts))}
	cols := func() []nums {
		out := make([]nums, len(Dims))
		for i := range out {
			out[i] = make(nums, len(pts))
		}
		return out
	}
	rep.Cap, rep.Commit, rep.Soft, rep.Used = cols(), cols(), cols(), cols()
	for i, p := range pts {
		rep.T[i] = float64(p.t.UnixMilli()) / 1000
		for k := range Dims {
			rep.Cap[k][i], rep.Commit[k][i], rep.Soft[k][i], rep.Used[k][i] = p.capacity[k], p.committed[k], p.soft[k], p.used[k]
		}
		rep.MachCPU[i], rep.MachMem[i], rep.Load1[i] = p.machineCPU, p.machineMemory, p.loadavg1m
	}
	writeJSON(w, rep)
}

// LiveReply is the body of GET /v1/dashboard/live.
type LiveReply struct {
	Now   time.Time  `json:"now"`
	Tasks []api.Task `json:"tasks"` // running first (by start), then queued (by planned start)
	// Horizon is how far the calendar is planned (the longest predicted
	// end among these tasks), for the timeline.
	HorizonS float64 `json:"horizon_s"`
}

func (d *Dashboard) handleLive(w http.ResponseWriter, r *http.Request) {
	limit := DefaultLiveLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeErr(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "limit must be a non-negative integer"})
			return
		}
		limit = n
	}
	ts, err := d.src.Live(r, limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	now := time.Now()
	sort.SliceStable(ts, func(i, j int) bool { return planStart(ts[i], now).Before(planStart(ts[j], now)) })
	rep := LiveReply{Now: now, Tasks: ts}
	for _, t := range ts {
		if t.StartedAt == nil && (t.Reservation == nil || t.Reservation.Start == nil) {
			continue // not placed in the calendar
		}
		if end := planStart(t, now).Add(time.Duration(PredictedDuration(t) * float64(time.Second))); end.After(now) {
			rep.HorizonS = max(rep.HorizonS, end.Sub(now).Seconds())
		}
	}
	if rep.Tasks == nil {
		rep.Tasks = []api.Task{}
	}
	writeJSON(w, rep)
}

// planStart is when a task started or is planned to; a queued task
// without a reservation is put at the end (now + a day) in the order.
func planStart(t api.Task, now time.Time) time.Time {
	switch {
	case t.StartedAt != nil:
		return *t.StartedAt
	case t.Reservation != nil && t.Reservation.Start != nil:
		return *t.Reservation.Start
	}
	return now.Add(24 * time.Hour)
}

// PredictedDuration is the length of a task's predicted curve in seconds
// (0: no prediction).
func PredictedDuration(t api.Task) float64 {
	if t.Prediction == nil {
		return 0
	}
	var s float64
	for _, st := range t.Prediction.Steps {
		s += st.DurationS
	}
	return s
}

// Curve is a task's samples by column: T in Unix seconds, CPU in cores
// (as limits and predictions are), memory in MB, IO in ops/s, network
// in+out in Mbps; null where a dimension was unavailable.
type Curve struct {
	T      times `json:"t"`
	CPU    nums  `json:"cpu"`
	Memory nums  `json:"memory"`
	IOPS   nums  `json:"iops"`
	Net    nums  `json:"net"`
}

// TaskReply is the body of GET /v1/dashboard/task/{id}: everything the
// task page draws, in one reply.
type TaskReply struct {
	Task  *api.Task `json:"task"`
	Curve Curve     `json:"curve"`
}

func (d *Dashboard) handleTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := d.src.Task(r, id)
	if err != nil {
		writeErr(w, err)
		return
	}
	ss, err := d.src.Samples(r, id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, TaskReply{Task: t, Curve: curveOf(ss)})
}

func curveOf(ss []resource.Sample) Curve {
	n := len(ss)
	c := Curve{T: make(times, n), CPU: make(nums, n), Memory: make(nums, n), IOPS: make(nums, n), Net: make(nums, n)}
	for i, s := range ss {
		c.T[i] = float64(s.Time.UnixMilli()) / 1000
		c.CPU[i], c.Memory[i], c.IOPS[i], c.Net[i] = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if s.Avail.Has(resource.CPU) {
			c.CPU[i] = s.CPU
		}
		if s.Avail.Has(resource.Memory) {
			c.Memory[i] = s.MemoryMB
		}
		if s.Avail.Has(resource.IO) {
			c.IOPS[i] = s.IOPS
		}
		if s.Avail.Has(resource.Net) {
			c.Net[i] = s.NetInMbps + s.NetOutMbps
		}
	}
	return c
}
