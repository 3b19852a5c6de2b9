package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// prescientRunner runs the mix through a Prescient daemon of its own:
// `prescient serve` on StateDir (kept between runs, so a second run finds
// the first one's history) with the cores and memory the other runners
// get, every job submitted as `prescient submit --cpu C --memory M -- bash
// -c CMD` from the mix directory, waited for, read back with `prescient
// show --json`; the daemon is stopped by its PID at the end.
type prescientRunner struct {
	Bin      string // the prescient binary
	Policy   string // serve --policy: predict or fit
	StateDir string
	Extra    []string // more serve flags (--serve-args)
}

func (p prescientRunner) run(ctx context.Context, e *runEnv) ([]jobResult, time.Time, error) {
	sock := filepath.Join(os.TempDir(), fmt.Sprintf("benchmix-%d.sock", os.Getpid()))
	os.Remove(sock)
	defer os.Remove(sock)
	stop, err := p.serve(ctx, e, sock)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer stop()
	cli := func(ctx context.Context, args ...string) ([]byte, error) {
		// the subcommand first, then the socket: submit stops at "--"
		args = append([]string{args[0], "--socket", sock}, args[1:]...)
		cmd := exec.CommandContext(ctx, p.Bin, args...)
		cmd.Dir = e.mix
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("prescient %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}

	ids := make([]string, len(e.jobs))
	t0 := time.Now()
	for i, j := range e.jobs {
		out, err := cli(ctx, "submit", "--cpu", strconv.Itoa(j.CPUs), "--memory", fmt.Sprintf("%dM", j.MemMB()),
			"--", "bash", "-c", j.command(e.tools))
		if err != nil {
			p.cancel(cli, ids[:i])
			return nil, t0, fmt.Errorf("submit %s: %w", j.Name, err)
		}
		f := strings.Fields(string(out))
		if len(f) == 0 {
			p.cancel(cli, ids[:i])
			return nil, t0, fmt.Errorf("submit %s: no task id in the answer", j.Name)
		}
		ids[i] = f[len(f)-1]
	}

	if err := p.wait(ctx, e, cli, ids); err != nil {
		e.log.Warn("prescient run did not finish; cancelling its tasks", "err", err)
		p.cancel(cli, ids)
	}

	if err := os.MkdirAll(filepath.Join(e.dir, "show"), 0o755); err != nil {
		return nil, t0, err
	}
	res := make([]jobResult, len(e.jobs))
	for i, j := range e.jobs {
		out, err := cli(context.Background(), "show", ids[i], "--json")
		if err != nil {
			return nil, t0, fmt.Errorf("show %s: %w", j.Name, err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, "show", j.Name+".json"), out, 0o644); err != nil {
			return nil, t0, err
		}
		if res[i], err = parseShow(j.Name, out); err != nil {
			return nil, t0, err
		}
	}
	return res, t0, nil
}

// serve starts the daemon and waits until it answers; stop ends it by PID
// (SIGTERM, then SIGKILL after a minute) and waits for it.
func (p prescientRunner) serve(ctx context.Context, e *runEnv, sock string) (stop func(), err error) {
	logf, err := os.Create(filepath.Join(e.dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.Bin, "serve", "--state-dir", p.StateDir, "--socket", sock,
		"--cpu", strconv.Itoa(e.cores), "--memory", fmt.Sprintf("%dM", e.capMB), "--policy", p.Policy)
	cmd.Args = append(cmd.Args, p.Extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// its own process group: a Ctrl-C reaches benchmix, which cancels the
	// tasks and then stops the daemon, in that order
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("prescient serve: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err := exec.CommandContext(ctx, p.Bin, "ps", "--socket", sock).Run()
		if err == nil {
			e.log.Info("prescient serve up", "pid", cmd.Process.Pid, "policy", p.Policy, "state", p.StateDir)
			return stop, nil
		}
		select {
		case <-exited:
			logf.Close()
			return nil, fmt.Errorf("prescient serve exited at start (see %s)", logf.Name())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("prescient serve did not answer on %s within a minute", sock)
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// wait polls the daemon's queued and running tasks until none of ids is
// among them, for at most the run's timeout.
func (p prescientRunner) wait(ctx context.Context, e *runEnv, cli func(context.Context, ...string) ([]byte, error), ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	ours := map[string]bool{}
	for _, id := range ids {
		ours[id] = true
	}
	for {
		out, err := cli(ctx, "ps", "--json", "--limit", "0")
		if err != nil {
			return err
		}
		var live []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &live); err != nil {
			return fmt.Errorf("ps --json: %w", err)
		}
		n := 0
		for _, t := range live {
			if ours[t.ID] {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		sleepCtx(ctx, time.Second)
		if ctx.Err() != nil {
			return fmt.Errorf("%d tasks still live: %w", n, ctx.Err())
		}
	}
}

// cancel cancels ids, best effort.
func (p prescientRunner) cancel(cli func(context.Context, ...string) ([]byte, error), ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli(ctx, append([]string{"cancel"}, ids...)...)
}

// showView is the part of `prescient show --json` the benchmark reads.
type showView struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	ExitCode    *int       `json:"exit_code"`
	OOMKilled   bool       `json:"oom_killed"`
	Error       string     `json:"error"`
	DurationS   float64    `json:"duration_s"`
	CPUSeconds  float64    `json:"cpu_seconds"`
	SubmittedAt time.Time  `json:"submitted_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	Peak        struct {
		MemoryMB *float64 `json:"memory_mb"`
	} `json:"peak"`
	Mean struct {
		CPUPct *float64 `json:"cpu_pct"`
	} `json:"mean"`
	Curve []struct {
		T      float64  `json:"t"` // seconds since the start
		CPUPct *float64 `json:"cpu_pct"`
	} `json:"curve"`
	Prediction  *api.Prediction  `json:"prediction"`
	Allocations []api.Allocation `json:"allocations"`
}

// parseShow turns a task's show --json into its result. CPU-seconds are
// the task's cgroup counter at its end (cpu_seconds), as the naive
// runners read theirs; from a daemon without it, the curve's integral
// (each sample is the mean use since the one before; it misses the tail
// after the last sample), or without a curve the mean use times the
// duration.
func parseShow(name string, b []byte) (jobResult, error) {
	var v showView
	if err := json.Unmarshal(b, &v); err != nil {
		return jobResult{}, fmt.Errorf("show %s: %w", name, err)
	}
	if v.ID == "" {
		return jobResult{}, fmt.Errorf("show %s: %w", name, errors.New("no task in the answer"))
	}
	r := jobResult{Name: name, Exit: v.ExitCode, Submit: v.SubmittedAt}
	switch {
	case v.State == api.StateSucceeded:
		r.State = stateSucceeded
	case v.OOMKilled:
		r.State = stateOOM
	case v.State == api.StateCancelled:
		r.State = stateCancelled
	default:
		r.State = stateFailed
	}
	if v.StartedAt != nil {
		r.Start = *v.StartedAt
	}
	var reasons []string
	for _, a := range v.Allocations {
		switch a.Reason {
		case "commit":
			if r.Start.IsZero() || a.Time.Before(r.Start) {
				r.Start = a.Time // the first start of a task started more than once
			}
		case "oom_retry":
			r.OOMKills++
		case "evict":
			r.Evictions++
		}
		if len(reasons) == 0 || reasons[len(reasons)-1] != a.Reason {
			reasons = append(reasons, a.Reason)
		}
	}
	if v.OOMKilled {
		r.OOMKills++
	}
	if v.FinishedAt != nil {
		r.End = *v.FinishedAt
	}
	if v.Peak.MemoryMB != nil {
		r.PeakMemMB = round3(*v.Peak.MemoryMB)
	}
	prev := 0.0
	for _, p := range v.Curve {
		if p.CPUPct != nil {
			r.CPUS += *p.CPUPct / 100 * (p.T - prev)
		}
		prev = p.T
	}
	if len(v.Curve) == 0 && v.Mean.CPUPct != nil {
		r.CPUS = *v.Mean.CPUPct / 100 * v.DurationS
	}
	if v.CPUSeconds > 0 {
		r.CPUS = v.CPUSeconds
	}
	r.CPUS = round3(r.CPUS)
	model := ""
	if v.Prediction != nil {
		model = v.Prediction.Model
	}
	r.Detail = strings.TrimSpace(fmt.Sprintf("model %s; %s %s", model, strings.Join(reasons, ","), v.Error))
	return r, nil
}
