package sched

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/golden"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// TestGolden runs the scripted scenarios in testdata/*.txt and compares
// their transcripts with testdata/*.golden (regenerate with -update).
//
// Script lines (times are offsets from t0; values are p50[/phi]):
//
//	node cpu=2 mem=1000 [commit=30s monitor=10s]
//	curve NAME | 10s cpu=1 mem=800/900 | 10s mem=100
//	enqueue ID curve=NAME [prio=0] [at=0s]        (no curve: requests cpu=/mem=)
//	dispatch at=0s (Schedule: replan if needed, then dispatch)   replan at=0s (forced)
//	observe ID at=1s cpu=0.5 mem=300
//	finish ID at=20s [oom] [cancel]              cancel ID
//	show ID                  usage at=0s
func TestGolden(t *testing.T) { golden.Run(t, runScript) }

func parseVal(s string) (p50, phi float64, err error) {
	a, b, two := strings.Cut(s, "/")
	if p50, err = strconv.ParseFloat(a, 64); err != nil {
		return
	}
	phi = p50
	if two {
		phi, err = strconv.ParseFloat(b, 64)
	}
	return
}

var dimKeys = map[string]resource.Dim{"cpu": resource.CPU, "mem": resource.Memory, "iops": resource.IO, "net": resource.Net}

func parseCurve(parts []string) (ledger.Curve, error) {
	var c ledger.Curve
	for _, p := range parts {
		f := strings.Fields(p)
		if len(f) == 0 {
			continue
		}
		d, err := time.ParseDuration(f[0])
		if err != nil {
			return c, err
		}
		st := ledger.Step{Dur: d}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			dim, ok := dimKeys[k]
			if !ok {
				return c, fmt.Errorf("unknown dimension %q", k)
			}
			a, b, err := parseVal(v)
			if err != nil {
				return c, err
			}
			st.P50[dim], st.PHi[dim] = a, b
		}
		c.Steps = append(c.Steps, st)
	}
	return c, c.Validate()
}

func runScript(t *testing.T, src string) []byte {
	var out bytes.Buffer
	var (
		s   *Scheduler
		clk *fakeClock
		ex  *fakeExec
	)
	pred := mapPredictor{}
	rel := func(tm time.Time) string { return "+" + tm.Sub(t0).String() }
	lim := func(v resource.Vector) string {
		return fmt.Sprintf("cpu=%.3g mem=%.4g", v[resource.CPU], v[resource.Memory])
	}
	cg := func(l task.Limits) string { // what a cgroup has
		s := fmt.Sprintf("mem=%.4g", l.MemoryMB)
		if l.CPUCores > 0 {
			s = fmt.Sprintf("quota=%.3g %s", l.CPUCores, s)
		}
		if l.CPUShare > 0 {
			s = fmt.Sprintf("share=%.3g %s", l.CPUShare, s)
		}
		if l.MemoryHoldMB > 0 {
			s = fmt.Sprintf("%s hold=%.4g", s, l.MemoryHoldMB)
		}
		return s
	}
	for n, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		out.WriteString("> " + line + "\n")
		fail := func(err error) { t.Fatalf("line %d %q: %v", n+1, line, err) }
		head, rest, _ := strings.Cut(line, "|")
		f := strings.Fields(head)
		kv := map[string]string{}
		var flags []string
		for _, x := range f[1:] {
			if k, v, ok := strings.Cut(x, "="); ok {
				kv[k] = v
			} else {
				flags = append(flags, x)
			}
		}
		if at, ok := kv["at"]; ok && clk != nil {
			d, err := time.ParseDuration(at)
			if err != nil {
				fail(err)
			}
			clk.Set(t0.Add(d))
		}
		num := func(k string) float64 {
			if kv[k] == "" {
				return 0
			}
			v, err := strconv.ParseFloat(kv[k], 64)
			if err != nil {
				fail(err)
			}
			return v
		}
		dur := func(k string) time.Duration {
			if kv[k] == "" {
				return 0
			}
			d, err := time.ParseDuration(kv[k])
			if err != nil {
				fail(err)
			}
			return d
		}
		switch f[0] {
		case "node":
			var err error
			s, clk, ex, err = newTest(vec(num("cpu"), num("mem")), pred, func(c *Config) {
				c.CommitWindow, c.MonitorWindow, c.BurstWindow = dur("commit"), dur("monitor"), dur("burst")
				c.DownAfter = 3
				c.WideStretch = num("stretch")
			})
			if err != nil {
				fail(err)
			}
		case "curve":
			c, err := parseCurve(strings.Split(rest, "|"))
			if err != nil {
				fail(err)
			}
			pred[f[1]] = c
		case "enqueue":
			v, err := s.Enqueue(Task{ID: f[1], Priority: int(num("prio")), Features: Features{Signature: kv["curve"], Requests: vec(num("cpu"), num("mem"))}})
			if err != nil {
				fail(err)
			}
			if v.Reserved {
				fmt.Fprintf(&out, "%s reserved start=%s peak{%s} model=%s\n", v.ID, rel(v.ResStart), lim(v.ResPeak), v.Model)
			} else {
				fmt.Fprintf(&out, "%s queued without a reservation\n", v.ID)
			}
		case "dispatch":
			for _, st := range s.Schedule(0) {
				ex.started(st)
				fmt.Fprintf(&out, "start %s cgroup{%s} soft=%.4g waited=%v\n", st.ID, cg(st.Limits), st.SoftMemoryMB, st.Waited)
			}
		case "replan":
			fmt.Fprintf(&out, "replanned %d\n", s.Replan())
			var ids []string
			for id, e := range s.tasks {
				if e.state == Queued {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			for _, id := range ids {
				e := s.tasks[id]
				if e.reserved {
					fmt.Fprintf(&out, "  %s reserved start=%s\n", id, rel(e.resStart))
				} else {
					fmt.Fprintf(&out, "  %s unreserved\n", id)
				}
			}
		case "observe":
			// What a real cgroup allows: over its memory limit the task is
			// OOM-killed, not observed.
			used, oom := ex.real(f[1], vec(num("cpu"), num("mem")))
			if want := num("mem"); used[resource.Memory] < want {
				fmt.Fprintf(&out, "%s held at its %.4g MB limit (it would use %.4g MB)\n", f[1], used[resource.Memory], want)
			}
			if oom {
				fmt.Fprintf(&out, "%s OOM-killed: %.4g MB over its %.4g MB limit\n", f[1], used[resource.Memory], ex.limits[f[1]].MemoryMB)
				r, err := s.Finish(f[1], Outcome{OOMKilled: true})
				if err != nil {
					fail(err)
				}
				fmt.Fprintf(&out, "  requeued=%v (%s) %s\n", r.Requeued, r.Reason, r.Detail)
				continue
			}
			changed, err := s.Observe(f[1], Observation{At: clk.Now(), Used: used})
			if err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
			}
			if changed {
				v, _ := s.Get(f[1])
				a := v.Allocs[len(v.Allocs)-1]
				fmt.Fprintf(&out, "%s %s cgroup{%s} held{%s} soft=%.4g\n", f[1], a.Reason, cg(a.Limits), lim(a.Held), a.SoftMemoryMB)
			}
			for _, x := range s.tasks {
				if n := len(x.allocs); n > 0 && x.allocs[n-1].Reason == ReasonReclaim && x.allocs[n-1].At.Equal(clk.Now()) {
					a := x.allocs[n-1]
					fmt.Fprintf(&out, "%s %s cgroup{%s}: %s\n", x.t.ID, a.Reason, cg(a.Limits), a.Detail)
				}
			}
			for _, id := range ex.evicted {
				fmt.Fprintf(&out, "evicted %s\n", id)
			}
			ex.evicted = nil
		case "finish":
			r, err := s.Finish(f[1], Outcome{OOMKilled: slices.Contains(flags, "oom"), Cancelled: slices.Contains(flags, "cancel")})
			if err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
				continue
			}
			if r.Requeued {
				v, _ := s.Get(f[1])
				fmt.Fprintf(&out, "requeued (%s) estimate=%.4g retries=%d reserved=%v start=%s\n", r.Reason, r.EstimateMB, r.Retries, v.Reserved, rel(v.ResStart))
			} else if r.Detail != "" {
				fmt.Fprintf(&out, "ended: %s\n", r.Detail)
			} else {
				fmt.Fprintln(&out, "ended")
			}
		case "cancel":
			fmt.Fprintf(&out, "cancelled=%v\n", s.Cancel(f[1]))
		case "show":
			v, ok := s.Get(f[1])
			if !ok {
				fmt.Fprintln(&out, "unknown")
				continue
			}
			fmt.Fprintf(&out, "%s %s held{%s} retries=%d\n", v.ID, v.State, lim(v.Limits.Vector()), v.Retries)
			for _, a := range v.Allocs {
				fmt.Fprintf(&out, "  %s %s cgroup{%s} soft=%.4g %s\n", rel(a.At), a.Reason, cg(a.Limits), a.SoftMemoryMB, a.Detail)
			}
		case "usage":
			u := s.Usage()
			fmt.Fprintf(&out, "committed{%s} soft-now{%s} used{%s} queued=%d running=%d\n", lim(u.Committed), lim(u.SoftNow), lim(u.Used), u.Queued, u.Running)
		default:
			fail(fmt.Errorf("unknown command"))
		}
	}
	return out.Bytes()
}
