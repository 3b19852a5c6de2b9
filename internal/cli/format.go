package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// limitsView is task.Limits with null for "unlimited".
type limitsView struct {
	CPUCores *float64 `json:"cpu_cores"`
	MemoryMB *float64 `json:"memory_mb"`
	IOPS     *float64 `json:"iops"`
	NetMbps  *float64 `json:"net_mbps"`
}

func limitsOf(l task.Limits) limitsView {
	p := func(v float64) *float64 {
		if v == 0 {
			return nil
		}
		return &v
	}
	return limitsView{p(l.CPUCores), p(l.MemoryMB), p(l.IOPS), p(l.NetMbps)}
}

// pointView is one sample in `show --json`; null = unavailable.
type pointView struct {
	T          float64  `json:"t"` // seconds since the task started
	CPUPct     *float64 `json:"cpu_pct"`
	MemoryMB   *float64 `json:"memory_mb"`
	IOPS       *float64 `json:"iops"`
	NetInMbps  *float64 `json:"net_in_mbps"`
	NetOutMbps *float64 `json:"net_out_mbps"`
}

// taskView is the JSON form of a run, shared by run --json, show --json and
// history --json.
type taskView struct {
	ID          string      `json:"id"`
	Signature   string      `json:"signature"`
	State       task.State  `json:"state"`
	ExitCode    *int        `json:"exit_code"`
	Signal      string      `json:"signal,omitempty"`
	OOMKilled   bool        `json:"oom_killed"`
	Error       string      `json:"error,omitempty"`
	ErrorCode   string      `json:"error_code,omitempty"`
	Argv        []string    `json:"argv"`
	Limits      limitsView  `json:"limits"`
	Peak        task.Stats  `json:"peak"`
	Mean        task.Stats  `json:"mean"`
	Samples     int         `json:"samples"`
	CPUSeconds  float64     `json:"cpu_seconds,omitempty"`
	DurationS   float64     `json:"duration_s"`
	SubmittedAt time.Time   `json:"submitted_at"`
	StartedAt   *time.Time  `json:"started_at"`
	FinishedAt  *time.Time  `json:"finished_at"`
	InputBytes  int64       `json:"input_bytes"`
	LogDir      string      `json:"log_dir,omitempty"`
	Curve       []pointView `json:"curve,omitempty"`
	// From the daemon's predictive scheduler (show --json).
	Priority    int              `json:"priority,omitempty"`
	Retries     int              `json:"retries,omitempty"`
	Prediction  *api.Prediction  `json:"prediction,omitempty"`
	Reservation *api.Reservation `json:"reservation,omitempty"`
	Allocations []api.Allocation `json:"allocations,omitempty"`
	// Contention (daemon tasks): see api.Task.
	CPUThrottledS       float64 `json:"cpu_throttled_s,omitempty"`
	Stretch             float64 `json:"stretch,omitempty"`
	PredictedCPUSeconds float64 `json:"predicted_cpu_seconds,omitempty"`
}

func viewOf(r *task.Record, curve []resource.Sample) taskView {
	v := taskView{
		ID: r.ID, Signature: r.Signature, State: r.State, ExitCode: r.ExitCode, Signal: r.Signal,
		OOMKilled: r.OOMKilled, Error: r.Error, ErrorCode: string(r.ErrorKind), Argv: r.Spec.Argv, Limits: limitsOf(r.Limits),
		Peak: r.Peak, Mean: r.Mean, Samples: r.Samples, CPUSeconds: r.CPUSeconds, DurationS: round3(r.DurationS),
		SubmittedAt: r.SubmittedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		InputBytes: r.InputBytes, LogDir: r.LogDir,
	}
	var t0 time.Time
	if r.StartedAt != nil {
		t0 = *r.StartedAt
	} else if len(curve) > 0 {
		t0 = curve[0].Time
	}
	for _, s := range curve {
		p := pointView{T: round3(s.Time.Sub(t0).Seconds())}
		if s.Avail.Has(resource.CPU) {
			// cpu_pct, percent of one core: the stable unit of the CLI's
			// JSON, like the API's and the stored records'.
			p.CPUPct = ptr(round3(resource.PctOfCores(s.CPU)))
		}
		if s.Avail.Has(resource.Memory) {
			p.MemoryMB = ptr(round3(s.MemoryMB))
		}
		if s.Avail.Has(resource.IO) {
			p.IOPS = ptr(round3(s.IOPS))
		}
		if s.Avail.Has(resource.Net) {
			p.NetInMbps, p.NetOutMbps = ptr(round3(s.NetInMbps)), ptr(round3(s.NetOutMbps))
		}
		v.Curve = append(v.Curve, p)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func fmtStat(p *float64, prec int) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, *p)
}

func fmtLimit(v float64, unit string) string {
	if v == 0 {
		return "none"
	}
	// Predicted limits are not round numbers; three significant digits
	// (at least the integer part) are what a reader can use. --json has
	// the exact values.
	if v >= 100 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func describeEnd(r *task.Record) string {
	switch {
	case r.OOMKilled && r.Error != "":
		return r.Error // "killed for memory: 1 OOM kill in the task's cgroup (limit 64 MB)"
	case r.OOMKilled:
		return "killed: out of memory"
	case r.Error != "":
		return r.Error
	case r.ExitCode != nil:
		return fmt.Sprintf("exit %d", *r.ExitCode)
	case r.Signal != "":
		return "killed by " + r.Signal
	}
	return string(r.State)
}

// printSummary writes the human summary of a finished run.
func printSummary(w io.Writer, r *task.Record) {
	fmt.Fprintf(w, "\nprescient: task %s %s after %.2fs (%s)\n", r.ID, r.State, r.DurationS, describeEnd(r))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  signature\t%s\n", r.Signature)
	fmt.Fprintf(tw, "  limits\tcpu %s, memory %s, io %s, net %s\n",
		fmtLimit(r.Limits.CPUCores, "cores"), fmtLimit(r.Limits.MemoryMB, "MB"),
		fmtLimit(r.Limits.IOPS, "ops/s"), fmtLimit(r.Limits.NetMbps, "Mbps"))
	fmt.Fprintf(tw, "  samples\t%d\n", r.Samples)
	if r.CPUSeconds > 0 {
		fmt.Fprintf(tw, "  cpu time\t%.2fs\n", r.CPUSeconds)
	}
	fmt.Fprintf(tw, "\t\tpeak\tmean\n")
	fmt.Fprintf(tw, "  cpu %%\t\t%s\t%s\n", fmtStat(r.Peak.CPUPct, 1), fmtStat(r.Mean.CPUPct, 1))
	fmt.Fprintf(tw, "  memory MB\t\t%s\t%s\n", fmtStat(r.Peak.MemoryMB, 1), fmtStat(r.Mean.MemoryMB, 1))
	fmt.Fprintf(tw, "  io ops/s\t\t%s\t%s\n", fmtStat(r.Peak.IOPS, 1), fmtStat(r.Mean.IOPS, 1))
	fmt.Fprintf(tw, "  net Mbps\t\t%s\t%s\n", fmtStat(r.Peak.NetMbps, 2), fmtStat(r.Mean.NetMbps, 2))
	tw.Flush()
	if r.LogDir != "" {
		fmt.Fprintf(w, "  logs in %s\n", r.LogDir)
	}
}

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// sparkline renders vals (NaN = gap) in at most width cells, each cell the
// maximum of the samples it covers, scaled from 0 to the maximum.
func sparkline(vals []float64, width int) string {
	if len(vals) == 0 || width <= 0 {
		return ""
	}
	cells := min(width, len(vals))
	agg := make([]float64, cells)
	for i := range agg {
		agg[i] = math.NaN()
	}
	for i, v := range vals {
		c := i * cells / len(vals)
		if !math.IsNaN(v) && (math.IsNaN(agg[c]) || v > agg[c]) {
			agg[c] = v
		}
	}
	top := 0.0
	for _, v := range agg {
		if !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	var b strings.Builder
	for _, v := range agg {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case top <= 0:
			b.WriteRune(sparkRunes[0])
		default:
			i := int(v / top * float64(len(sparkRunes)-1))
			b.WriteRune(sparkRunes[min(max(i, 0), len(sparkRunes)-1)])
		}
	}
	return b.String()
}

func unixSignalNum(name string) int {
	return int(unix.SignalNum(name))
}
