package ledger

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/golden"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// TestGolden runs the scripted scenarios in testdata/*.txt and compares
// their transcripts with testdata/*.golden (regenerate with -update).
//
// Script lines (times are offsets from the ledger's start):
//
//	ledger slot=1s horizon=1m cpu=4 mem=1000 iops=100 net=100 [q=0.5]
//	reserve ID [at=0s] [ttl=1m] | 10s cpu=1 mem=100/300 | 20s ...   (value: p50[/phi])
//	fit [at=0s] | 10s mem=200 ...
//	resize ID | 10s ...
//	commit ID at=0s cpu=1 mem=800      adjust ID at=5s mem=900
//	release ID    expire at=30s    snapshot at=0s    free at=5s    get ID
//	restore ID at=-10s cpu=1 mem=100
func TestGolden(t *testing.T) { golden.Run(t, runScript) }

func runScript(t *testing.T, src string) []byte {
	var out bytes.Buffer
	var l *Ledger
	rel := func(tm time.Time) string {
		if tm.IsZero() {
			return "-"
		}
		return "+" + tm.Sub(t0).String()
	}
	fitStr := func(f Fit) string {
		if f.OK {
			return fmt.Sprintf("fits start=%s end=%s", rel(f.Start), rel(f.End))
		}
		return fmt.Sprintf("does not fit: %s (%s)", f.Reason, f.Detail)
	}
	resStr := func(r Reservation) string {
		if r.Kind == Hard {
			return fmt.Sprintf("%s hard since=%s limits{%v}", r.ID, rel(r.Start), r.Limits.Vector())
		}
		return fmt.Sprintf("%s soft start=%s end=%s expires=%s peak{%v}", r.ID, rel(r.Start), rel(r.End), rel(r.Expires), r.Peak)
	}
	errStr := func(err error) string {
		if err == nil {
			return "ok"
		}
		return "error: " + err.Error()
	}
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		fail := func(format string, a ...any) {
			t.Helper()
			t.Fatalf("line %d %q: %s", i+1, line, fmt.Sprintf(format, a...))
		}
		parts := strings.Split(line, "|")
		words := strings.Fields(parts[0])
		cmd, args := words[0], words[1:]
		id := ""
		if len(args) > 0 && !strings.Contains(args[0], "=") {
			id, args = args[0], args[1:]
		}
		kv := map[string]string{}
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				fail("argument %q is not key=value", a)
			}
			kv[k] = v
		}
		dur := func(k string) time.Duration {
			d, err := time.ParseDuration(kv[k])
			if kv[k] != "" && err != nil {
				fail("%s: %v", k, err)
			}
			return d
		}
		vec := func(m map[string]string, hi bool) resource.Vector {
			var v resource.Vector
			for d, name := range []string{"cpu", "mem", "iops", "net"} {
				s, ok := m[name]
				if !ok {
					continue
				}
				lo, h, two := strings.Cut(s, "/")
				if hi && two {
					lo = h
				}
				f, err := strconv.ParseFloat(lo, 64)
				if err != nil {
					fail("%s: %v", name, err)
				}
				v[d] = f
			}
			return v
		}
		curve := func() Curve {
			var c Curve
			for _, p := range parts[1:] {
				f := strings.Fields(p)
				d, err := time.ParseDuration(f[0])
				if err != nil {
					fail("step: %v", err)
				}
				m := map[string]string{}
				for _, a := range f[1:] {
					k, v, _ := strings.Cut(a, "=")
					m[k] = v
				}
				c.Steps = append(c.Steps, Step{Dur: d, P50: vec(m, false), PHi: vec(m, true)})
			}
			return c
		}
		at := t0.Add(dur("at"))
		fmt.Fprintf(&out, "> %s\n", line)
		switch cmd {
		case "ledger":
			q, _ := strconv.ParseFloat(kv["q"], 64)
			var err error
			l, err = New(Config{Capacity: vec(kv, false), SlotWidth: dur("slot"), Horizon: dur("horizon"), SoftQuantile: q, Start: t0}, nil)
			if err != nil {
				fail("%v", err)
			}
		case "reserve":
			r, f, err := l.SoftReserve(id, curve(), at, dur("ttl"))
			fmt.Fprintf(&out, "%s\n", fitStr(f))
			if err != nil {
				fmt.Fprintf(&out, "%s\n", errStr(err))
			} else if f.OK {
				fmt.Fprintf(&out, "%s\n", resStr(r))
			}
		case "fit":
			f, err := l.EarliestFit(curve(), at)
			if err != nil {
				fail("%v", err)
			}
			fmt.Fprintf(&out, "%s\n", fitStr(f))
		case "resize":
			r, f, err := l.Resize(id, curve())
			if err != nil {
				fmt.Fprintf(&out, "%s\n", errStr(err))
				break
			}
			fmt.Fprintf(&out, "%s\n%s\n", fitStr(f), resStr(r))
		case "commit":
			fmt.Fprintf(&out, "%s\n", errStr(l.Commit(id, at, task.LimitsOf(vec(kv, false)))))
		case "adjust":
			fmt.Fprintf(&out, "%s\n", errStr(l.Adjust(id, at, task.LimitsOf(vec(kv, false)))))
		case "restore":
			fmt.Fprintf(&out, "%s\n", errStr(l.Restore(id, at, task.LimitsOf(vec(kv, false)))))
		case "release":
			fmt.Fprintf(&out, "released=%v generation=%d\n", l.Release(id), l.Generation())
		case "expire":
			for _, r := range l.Expire(at) {
				fmt.Fprintf(&out, "expired %s\n", resStr(r))
			}
		case "get":
			r, err := l.Get(id)
			if err != nil {
				fmt.Fprintf(&out, "%s\n", errStr(err))
			} else {
				fmt.Fprintf(&out, "%s\n", resStr(r))
			}
		case "free":
			fmt.Fprintf(&out, "free{%v}\n", l.Free(at))
		case "snapshot":
			s := l.Snapshot(at)
			fmt.Fprintf(&out, "capacity  {%v}\ncommitted {%v}\nsoft now  {%v}\nsoft peak {%v}\nfree      {%v}\nsoft=%d hard=%d horizon=%s\n",
				s.Capacity, s.Committed, s.SoftNow, s.SoftPeak, s.Free, s.Soft, s.Hard, rel(s.HorizonEnd))
		default:
			fail("unknown command %q", cmd)
		}
	}
	return out.Bytes()
}
