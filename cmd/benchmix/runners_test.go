package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A task OOM-killed once, retried larger, then succeeded; its curve gives
// the CPU-seconds (each sample the mean since the one before).
const showRetried = `{
  "id": "01ABC", "state": "succeeded", "exit_code": 0, "oom_killed": false,
  "duration_s": 3.5,
  "submitted_at": "2026-12-04T12:00:00Z",
  "started_at": "2026-12-04T12:00:07Z",
  "finished_at": "2026-12-04T12:00:10.5Z",
  "peak": {"cpu_pct": 100, "memory_mb": 1543.25},
  "mean": {"cpu_pct": 60},
  "curve": [
    {"t": 1, "cpu_pct": 100, "memory_mb": 10},
    {"t": 2, "cpu_pct": 50, "memory_mb": 20},
    {"t": 3, "cpu_pct": null, "memory_mb": 30},
    {"t": 3.5, "cpu_pct": 20, "memory_mb": 5}
  ],
  "prediction": {"model": "history/exact", "upper_quantile": 0.95, "steps": []},
  "allocations": [
    {"time": "2026-12-04T12:00:02Z", "reason": "commit", "limits": {"cpu_cores": 1, "memory_mb": 512, "iops": 0, "net_mbps": 0}, "held": {"cpu_cores": 1, "memory_mb": 512, "iops": 0, "net_mbps": 0}, "soft_applied": false},
    {"time": "2026-12-04T12:00:05Z", "reason": "oom_retry", "limits": {"cpu_cores": 0, "memory_mb": 0, "iops": 0, "net_mbps": 0}, "held": {"cpu_cores": 0, "memory_mb": 0, "iops": 0, "net_mbps": 0}, "soft_applied": false},
    {"time": "2026-12-04T12:00:07Z", "reason": "commit", "limits": {"cpu_cores": 1, "memory_mb": 2048, "iops": 0, "net_mbps": 0}, "held": {"cpu_cores": 1, "memory_mb": 2048, "iops": 0, "net_mbps": 0}, "soft_applied": false},
    {"time": "2026-12-04T12:00:09Z", "reason": "evict", "limits": {"cpu_cores": 0, "memory_mb": 0, "iops": 0, "net_mbps": 0}, "held": {"cpu_cores": 0, "memory_mb": 0, "iops": 0, "net_mbps": 0}, "soft_applied": false}
  ]
}`

func TestParseShow(t *testing.T) {
	r, err := parseShow("py_under", []byte(showRetried))
	if err != nil {
		t.Fatal(err)
	}
	ts := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	if r.State != stateSucceeded || r.Exit == nil || *r.Exit != 0 {
		t.Errorf("state %s exit %v, want succeeded 0", r.State, r.Exit)
	}
	if !r.Submit.Equal(ts("2026-12-04T12:00:00Z")) || !r.Start.Equal(ts("2026-12-04T12:00:02Z")) || !r.End.Equal(ts("2026-12-04T12:00:10.5Z")) {
		t.Errorf("submit %v start %v end %v: want the first commit as the start", r.Submit, r.Start, r.End)
	}
	// 1 s at 100 % + 1 s at 50 % + (gap) + 0.5 s at 20 %
	if r.CPUS != 1.6 {
		t.Errorf("CPU-seconds %v, want 1.6", r.CPUS)
	}
	if r.OOMKills != 1 || r.Evictions != 1 || r.PeakMemMB != 1543.25 {
		t.Errorf("oom %d evictions %d peak %v, want 1, 1, 1543.25", r.OOMKills, r.Evictions, r.PeakMemMB)
	}
	if !strings.Contains(r.Detail, "history/exact") || !strings.Contains(r.Detail, "commit,oom_retry,commit,evict") {
		t.Errorf("detail %q", r.Detail)
	}

	tests := []struct{ name, json, state string }{
		{"oom killed", `{"id":"x","state":"failed","oom_killed":true,"submitted_at":"2026-12-04T12:00:00Z"}`, stateOOM},
		{"failed", `{"id":"x","state":"failed","exit_code":1,"submitted_at":"2026-12-04T12:00:00Z"}`, stateFailed},
		{"cancelled", `{"id":"x","state":"cancelled","submitted_at":"2026-12-04T12:00:00Z"}`, stateCancelled},
	}
	for _, tt := range tests {
		r, err := parseShow("j", []byte(tt.json))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if r.State != tt.state || !r.Start.IsZero() {
			t.Errorf("%s: state %s start %v, want %s and no start", tt.name, r.State, r.Start, tt.state)
		}
	}
	// no curve: mean x duration
	r, _ = parseShow("j", []byte(`{"id":"x","state":"succeeded","duration_s":4,"mean":{"cpu_pct":50},"submitted_at":"2026-12-04T12:00:00Z"}`))
	if r.CPUS != 2 {
		t.Errorf("CPU-seconds without a curve %v, want 2", r.CPUS)
	}
	// the cgroup's counter, when the daemon gives it, over the curve
	r, _ = parseShow("j", []byte(`{"id":"x","state":"succeeded","duration_s":4,"cpu_seconds":2.345,"mean":{"cpu_pct":50},"curve":[{"t":1,"cpu_pct":40}],"submitted_at":"2026-12-04T12:00:00Z"}`))
	if r.CPUS != 2.345 {
		t.Errorf("CPU-seconds with cpu_seconds %v, want 2.345", r.CPUS)
	}
	for _, bad := range []string{`not json`, `{}`} {
		if _, err := parseShow("j", []byte(bad)); err == nil {
			t.Errorf("parseShow(%q) did not fail", bad)
		}
	}
}

func TestParseRec(t *testing.T) {
	rec := "submit=1764849600.25\njobid=7\nstart=1764849610.5\nend=1764849640.75\nrc=137\n" +
		"peak_rss_kb=500000\nuser_s=3.5\nsys_s=0.5\ncg_peak_bytes=536870912\noom_kills=0\ncpu_ns=4200000000\n" +
		"state=OUT_OF_MEMORY\nslurm_exit=0:125\n"
	r := parseRec("py_under", []byte(rec))
	if r.State != stateOOM || r.OOMKills != 1 || r.Exit == nil || *r.Exit != 137 {
		t.Errorf("state %s oom %d exit %v, want oom, 1, 137", r.State, r.OOMKills, r.Exit)
	}
	if got := r.Start.Sub(r.Submit).Seconds(); got != 10.25 {
		t.Errorf("wait %v, want 10.25", got)
	}
	if got := r.End.Sub(r.Start).Seconds(); got != 30.25 {
		t.Errorf("run %v, want 30.25", got)
	}
	if r.CPUS != 4.2 || r.PeakMemMB != 512 {
		t.Errorf("cpu %v peak %v, want 4.2 (cpu_ns first), 512", r.CPUS, r.PeakMemMB)
	}

	tests := []struct{ rec, state string }{
		{"state=COMPLETED\nrc=0\n", stateSucceeded},
		{"state=FAILED\nrc=1\n", stateFailed},
		{"state=CANCELLED\n", stateCancelled},
		{"state=TIMEOUT\n", stateCancelled},
		{"", stateFailed},
	}
	for _, tt := range tests {
		if r := parseRec("j", []byte(tt.rec)); r.State != tt.state {
			t.Errorf("%q: state %s, want %s", tt.rec, r.State, tt.state)
		}
	}
	r = parseRec("j", []byte("state=COMPLETED\nuser_s=1.25\nsys_s=0.5\n"))
	if r.CPUS != 1.75 {
		t.Errorf("CPU from user+sys %v, want 1.75", r.CPUS)
	}
}

func TestSlurmAvailable(t *testing.T) {
	bin := t.TempDir()
	harness := t.TempDir()
	conf := filepath.Join(t.TempDir(), "run", "etc", "slurm.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, nil, 0o644)
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	t.Setenv("PATH", bin)
	if _, why := slurmAvailable(harness, env(map[string]string{"SLURM_CONF": conf})); why != "sbatch not in PATH" {
		t.Errorf("without sbatch: %q", why)
	}
	os.WriteFile(filepath.Join(bin, "sbatch"), []byte("#!/bin/sh\n"), 0o755)
	if _, why := slurmAvailable(harness, env(nil)); why != "SLURM_CONF not set" {
		t.Errorf("without SLURM_CONF: %q", why)
	}
	if _, why := slurmAvailable(harness, env(map[string]string{"SLURM_CONF": conf})); !strings.HasPrefix(why, "no harness") {
		t.Errorf("without run_slurm.sh: %q", why)
	}
	os.WriteFile(filepath.Join(harness, "run_slurm.sh"), []byte("#!/bin/sh\n"), 0o755)
	s, why := slurmAvailable(harness, env(map[string]string{"SLURM_CONF": conf}))
	if why != "" || s.Harness != harness {
		t.Fatalf("available: %q", why)
	}
	if want := "JOBMIX_RUN=" + filepath.Dir(filepath.Dir(conf)); s.Env[0] != want {
		t.Errorf("env %q, want %q from SLURM_CONF", s.Env, want)
	}
	s, _ = slurmAvailable(harness, env(map[string]string{"SLURM_CONF": conf, "JOBMIX_RUN": "/elsewhere"}))
	if s.Env[0] != "JOBMIX_RUN=/elsewhere" {
		t.Errorf("env %q, want JOBMIX_RUN from the environment", s.Env)
	}
}

func TestOOMKills(t *testing.T) {
	if n := oomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"); n != 3 {
		t.Errorf("oomKills = %d, want 3", n)
	}
	if n := oomKills("oom_kill_disable 0\nunder_oom 0\n"); n != 0 {
		t.Errorf("oomKills without the counter = %d, want 0", n)
	}
}

func TestSampler(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := 0
	read := func() (nodeSample, error) {
		n++
		if n%2 == 0 {
			return nodeSample{}, errors.New("skipped")
		}
		return nodeSample{T: time.Now(), Busy: uint64(n)}, nil
	}
	s := startSampler(read, time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.samples)
		s.mu.Unlock()
		if got >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ss := s.Stop()
	if len(ss) < 3 {
		t.Fatalf("%d samples, want at least 3", len(ss))
	}
	for _, x := range ss {
		if x.Busy%2 == 0 {
			t.Errorf("a failed read was kept: %+v", x)
		}
	}
	if again := s.Stop(); len(again) != len(ss) {
		t.Errorf("second Stop: %d samples, want %d", len(again), len(ss))
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  bool
	}{
		{"defaults", nil, false},
		{"smoke", []string{"--runners", "serial,predict-cold,predict-warm", "--jobs", "cpu_fft,xz6_12m"}, false},
		{"warm without cold", []string{"--runners", "predict-warm"}, true},
		{"unknown runner", []string{"--runners", "pbs"}, true},
		{"zero repeat", []string{"--repeat", "0"}, true},
		{"stray argument", []string{"now"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			c, err := parseFlags(tt.args, &stderr)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if tt.name == "defaults" && (len(c.Runners) != len(runnerOrder) || c.Parallel != 2 || c.Repeat != 1) {
				t.Errorf("defaults %+v", c)
			}
		})
	}
}

// TestEnoughMix: slurm-enough's mix links the real mix's data and sources
// and declares enough memory for the under-declared jobs, by the rule the
// others follow; everything else is as in the real jobs.tsv. Made twice
// (the second run of a --repeat), it is the same.
func TestEnoughMix(t *testing.T) {
	mix, dir := t.TempDir(), filepath.Join(t.TempDir(), "mix")
	for range 2 {
		if err := enoughMix(dir, mix, mixJobs, testTools); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"data", "src"} {
		if to, err := os.Readlink(filepath.Join(dir, d)); err != nil || to != filepath.Join(mix, d) {
			t.Errorf("%s links to %q (%v), want %q", d, to, err, filepath.Join(mix, d))
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "jobs.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var real strings.Builder
	if err := writeJobsTSV(&real, mixJobs, testTools); err != nil {
		t.Fatal(err)
	}
	got, want := strings.Split(string(b), "\n"), strings.Split(real.String(), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	under := 0
	for i, j := range append([]job{{}}, mixJobs...) { // line 0: the header
		if i == 0 || j.UnderMB == 0 {
			if got[i] != want[i] {
				t.Errorf("line %d: %q, want it as in the mix: %q", i, got[i], want[i])
			}
			continue
		}
		under++
		f := strings.Split(got[i], "\t")
		if f[0] != j.Name || f[2] != strconv.Itoa(declareMB(j.PeakMB)) || f[2] == strconv.Itoa(j.UnderMB) {
			t.Errorf("%s declares %s MB, want %d (declareMB of its %d MB peak)", j.Name, f[2], declareMB(j.PeakMB), j.PeakMB)
		}
	}
	if under != 3 {
		t.Errorf("%d under-declared jobs in the mix, want 3", under)
	}
}
