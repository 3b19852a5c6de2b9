package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		busy, total uint64
		err         bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"ok", "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 161, 1181, false},
		{"no steal columns", "cpu 1 2 3\n", 0, 0, true},
		{"not the cpu line", "cpu0 1 2 3 4 5 6 7 8\n", 0, 0, true},
		{"garbage", "cpu a b c d e f g h\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, total, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if err != nil && !errors.Is(err, errParse) {
				t.Errorf("err %v is not errParse", err)
			}
			if busy != tt.busy || total != tt.total {
				t.Errorf("busy, total = %d, %d, want %d, %d", busy, total, tt.busy, tt.total)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		total, used uint64
		err         bool
	}{
		{"ok", "MemTotal:       24683580 kB\nMemFree:        15000000 kB\nMemAvailable:   22000000 kB\n", 24683580, 2683580, false},
		{"no MemAvailable", "MemTotal: 100 kB\nMemFree: 50 kB\n", 0, 0, true},
		{"available above total", "MemTotal: 100 kB\nMemAvailable: 200 kB\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, used, err := parseMeminfo([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if total != tt.total || used != tt.used {
				t.Errorf("total, used = %d, %d, want %d, %d", total, used, tt.total, tt.used)
			}
		})
	}
}

var base = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }

// testSamples: 2 cores (200 jiffies a second); from t=0 to t=10 the machine
// is fully busy, memory 1 GiB then 3 GiB from t=4 to t=6, 9 GiB outside
// the run (at -1 and 12: must not count as the run's peak).
func testSamples() []nodeSample {
	var ss []nodeSample
	var busy, total uint64
	for i := -2; i <= 12; i++ {
		mem := uint64(1 << 20)
		if i >= 4 && i <= 6 {
			mem = 3 << 20
		}
		if i == -1 || i == 12 {
			mem = 9 << 20
		}
		ss = append(ss, nodeSample{T: at(float64(i)), Busy: busy, Total: total, MemUsedKB: mem})
		total += 200
		if i >= 0 && i < 10 {
			busy += 200
		} else {
			busy += 20
		}
	}
	return ss
}

func TestSummarize(t *testing.T) {
	exit0 := 0
	jobs := []jobResult{
		{Name: "a", State: stateSucceeded, Exit: &exit0, Submit: at(0), Start: at(0), End: at(6), CPUS: 6},
		{Name: "b", State: stateSucceeded, Submit: at(0), Start: at(2), End: at(10), CPUS: 8.5, Evictions: 1},
		{Name: "c", State: stateOOM, Submit: at(0), Start: at(4), End: at(5), CPUS: 0.5, OOMKills: 2},
		{Name: "d", State: stateCancelled, Submit: at(0)}, // never started
	}
	s := summarize("x", jobs, testSamples(), at(0), 2)
	want := summary{
		Runner: "x", Jobs: 4, Cores: 2, Start: at(0), MakespanS: 10, CPUBusy: 1, CPUSeconds: 15,
		PeakMemMB: 3072, BaseMemMB: 1024, MeanWaitS: 2, Lost: 2, OOMKills: 2, Evictions: 1,
	}
	s.Results = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	if jobs[1].WaitS != 2 || jobs[1].RunS != 8 || jobs[3].WaitS != 0 || jobs[3].RunS != 0 {
		t.Errorf("wait/run of b = %v/%v, of d = %v/%v; want 2/8 and 0/0", jobs[1].WaitS, jobs[1].RunS, jobs[3].WaitS, jobs[3].RunS)
	}
}

func TestBusyBetween(t *testing.T) {
	ss := testSamples()
	tests := []struct {
		name   string
		t0, t1 float64
		want   float64
	}{
		{"the busy run", 0, 10, 1},
		{"between samples: widened to whole samples", 0.5, 9.5, 1},
		{"idle tail", 10, 12, 0.1},
		{"past the last sample: up to it", 5, 15, 1040.0 / 1400}, // 5..10 busy, 10..12 idle
	}
	for _, tt := range tests {
		if got := busyBetween(ss, at(tt.t0), at(tt.t1)); got != tt.want {
			t.Errorf("%s: busyBetween(%v, %v) = %v, want %v", tt.name, tt.t0, tt.t1, got, tt.want)
		}
	}
	if got := busyBetween(ss[:1], at(0), at(1)); got != 0 {
		t.Errorf("one sample: %v, want 0", got)
	}
}

func TestReportFinishAndTable(t *testing.T) {
	r := report{Cores: 2, Summaries: []summary{
		{Runner: runSerial, Rep: 1, MakespanS: 360, CPUSeconds: 340, CPUBusy: 0.5, ProbeCPUS: 25},
		{Runner: runAll, Rep: 1, MakespanS: 212, CPUSeconds: 411.4, CPUBusy: 0.97},
		{Runner: runPredictWarm, Rep: 1, MakespanS: 190.4, CPUSeconds: 350.2, CPUBusy: 0.9, PeakMemMB: 6144, MeanWaitS: 40.25, Lost: 1, OOMKills: 1, ProbeCPUS: 30},
		{Runner: runSlurm, Rep: 1, MakespanS: 300, CPUSeconds: 330, CPUBusy: 0.6, Lost: 3, OOMKills: 3},
		{Runner: runSlurmEnough, Rep: 1, MakespanS: 340, CPUSeconds: 345, CPUBusy: 0.55},
	}, Skipped: []string{"fit #1: broken"}}
	r.finish()
	if r.FloorS != 170 || r.SerialCPUS != 340 || r.SlurmS != 300 || r.SlurmEnoughS != 340 || r.ProbeSerial != 25 {
		t.Errorf("floor %v, serial %v, slurm %v, slurm-enough %v, probe %v; want 170, 340, 300, 340, 25", r.FloorS, r.SerialCPUS, r.SlurmS, r.SlurmEnoughS, r.ProbeSerial)
	}
	if len(r.Medians) != 0 {
		t.Errorf("medians of single runs: %v", r.Medians)
	}
	var b strings.Builder
	r.writeTable(&b, 1, map[string]string{runSerial: "one at a time"})
	out := b.String()
	for _, want := range []string{
		// Probed 1.2 × slower than at the serial run: the floor at its
		// speed is 204 s, the serial CPU-seconds 408.
		"| predict-warm | 190.4 | 90 % | 350.2 | 6.00 | 40.2 | 1 | 1 | 0 | 1.12 | 0.63 | 0.56 | 1.03 | 30.0 (1.20) | 0.93 | 0.86 |",
		"| all | 212.0 | 97 % | 411.4 | 0.00 | 0.0 | 0 | 0 | 0 | 1.25 | 0.71 | 0.62 | 1.21 | — | — | — |",
		"| serial | 360.0 | 50 % | 340.0 | 0.00 | 0.0 | 0 | 0 | 0 | 2.12 | 1.20 | 1.06 | 1.00 | 25.0 (1.00) | 2.12 | 1.00 |",
		"Speed probe (xz6_12m, sort_nums, gzip6_96m, cpu_int, one at a time, before and after each run): 25.0 CPU-s at the serial run",
		"CPU floor: 170.0 s (serial CPU-seconds 340.0 / 2 cores).",
		"Skipped: fit #1: broken.",
		"- `serial`: one at a time",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Without a serial run or Slurm, the ratios are unknown, not zero.
	r = report{Cores: 2, Summaries: []summary{{Runner: runAll, Rep: 1, MakespanS: 10}}}
	r.finish()
	b.Reset()
	r.writeTable(&b, 1, nil)
	if !strings.Contains(b.String(), "| — | — | — | — | — | — | — |") || !strings.Contains(b.String(), "CPU floor: unknown") {
		t.Errorf("unknown references not said:\n%s", b.String())
	}
}

func TestMedians(t *testing.T) {
	r := report{Cores: 2, Summaries: []summary{
		{Runner: runSerial, Rep: 1, MakespanS: 350, CPUSeconds: 330, ProbeCPUS: 24},
		{Runner: runSerial, Rep: 2, MakespanS: 370, CPUSeconds: 350, ProbeCPUS: 26},
		{Runner: runSlurm, Rep: 1, MakespanS: 280, Lost: 3},
		{Runner: runSlurm, Rep: 2, MakespanS: 320, Lost: 3},
		{Runner: runSlurm, Rep: 3, MakespanS: 300, Lost: 2},
	}}
	r.finish()
	if len(r.Medians) != 2 {
		t.Fatalf("%d medians, want 2", len(r.Medians))
	}
	if m := r.Medians[0]; m.Runner != runSerial || m.MakespanS != 360 || m.CPUSeconds != 340 || m.Rep != 0 || m.ProbeCPUS != 25 {
		t.Errorf("serial median %+v", m)
	}
	if m := r.Medians[1]; m.MakespanS != 300 || m.Lost != 3 || m.Note != "median of 3 runs" {
		t.Errorf("slurm median %+v", m)
	}
	if r.FloorS != 170 || r.SlurmS != 300 {
		t.Errorf("references from medians: floor %v, slurm %v; want 170, 300", r.FloorS, r.SlurmS)
	}
	var b strings.Builder
	r.writeTable(&b, 3, nil)
	for _, want := range []string{"| serial #2 | 370.0 |", "| slurm (median) | 300.0 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestProbeMeanAndJobs(t *testing.T) {
	for _, tt := range []struct{ before, after, want float64 }{
		{20, 30, 25}, {20, 0, 20}, {0, 30, 30}, {0, 0, 0},
	} {
		if got := probeMean(tt.before, tt.after); got != tt.want {
			t.Errorf("probeMean(%v, %v) = %v, want %v", tt.before, tt.after, got, tt.want)
		}
	}
	// Every probe job is a job of the mix: a renamed job would leave the
	// probe silently shorter.
	if got := probeJobs(mixJobs); len(got) != len(probeNames) {
		t.Errorf("probe jobs in the mix: %d of %v", len(got), probeNames)
	}
	var sub []job
	for _, j := range mixJobs {
		if j.Name == "cpu_int" || j.Name == "xz8_20m" {
			sub = append(sub, j)
		}
	}
	if got := probeJobs(sub); len(got) != 1 || got[0].Name != "cpu_int" {
		t.Errorf("probe jobs of a --jobs subset: %v", got)
	}
}
