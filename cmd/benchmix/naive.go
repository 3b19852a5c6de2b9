package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// naiveRunner runs the mix with no scheduler: every job at once
// (parallel 0), or at most parallel jobs at a time in mix order, like
// xargs -P. Declarations are ignored. Each job sits in its own cgroup v1
// memory and cpuacct group only to be measured (CPU time, peak memory, OOM
// kills), under one parent memory group capped at the memory the other
// runners are given, so a runaway mix cannot take the whole machine.
type naiveRunner struct {
	parallel int
}

func (n naiveRunner) run(ctx context.Context, e *runEnv) ([]jobResult, time.Time, error) {
	cg, err := newCgroups(fmt.Sprintf("benchmix-%d", os.Getpid()), int64(e.capMB)<<20)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer cg.remove()
	if err := os.MkdirAll(filepath.Join(e.dir, "log"), 0o755); err != nil {
		return nil, time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	par := n.parallel
	if par <= 0 {
		par = len(e.jobs)
	}
	slots := make(chan struct{}, par)
	res := make([]jobResult, len(e.jobs))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, j := range e.jobs {
		res[i] = jobResult{Name: j.Name, Submit: t0, State: stateCancelled}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			res[i] = runJob(ctx, e, cg, j, t0)
		}()
	}
	wg.Wait()
	return res, t0, nil
}

// runJob runs one job to its end (or ctx's) in its own measuring cgroups.
func runJob(ctx context.Context, e *runEnv, cg *cgroups, j job, t0 time.Time) jobResult {
	r := jobResult{Name: j.Name, Submit: t0, State: stateFailed}
	memDir, cpuDir, err := cg.add(j.Name)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	defer cg.drop(j.Name)
	logf, err := os.Create(filepath.Join(e.dir, "log", j.Name+".out"))
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	defer logf.Close()
	// The shell joins the job's cgroups, then becomes bash -c CMD.
	cmd := exec.CommandContext(ctx, "sh", "-c", `echo $$ > "$1" && echo $$ > "$2" && exec bash -c "$3"`, "benchmix",
		filepath.Join(memDir, "cgroup.procs"), filepath.Join(cpuDir, "cgroup.procs"), j.command(e.tools))
	cmd.Dir = e.mix
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	r.Start = time.Now()
	err = cmd.Run()
	r.End = time.Now()
	if ps := cmd.ProcessState; ps != nil {
		code := ps.ExitCode()
		r.Exit = &code
	}
	st := readJobCgroup(memDir, cpuDir)
	r.CPUS, r.PeakMemMB, r.OOMKills = round3(st.cpuS), round3(st.peakMB), st.oomKills
	switch {
	case ctx.Err() != nil:
		r.State, r.Detail = stateCancelled, "ended by the benchmark's timeout"
	case r.OOMKills > 0:
		r.State = stateOOM
	case err == nil:
		r.State = stateSucceeded
	default:
		r.Detail = err.Error()
	}
	return r
}

// cgroups is the benchmark's parent group in the cgroup v1 memory and
// cpuacct hierarchies. Its methods are safe for concurrent use on distinct
// job names.
type cgroups struct {
	mem, cpu string // parent directories
}

// newCgroups creates the parent groups, memory capped at capBytes.
func newCgroups(name string, capBytes int64) (*cgroups, error) {
	memRoot, cpuRoot := v1Mount("memory"), v1Mount("cpuacct")
	if memRoot == "" || cpuRoot == "" {
		return nil, errors.New("the naive runners need the cgroup v1 memory and cpuacct hierarchies")
	}
	c := &cgroups{mem: filepath.Join(memRoot, name), cpu: filepath.Join(cpuRoot, name)}
	for _, d := range []string{c.mem, c.cpu} {
		if err := os.Mkdir(d, 0o755); err != nil {
			c.remove()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.mem, "memory.limit_in_bytes"), []byte(strconv.FormatInt(capBytes, 10)), 0o644); err != nil {
		c.remove()
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return c, nil
}

// add creates job name's groups.
func (c *cgroups) add(name string) (memDir, cpuDir string, err error) {
	memDir, cpuDir = filepath.Join(c.mem, name), filepath.Join(c.cpu, name)
	for _, d := range []string{memDir, cpuDir} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", "", fmt.Errorf("cgroup: %w", err)
		}
	}
	return memDir, cpuDir, nil
}

// drop kills whatever is left in job name's groups and removes them.
func (c *cgroups) drop(name string) {
	for _, d := range []string{filepath.Join(c.mem, name), filepath.Join(c.cpu, name)} {
		rmCgroup(d)
	}
}

// remove removes the parent groups (and any job group left).
func (c *cgroups) remove() {
	for _, parent := range []string{c.mem, c.cpu} {
		ents, _ := os.ReadDir(parent)
		for _, ent := range ents {
			if ent.IsDir() {
				rmCgroup(filepath.Join(parent, ent.Name()))
			}
		}
		rmCgroup(parent)
	}
}

// rmCgroup kills the processes left in the group dir and removes it,
// retrying for a few seconds while they die.
func rmCgroup(dir string) {
	for range 50 {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// v1Mount returns the mount point of the cgroup v1 hierarchy holding
// controller, "" when there is none.
func v1Mount(controller string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 4 || fl[2] != "cgroup" {
			continue
		}
		for _, o := range strings.Split(fl[3], ",") {
			if o == controller {
				return fl[1]
			}
		}
	}
	return ""
}

type cgroupStats struct {
	cpuS, peakMB float64
	oomKills     int
}

// readJobCgroup reads a job's CPU time, peak memory (page cache included,
// as a v1 memory group counts it) and OOM kills from its groups.
func readJobCgroup(memDir, cpuDir string) cgroupStats {
	var st cgroupStats
	if b, err := os.ReadFile(filepath.Join(cpuDir, "cpuacct.usage")); err == nil {
		ns, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		st.cpuS = ns / 1e9
	}
	if b, err := os.ReadFile(filepath.Join(memDir, "memory.max_usage_in_bytes")); err == nil {
		v, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		st.peakMB = v / (1 << 20)
	}
	if b, err := os.ReadFile(filepath.Join(memDir, "memory.oom_control")); err == nil {
		st.oomKills = oomKills(string(b))
	}
	return st
}

// oomKills reads the oom_kill counter of a v1 memory.oom_control file.
func oomKills(s string) int {
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
