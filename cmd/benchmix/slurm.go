package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// slurmRunner runs the mix through the shared Slurm harness (its
// run_slurm.sh, in Harness): every job of jobs.tsv submitted at once with
// sbatch --cpus-per-task --mem --time, waited for; the per-job records the
// harness writes (RUNDIR/rec/NAME) are read back.
type slurmRunner struct {
	Harness string   // the directory holding run_slurm.sh
	Env     []string // JOBMIX_RUN and SLURM_CONF for the harness
	// Enough: every job declares enough memory (an under-declared job
	// declares by declareMB, as the others do). The harness then runs a
	// scratch mix of its own (enoughMix) beside the real one.
	Enough bool
}

// enoughMix makes dir a mix directory for jobs with every memory
// declaration enough: data/ and src/ link to mix's, jobs.tsv has
// UnderMB cleared. The harness writes out/, tmp/ and results/ there.
func enoughMix(dir, mix string, jobs []job, t tools) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"data", "src"} {
		link := filepath.Join(dir, d)
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Symlink(filepath.Join(mix, d), link); err != nil {
			return err
		}
	}
	enough := make([]job, len(jobs))
	for i, j := range jobs {
		j.UnderMB = 0
		enough[i] = j
	}
	var b bytes.Buffer
	if err := writeJobsTSV(&b, enough, t); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "jobs.tsv"), b.Bytes(), 0o644)
}

// slurmAvailable says whether the Slurm runner can run, and if not why: it
// needs sbatch, SLURM_CONF naming a file, and the harness's run_slurm.sh.
// The harness finds its Slurm under JOBMIX_RUN, taken from the environment
// or from SLURM_CONF (JOBMIX_RUN/etc/slurm.conf).
func slurmAvailable(harness string, getenv func(string) string) (slurmRunner, string) {
	if _, err := exec.LookPath("sbatch"); err != nil {
		return slurmRunner{}, "sbatch not in PATH"
	}
	conf := getenv("SLURM_CONF")
	if conf == "" {
		return slurmRunner{}, "SLURM_CONF not set"
	}
	if _, err := os.Stat(conf); err != nil {
		return slurmRunner{}, fmt.Sprintf("SLURM_CONF %s: %v", conf, err)
	}
	script := filepath.Join(harness, "run_slurm.sh")
	if _, err := os.Stat(script); err != nil {
		return slurmRunner{}, fmt.Sprintf("no harness: %v (set --slurm-harness or JOBMIX_HARNESS)", err)
	}
	run := getenv("JOBMIX_RUN")
	if run == "" && filepath.Base(conf) == "slurm.conf" && filepath.Base(filepath.Dir(conf)) == "etc" {
		run = filepath.Dir(filepath.Dir(conf))
	}
	if run == "" {
		return slurmRunner{}, "JOBMIX_RUN not set and SLURM_CONF is not JOBMIX_RUN/etc/slurm.conf"
	}
	return slurmRunner{Harness: harness, Env: []string{"JOBMIX_RUN=" + run, "SLURM_CONF=" + conf}}, ""
}

func (s slurmRunner) run(ctx context.Context, e *runEnv) ([]jobResult, time.Time, error) {
	var stdout bytes.Buffer
	logf, err := os.Create(filepath.Join(e.dir, "run_slurm.log"))
	if err != nil {
		return nil, time.Time{}, err
	}
	defer logf.Close()
	mix := e.mix
	if s.Enough {
		mix = filepath.Join(e.dir, "mix")
		if err := enoughMix(mix, e.mix, e.jobs, e.tools); err != nil {
			return nil, time.Time{}, fmt.Errorf("slurm-enough mix: %w", err)
		}
		// The jobs' outputs are the real mix's size: not kept.
		defer os.RemoveAll(filepath.Join(mix, "out"))
		defer os.RemoveAll(filepath.Join(mix, "tmp"))
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(s.Harness, "run_slurm.sh"), mix)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Env = append(cmd.Env, fmt.Sprintf("PEER_RUN_TIMEOUT=%d", int(e.timeout.Seconds())))
	cmd.Stdout, cmd.Stderr = &stdout, logf
	// SIGTERM lets the harness cancel its jobs (its EXIT trap) on an interrupt.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		return nil, time.Time{}, fmt.Errorf("run_slurm.sh: %w (see %s)", err, logf.Name())
	}
	if err := os.WriteFile(filepath.Join(e.dir, "harness-summary.json"), stdout.Bytes(), 0o644); err != nil {
		return nil, time.Time{}, err
	}
	var hs struct {
		Rundir string `json:"rundir"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &hs); err != nil || hs.Rundir == "" {
		return nil, time.Time{}, fmt.Errorf("run_slurm.sh: no rundir in its summary (see %s)", logf.Name())
	}
	var res []jobResult
	var t0 time.Time
	for _, j := range e.jobs {
		b, err := os.ReadFile(filepath.Join(hs.Rundir, "rec", j.Name))
		if err != nil {
			return nil, t0, fmt.Errorf("slurm record of %s: %w", j.Name, err)
		}
		r := parseRec(j.Name, b)
		if t0.IsZero() || r.Submit.Before(t0) {
			t0 = r.Submit
		}
		res = append(res, r)
	}
	return res, t0, nil
}

// parseRec reads a job's record from the shared harness (key=value lines:
// submit, start, end in Unix seconds, rc, state as Slurm says it, cpu_ns,
// user_s, sys_s, cg_peak_bytes, oom_kills). A key written twice counts
// once, its last value.
func parseRec(name string, b []byte) jobResult {
	kv := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			kv[k] = v
		}
	}
	num := func(k string) (float64, bool) {
		v, err := strconv.ParseFloat(kv[k], 64)
		return v, err == nil
	}
	when := func(k string) time.Time {
		v, ok := num(k)
		if !ok {
			return time.Time{}
		}
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	r := jobResult{Name: name, Submit: when("submit"), Start: when("start"), End: when("end"), Detail: "slurm " + kv["state"]}
	if rc, err := strconv.Atoi(kv["rc"]); err == nil {
		r.Exit = &rc
	}
	if ns, ok := num("cpu_ns"); ok {
		r.CPUS = round3(ns / 1e9)
	} else if u, ok := num("user_s"); ok {
		s, _ := num("sys_s")
		r.CPUS = round3(u + s)
	}
	if p, ok := num("cg_peak_bytes"); ok {
		r.PeakMemMB = round3(p / (1 << 20))
	}
	r.OOMKills, _ = strconv.Atoi(kv["oom_kills"])
	switch kv["state"] {
	case "COMPLETED":
		r.State = stateSucceeded
	case "OUT_OF_MEMORY":
		r.State = stateOOM
		r.OOMKills = max(r.OOMKills, 1)
	case "CANCELLED", "TIMEOUT":
		r.State = stateCancelled
	default:
		r.State = stateFailed
	}
	return r
}
