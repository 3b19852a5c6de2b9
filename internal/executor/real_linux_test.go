//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/task"
	"golang.org/x/sys/unix"
)

// These tests create real cgroups. They need root and a mounted cgroup
// hierarchy, and skip, saying why, without them.

var rootSeq atomic.Int64

// newReal returns an Executor on the real cgroupfs under a root cgroup of
// its own, and checks at cleanup that it left nothing behind.
func newReal(t testing.TB, cfg Config) *Executor {
	t.Helper()
	return newRealOn(t, cfg, realHost())
}

// newRealV1 is newReal as if the host had no cgroup v2 hierarchy: the
// v1-only code paths (thread placement alone, freezer kill, waiting on
// cgroup.procs) on real cgroups.
func newRealV1(t testing.TB, cfg Config) *Executor {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	var keep []string
	for _, line := range strings.Split(string(mi), "\n") {
		if !strings.Contains(line, " - cgroup2 ") {
			keep = append(keep, line)
		}
	}
	h := realHost()
	h.mountinfo = filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(h.mountinfo, []byte(strings.Join(keep, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newRealOn(t, cfg, h)
	if e.Mode() != V1 {
		t.Skipf("no cgroup v1 controllers here (mode %v)", e.Mode())
	}
	return e
}

func newRealOn(t testing.TB, cfg Config, h host) *Executor {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates real cgroups")
	}
	if cfg.Root == "" {
		cfg.Root = fmt.Sprintf("prescient-test-%d-%d", os.Getpid(), rootSeq.Add(1))
	}
	e, err := newExecutor(cfg, h)
	switch {
	case errors.Is(err, ErrNoCgroups):
		t.Skipf("no usable cgroup hierarchy: %v", err)
	case errors.Is(err, ErrDelegation):
		t.Skipf("cgroups not writable here: %v", err)
	case err != nil:
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if left := rootChildren(e); len(left) > 0 {
			t.Errorf("task cgroups left behind: %v", left)
		}
		if err := e.Close(); err != nil {
			t.Errorf("Executor.Close: %v", err)
		}
		for _, r := range roots(e) {
			if _, err := os.Stat(r); err == nil {
				t.Errorf("root cgroup %s still exists after Close", r)
			}
		}
	})
	return e
}

func roots(e *Executor) []string {
	var out []string
	for _, r := range e.v1Roots {
		out = append(out, r)
	}
	if e.v2Root != "" {
		out = append(out, e.v2Root)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rootChildren lists the task cgroups under the roots.
func rootChildren(e *Executor) []string {
	var out []string
	for _, r := range roots(e) {
		ents, _ := os.ReadDir(r)
		for _, de := range ents {
			if de.IsDir() {
				out = append(out, filepath.Join(r, de.Name()))
			}
		}
	}
	return out
}

func testBinary(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func helperOpts(t testing.TB, id, mode string) StartOptions {
	return StartOptions{
		ID:     id,
		Argv:   []string{testBinary(t)},
		Env:    []string{helperEnv + "=" + mode},
		LogDir: t.TempDir(),
	}
}

// start starts o and registers a cleanup that kills and closes it.
func start(t testing.TB, e *Executor, o StartOptions) *Process {
	t.Helper()
	if o.LogDir == "" {
		o.LogDir = t.TempDir()
	}
	p, err := e.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Process.Close: %v", err)
		}
	})
	return p
}

// waitWithin waits for p, failing the test (after killing p) if it takes
// longer than d.
func waitWithin(t testing.TB, p *Process, d time.Duration) Exit {
	t.Helper()
	type res struct {
		x   Exit
		err error
	}
	ch := make(chan res, 1)
	go func() {
		x, err := p.Wait()
		ch <- res{x, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Wait: %v", r.err)
		}
		return r.x
	case <-time.After(d):
		_ = p.Kill()
		<-ch
		t.Fatalf("task did not end within %v", d)
	}
	return Exit{}
}

func readLog(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cpuUsage is the CPU time the task's cgroup has used.
func cpuUsage(t testing.TB, d CgroupDirs) time.Duration {
	t.Helper()
	if dir, ok := d.V1["cpuacct"]; ok {
		b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(ns)
	}
	b, err := os.ReadFile(filepath.Join(d.V2, "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(parseFlatKeyed(b)["usage_usec"]) * time.Microsecond
}

func TestRealCPULimitCapsBusyLoop(t *testing.T) { modes(t, testCPULimit) }

func testCPULimit(t *testing.T, e *Executor) {
	p := start(t, e, StartOptions{
		ID:     "cpu",
		Argv:   []string{"sh", "-c", "while :; do :; done"},
		Limits: task.Limits{CPUCores: 0.25},
	})
	time.Sleep(200 * time.Millisecond) // let the loop get going
	c0, t0 := cpuUsage(t, p.Cgroups()), time.Now()
	time.Sleep(2 * time.Second)
	c1, t1 := cpuUsage(t, p.Cgroups()), time.Now()
	share := float64(c1-c0) / float64(t1.Sub(t0))
	t.Logf("busy loop under a 0.25-core limit used %.1f%% of a core", 100*share)
	if share > 0.30 {
		t.Errorf("CPU share %.1f%% > 30%%: the quota does not hold", 100*share)
	}
	if share < 0.05 {
		t.Errorf("CPU share %.1f%% < 5%%: the loop did not run, or is not accounted to the cgroup", 100*share)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	x := waitWithin(t, p, 10*time.Second)
	if x.Signal != syscall.SIGKILL || !x.Killed || x.OOMKilled {
		t.Errorf("exit = %+v, want SIGKILL, Killed, no OOM", x)
	}
}

// modes runs f on the host's own layout and, where that is hybrid, again
// on its v1 part alone.
func modes(t *testing.T, f func(t *testing.T, e *Executor)) {
	t.Run("host", func(t *testing.T) { f(t, newReal(t, Config{})) })
	t.Run("v1-only", func(t *testing.T) { f(t, newRealV1(t, Config{})) })
}

func TestRealMemoryLimitOOMKills(t *testing.T) { modes(t, testOOM) }

func testOOM(t *testing.T, e *Executor) {
	o := helperOpts(t, "oom", "alloc:200")
	o.Limits = task.Limits{MemoryMB: 64}
	p := start(t, e, o)
	x := waitWithin(t, p, 60*time.Second)
	if !x.OOMKilled || x.Code != -1 || x.Signal != syscall.SIGKILL || x.OOMKills < 1 || x.Killed {
		t.Errorf("exit = %+v (%v), want an OOM kill: code -1, SIGKILL, OOMKills >= 1, not Killed", x, x)
	}
	if out := readLog(t, o.LogDir, "stdout.log"); strings.Contains(out, "done") {
		t.Errorf("the task finished allocating 200 MB under a 64 MB limit: %q", out)
	}
}

// TestRealMemoryHold: under a hold (task.Limits.MemoryHoldMB) a task that
// reaches its memory limit is held there by the kernel, not OOM-killed: a
// raise lets it finish with no kill; lifting the hold without a raise
// has the kernel kill it (an OOM kill, as without a hold); a kill of a
// held task is a kill, promptly.
func TestRealMemoryHold(t *testing.T) { modes(t, testMemoryHold) }

func testMemoryHold(t *testing.T, e *Executor) {
	// held waits until the kernel holds p at its 32 MB limit: v1 reports
	// under_oom, v2 counts memory.high events with use at the limit.
	held := func(t *testing.T, p *Process) {
		t.Helper()
		d := p.Cgroups()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if dir := d.V1["memory"]; dir != "" {
				if b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control")); err == nil && strings.Contains(string(b), "under_oom 1") {
					return
				}
			} else if b, err := os.ReadFile(filepath.Join(d.V2, "memory.events")); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if f := strings.Fields(l); len(f) == 2 && f[0] == "high" && f[1] != "0" {
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("the task was not held at its limit within 30 s")
	}
	// heldTask starts a task that wants 128 MB under a 32 MB limit held to
	// 512 and waits until the kernel holds it.
	heldTask := func(t *testing.T, id string) (*Process, StartOptions) {
		o := helperOpts(t, id, "alloc:128")
		o.Limits = task.Limits{MemoryMB: 32, MemoryHoldMB: 512}
		p := start(t, e, o)
		held(t, p)
		return p, o
	}
	t.Run("raised", func(t *testing.T) {
		p, o := heldTask(t, "hold-raise")
		if err := p.Update(task.Limits{MemoryMB: 512}); err != nil {
			t.Fatal(err)
		}
		x := waitWithin(t, p, 30*time.Second)
		if x.Code != 0 || x.OOMKills != 0 {
			t.Fatalf("exit = %+v (%v), want 0 and no OOM kill: the held task did not go on after the raise", x, x)
		}
		if out := readLog(t, o.LogDir, "stdout.log"); !strings.Contains(out, "done 128") {
			t.Errorf("stdout = %q, want done 128", out)
		}
	})
	t.Run("lifted", func(t *testing.T) {
		p, _ := heldTask(t, "hold-lift")
		if err := p.Update(task.Limits{MemoryMB: 32}); err != nil {
			t.Fatal(err)
		}
		x := waitWithin(t, p, 30*time.Second)
		if !x.OOMKilled || x.OOMKills < 1 || x.Killed {
			t.Fatalf("exit = %+v (%v), want an OOM kill once the hold is lifted", x, x)
		}
	})
	t.Run("killed", func(t *testing.T) {
		p, _ := heldTask(t, "hold-kill")
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		x := waitWithin(t, p, 10*time.Second)
		if !x.Killed || x.OOMKilled {
			t.Fatalf("exit = %+v (%v), want Killed, not an OOM kill", x, x)
		}
	})
}

func TestRealMemoryChargedToTask(t *testing.T) {
	e := newReal(t, Config{})
	o := helperOpts(t, "charge", "alloc:48")
	o.Limits = task.Limits{MemoryMB: 256}
	p := start(t, e, o)
	x := waitWithin(t, p, 30*time.Second)
	if x.Code != 0 || x.OOMKills != 0 {
		t.Fatalf("exit = %+v, want 0 without OOM kills", x)
	}
	var peak uint64
	d := p.Cgroups()
	if dir, ok := d.V1["memory"]; ok {
		b, err := os.ReadFile(filepath.Join(dir, "memory.max_usage_in_bytes"))
		if err != nil {
			t.Fatal(err)
		}
		peak, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	} else if b, err := os.ReadFile(filepath.Join(d.V2, "memory.peak")); err == nil {
		peak, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	} else {
		t.Skip("no memory peak file to check")
	}
	if peak < 48<<20 {
		t.Errorf("the task's memory cgroup peaked at %d MiB, want >= 48: the task's memory is charged elsewhere", peak>>20)
	}
}

func TestRealUpdateRaisesLimitLive(t *testing.T) {
	e := newReal(t, Config{})
	gate := filepath.Join(t.TempDir(), "go")
	o := helperOpts(t, "update", "alloc-after:96:"+gate)
	o.Limits = task.Limits{MemoryMB: 32, CPUCores: 0.5, Pids: 64}
	p := start(t, e, o)
	if err := p.Update(task.Limits{MemoryMB: 512, CPUCores: 1.5, Pids: 128}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	checkLimitFiles(t, e, p, "150000", strconv.Itoa(512<<20), "128")
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	x := waitWithin(t, p, 30*time.Second)
	if x.Code != 0 || x.OOMKills != 0 {
		t.Fatalf("exit = %+v: 96 MB did not fit after raising the limit from 32 to 512 MB", x)
	}
	if out := readLog(t, o.LogDir, "stdout.log"); !strings.Contains(out, "done 96") {
		t.Errorf("stdout = %q, want done 96", out)
	}
}

func TestRealUpdateLiftsAndRefuses(t *testing.T) {
	e := newReal(t, Config{})
	p := start(t, e, StartOptions{ID: "lift", Argv: []string{"sleep", "30"},
		Limits: task.Limits{MemoryMB: 64, CPUCores: 0.5, Pids: 8}})
	if err := p.Update(task.Limits{}); err != nil {
		t.Fatalf("Update to unlimited: %v", err)
	}
	checkLimitFiles(t, e, p, "max", "max", "max")
	if err := p.Update(task.Limits{NetMbps: 10}); !errors.Is(err, ErrUnsupportedLimit) {
		t.Errorf("net limit without a limiter: err = %v, want ErrUnsupportedLimit", err)
	}
	if err := p.Update(task.Limits{CPUCores: 0.001}); !errors.Is(err, ErrUnsupportedLimit) {
		t.Errorf("cpu below the kernel minimum: err = %v, want ErrUnsupportedLimit", err)
	}
	if err := p.Update(task.Limits{CPUCores: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative cpu: err = %v, want ErrInvalid", err)
	}
	checkLimitFiles(t, e, p, "max", "max", "max") // refused updates changed nothing
}

// checkLimitFiles compares the cpu quota (µs per 100 ms, or "max"), the
// memory limit (bytes or "max") and pids.max with the cgroup files.
func checkLimitFiles(t *testing.T, e *Executor, p *Process, cpu, mem, pids string) {
	t.Helper()
	d := p.Cgroups()
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if e.Mode() == V2 {
		if got := read(filepath.Join(d.V2, "cpu.max")); got != cpu+" 100000" {
			t.Errorf("cpu.max = %q, want %q", got, cpu+" 100000")
		}
		if got := read(filepath.Join(d.V2, "memory.max")); got != mem {
			t.Errorf("memory.max = %q, want %q", got, mem)
		}
		if got := read(filepath.Join(d.V2, "pids.max")); got != pids {
			t.Errorf("pids.max = %q, want %q", got, pids)
		}
		return
	}
	if cpu == "max" {
		cpu = "-1"
	}
	if got := read(filepath.Join(d.V1["cpu"], "cpu.cfs_quota_us")); got != cpu {
		t.Errorf("cpu.cfs_quota_us = %q, want %q", got, cpu)
	}
	got := read(filepath.Join(d.V1["memory"], "memory.limit_in_bytes"))
	if mem == "max" {
		if n, _ := strconv.ParseUint(got, 10, 64); n < 1<<62 {
			t.Errorf("memory.limit_in_bytes = %q, want unlimited", got)
		}
	} else if got != mem {
		t.Errorf("memory.limit_in_bytes = %q, want %q", got, mem)
	}
	if got := read(filepath.Join(d.V1["pids"], "pids.max")); got != pids {
		t.Errorf("pids.max = %q, want %q", got, pids)
	}
}

func TestRealKillKillsChildren(t *testing.T) { modes(t, testKillChildren) }

func testKillChildren(t *testing.T, e *Executor) {
	p := start(t, e, StartOptions{ID: "kill", Argv: []string{"sh", "-c", "sleep 100 & sleep 100"}})
	var pids []int
	deadline := time.Now().Add(5 * time.Second)
	for len(pids) < 3 && time.Now().Before(deadline) { // sh and two sleeps
		time.Sleep(10 * time.Millisecond)
		var err error
		if pids, err = p.cg.pids(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if len(pids) < 3 {
		t.Fatalf("processes in the cgroup: %v, want sh and two sleeps", pids)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	x := waitWithin(t, p, 10*time.Second)
	if x.Signal != syscall.SIGKILL || x.Code != -1 || !x.Killed {
		t.Errorf("exit = %+v, want SIGKILL", x)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d survived Kill", pid)
		}
	}
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
}

func TestRealContextCancelKills(t *testing.T) {
	e := newReal(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	p, err := e.Start(ctx, StartOptions{ID: "ctx", Argv: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cancel()
	x := waitWithin(t, p, 10*time.Second)
	if x.Signal != syscall.SIGKILL || !x.Killed {
		t.Errorf("exit = %+v, want SIGKILL", x)
	}
}

func TestRealExitStatusAndConcurrentWait(t *testing.T) { modes(t, testExitStatus) }

func testExitStatus(t *testing.T, e *Executor) {
	p := start(t, e, StartOptions{ID: "code", Argv: []string{"sh", "-c", "sleep 0.2; exit 3"}})
	var wg sync.WaitGroup
	exits := make([]Exit, 8)
	for i := range exits {
		wg.Go(func() {
			x, err := p.Wait()
			if err != nil {
				t.Error(err)
			}
			exits[i] = x
		})
	}
	wg.Wait()
	for i, x := range exits {
		if x != (Exit{Code: 3}) {
			t.Errorf("Wait #%d = %+v, want code 3", i, x)
		}
	}
}

func TestRealCloseRemovesCgroups(t *testing.T) {
	e := newReal(t, Config{})
	p, err := e.Start(context.Background(), StartOptions{ID: "close", Argv: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Cgroups()
	dirs := slices.Collect(func(yield func(string) bool) {
		for _, v := range d.V1 {
			yield(v)
		}
		if d.V2 != "" {
			yield(d.V2)
		}
	})
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("cgroup %s missing while running: %v", dir, err)
		}
	}
	if err := p.Close(); err != nil { // kills first
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s still there after Close (%v)", dir, err)
		}
	}
	if x, _ := p.Wait(); x.Signal != syscall.SIGKILL || !x.Killed {
		t.Errorf("exit after Close = %+v, want SIGKILL", x)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("Kill after Close: %v", err)
	}
	if err := p.Update(task.Limits{CPUCores: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close: %v, want ErrClosed", err)
	}
}

func TestRealPlacedBeforeFirstInstruction(t *testing.T) { modes(t, testPlacement) }

func testPlacement(t *testing.T, e *Executor) {
	for _, tc := range []struct {
		name string
		argv []string
	}{
		{"task itself", []string{"cat", "/proc/self/cgroup"}},
		{"child of the task", []string{"sh", "-c", "cat /proc/self/cgroup; true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			o := StartOptions{ID: id, Argv: tc.argv, LogDir: t.TempDir(), Limits: task.Limits{CPUCores: 1, MemoryMB: 64, Pids: 16}}
			p := start(t, e, o)
			if x := waitWithin(t, p, 10*time.Second); x.Code != 0 {
				t.Fatalf("exit = %+v", x)
			}
			pc, err := parseProcCgroup(strings.NewReader(readLog(t, o.LogDir, "stdout.log")))
			if err != nil {
				t.Fatal(err)
			}
			suffix := "/" + e.cfg.Root + "/" + id
			for _, c := range v1Controllers {
				if _, used := e.lay.v1[c]; used && !strings.HasSuffix(pc.v1[c], suffix) {
					t.Errorf("%s cgroup = %q, want …%s", c, pc.v1[c], suffix)
				}
			}
			if e.v2Root != "" && !strings.HasSuffix(pc.v2, suffix) {
				t.Errorf("v2 cgroup = %q, want …%s", pc.v2, suffix)
			}
		})
	}
	// The launching threads went home: this process is in no task cgroup.
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(own, []byte(e.cfg.Root)) {
		t.Errorf("this process is left in a task cgroup:\n%s", own)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/cgroup")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(e.cfg.Root)) {
			t.Errorf("thread %s is left in a task cgroup:\n%s", f, b)
		}
	}
}

func TestRealPidsLimit(t *testing.T) {
	e := newReal(t, Config{})
	for _, tc := range []struct {
		pids       int64
		wantForked bool
	}{{1, false}, {2, true}} {
		t.Run(strconv.FormatInt(tc.pids, 10), func(t *testing.T) {
			o := StartOptions{ID: "pids" + strconv.FormatInt(tc.pids, 10), LogDir: t.TempDir(),
				// Builtins only until the fork: the limit is exact once the
				// launch settles, microseconds after exec (see startMigrated).
				Argv:   []string{"sh", "-c", `i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; /bin/true && echo forked`},
				Limits: task.Limits{Pids: tc.pids}}
			p := start(t, e, o)
			max, err := os.ReadFile(filepath.Join(p.Cgroups().V1["pids"], "pids.max"))
			if e.Mode() == V2 {
				max, err = os.ReadFile(filepath.Join(p.Cgroups().V2, "pids.max"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(max)); got != strconv.FormatInt(tc.pids, 10) {
				t.Errorf("pids.max = %s, want %d", got, tc.pids)
			}
			waitWithin(t, p, 10*time.Second)
			if got := strings.Contains(readLog(t, o.LogDir, "stdout.log"), "forked"); got != tc.wantForked {
				t.Errorf("forked = %v with pids.max %d, want %v (stderr %q)", got, tc.pids, tc.wantForked, readLog(t, o.LogDir, "stderr.log"))
			}
		})
	}
}

func TestRealIOPSLimit(t *testing.T) {
	e := newReal(t, Config{})
	dir := t.TempDir()
	dev, err := e.ioDevice(dir)
	if errors.Is(err, ErrUnsupportedLimit) {
		t.Skipf("no block device behind %s: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	const iops, writes = 50, 100
	o := StartOptions{ID: "iops", Dir: dir, LogDir: t.TempDir(), Limits: task.Limits{IOPS: iops},
		Argv: []string{"dd", "if=/dev/zero", "of=f", "bs=4096", "count=" + strconv.Itoa(writes), "oflag=direct"}}
	began := time.Now()
	p := start(t, e, o)
	rule := filepath.Join(p.Cgroups().V1["blkio"], "blkio.throttle.write_iops_device")
	want := dev + " " + strconv.Itoa(iops)
	if e.Mode() == V2 {
		rule, want = filepath.Join(p.Cgroups().V2, "io.max"), dev+" rbps=max wbps=max riops=50 wiops=50"
	}
	b, err := os.ReadFile(rule)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("%s = %q, want it to hold %q", rule, b, want)
	}
	x := waitWithin(t, p, 30*time.Second)
	took := time.Since(began)
	if x.Code != 0 {
		t.Fatalf("dd: %+v: %s", x, readLog(t, o.LogDir, "stderr.log"))
	}
	t.Logf("%d direct writes at %d iops took %v", writes, iops, took)
	// 100 writes at 50/s take ~2 s; allow for the throttle's first slice.
	if took < time.Second {
		t.Errorf("%d direct writes took %v under a %d iops limit, want >= 1s", writes, took, iops)
	}
	if err := p.Update(task.Limits{}); err != nil {
		t.Fatalf("lift the iops limit: %v", err)
	}
	b, _ = os.ReadFile(rule)
	if strings.Contains(string(b), want) {
		t.Errorf("%s = %q after lifting the limit", rule, b)
	}
}

func TestRealEnvDirLogsTee(t *testing.T) {
	e := newReal(t, Config{})
	dir := t.TempDir()
	var out, errOut syncBuffer
	o := StartOptions{
		ID: "env", Dir: dir, LogDir: filepath.Join(t.TempDir(), "logs", "env"),
		Argv:   []string{"sh", "-c", `echo "FOO=$FOO"; pwd; echo oops >&2; exit 7`},
		Env:    []string{"FOO=bar", "PATH=/usr/bin:/bin"},
		Stdout: &out, Stderr: &errOut,
	}
	p := start(t, e, o)
	if x := waitWithin(t, p, 10*time.Second); x.Code != 7 {
		t.Errorf("exit = %+v, want 7", x)
	}
	wantOut := "FOO=bar\n" + dir + "\n"
	for _, f := range []struct{ name, want, tee string }{
		{"stdout.log", wantOut, out.String()},
		{"stderr.log", "oops\n", errOut.String()},
	} {
		if got := readLog(t, o.LogDir, f.name); got != f.want {
			t.Errorf("%s = %q, want %q", f.name, got, f.want)
		}
		if f.tee != f.want {
			t.Errorf("tee of %s = %q, want %q", f.name, f.tee, f.want)
		}
		st, err := os.Stat(filepath.Join(o.LogDir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f.name, st.Mode().Perm())
		}
	}
}

func TestRealCredential(t *testing.T) {
	e := newReal(t, Config{})
	o := StartOptions{ID: "cred", Dir: "/", LogDir: t.TempDir(),
		Argv: []string{"id", "-u"}, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	p := start(t, e, o)
	if x := waitWithin(t, p, 10*time.Second); x.Code != 0 {
		t.Fatalf("exit = %+v: %s", x, readLog(t, o.LogDir, "stderr.log"))
	}
	if got := strings.TrimSpace(readLog(t, o.LogDir, "stdout.log")); got != "65534" {
		t.Errorf("uid = %q, want 65534", got)
	}
}

// fakeNet records what a NetLimiter is told.
type fakeNet struct {
	mu   sync.Mutex
	set  map[uint64]float64
	fail bool
}

func (f *fakeNet) SetNetLimit(id uint64, mbps float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("limiter is broken")
	}
	if f.set == nil {
		f.set = map[uint64]float64{}
	}
	f.set[id] = mbps
	return nil
}

func (f *fakeNet) ClearNetLimit(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.set, id)
}

func (f *fakeNet) get(id uint64) (float64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.set[id]
	return v, ok
}

func TestRealNetLimiter(t *testing.T) {
	net := &fakeNet{}
	e := newReal(t, Config{NetLimiter: net})
	if e.V2Root() == "" {
		t.Skip("no cgroup v2 hierarchy: network limits are refused")
	}
	p, err := e.Start(context.Background(), StartOptions{ID: "net", Argv: []string{"sleep", "100"}, Limits: task.Limits{NetMbps: 20}})
	if err != nil {
		t.Fatal(err)
	}
	id := p.Cgroups().CgroupID
	var st unix.Stat_t
	if err := unix.Stat(p.Cgroups().V2, &st); err != nil || st.Ino != id {
		t.Fatalf("CgroupID %d, inode of %s %d (%v)", id, p.Cgroups().V2, st.Ino, err)
	}
	if v, ok := net.get(id); !ok || v != 20 {
		t.Errorf("limiter has %v %v, want 20", v, ok)
	}
	if err := p.Update(task.Limits{NetMbps: 5}); err != nil {
		t.Fatal(err)
	}
	if v, _ := net.get(id); v != 5 {
		t.Errorf("after Update limiter has %v, want 5", v)
	}
	if err := p.Update(task.Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := net.get(id); ok {
		t.Error("limit still set after lifting it")
	}
	if err := p.Update(task.Limits{NetMbps: 8}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := net.get(id); ok {
		t.Error("limit still set after Close")
	}
	// A failing limiter fails Start and leaves nothing.
	net.fail = true
	if _, err := e.Start(context.Background(), StartOptions{ID: "net2", Argv: []string{"true"}, Limits: task.Limits{NetMbps: 1}}); err == nil {
		t.Error("Start with a failing limiter succeeded")
	}
}

func TestRealBadInputLeavesNothing(t *testing.T) {
	e := newReal(t, Config{})
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badInterp := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(badInterp, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noDisk := "/dev/shm" // tmpfs: no block device
	if _, err := os.Stat(noDisk); err != nil {
		noDisk = "/proc"
	}
	busy := start(t, e, StartOptions{ID: "busy", Argv: []string{"sleep", "100"}})
	for _, tc := range []struct {
		name string
		o    StartOptions
		want error
	}{
		{"missing program", StartOptions{ID: "a", Argv: []string{"no-such-program-xyz"}}, ErrNotFound},
		{"missing path", StartOptions{ID: "a", Argv: []string{"/no/such/program"}}, ErrNotFound},
		{"not executable", StartOptions{ID: "a", Argv: []string{notExec}}, ErrNotExecutable},
		{"directory", StartOptions{ID: "a", Argv: []string{"/"}}, ErrNotExecutable},
		{"missing interpreter", StartOptions{ID: "a", Argv: []string{badInterp}}, ErrNotFound},
		{"missing dir", StartOptions{ID: "a", Argv: []string{"true"}, Dir: "/no/such/dir"}, ErrNotFound},
		{"empty argv", StartOptions{ID: "a"}, ErrInvalid},
		{"bad id", StartOptions{ID: "../x", Argv: []string{"true"}}, ErrInvalid},
		{"id of a cgroup file", StartOptions{ID: "cgroup.procs", Argv: []string{"true"}}, ErrInvalid},
		{"duplicate id", StartOptions{ID: "busy", Argv: []string{"true"}}, ErrExists},
		{"negative limit", StartOptions{ID: "a", Argv: []string{"true"}, Limits: task.Limits{MemoryMB: -1}}, ErrInvalid},
		{"cpu below kernel minimum", StartOptions{ID: "a", Argv: []string{"true"}, Limits: task.Limits{CPUCores: 0.001}}, ErrUnsupportedLimit},
		{"iops without block device", StartOptions{ID: "a", Argv: []string{"true"}, Dir: noDisk, Limits: task.Limits{IOPS: 100}}, ErrUnsupportedLimit},
		{"net without limiter", StartOptions{ID: "a", Argv: []string{"true"}, Limits: task.Limits{NetMbps: 10}}, ErrUnsupportedLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.LogDir = t.TempDir()
			p, err := e.Start(context.Background(), tc.o)
			if err == nil {
				p.Close()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			t.Logf("%v", err)
			for _, c := range rootChildren(e) {
				if filepath.Base(c) != "busy" {
					t.Errorf("cgroup left behind: %s", c)
				}
			}
		})
	}
	// The running task was not disturbed by the duplicate.
	if empty, err := busy.cg.empty(os.Getpid()); err != nil || empty {
		t.Errorf("task busy is gone after a duplicate Start (empty=%v, %v)", empty, err)
	}
}

func TestRealAdopt(t *testing.T) {
	e := newReal(t, Config{})
	p := start(t, e, StartOptions{ID: "adopt", Argv: []string{"sh", "-c", "sleep 0.5; echo hi"}})
	e2, err := New(Config{Root: e.cfg.Root}) // a restarted daemon
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Adopt("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Adopt of a missing task: %v, want ErrNotFound", err)
	}
	a, err := e2.Adopt("adopt")
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if a.Pid() != p.Pid() {
		t.Errorf("adopted pid %d, want %d", a.Pid(), p.Pid())
	}
	if a.Cgroups().CgroupID != p.Cgroups().CgroupID {
		t.Errorf("adopted cgroup id %d, want %d", a.Cgroups().CgroupID, p.Cgroups().CgroupID)
	}
	if err := a.Update(task.Limits{CPUCores: 0.5, MemoryMB: 128}); err != nil {
		t.Errorf("Update of an adopted task: %v", err)
	}
	x := waitWithin(t, a, 10*time.Second)
	if !x.Unknown || x.Code != -1 || x.OOMKilled {
		t.Errorf("adopted exit = %+v, want Unknown, code -1", x)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close adopted: %v", err)
	}
	if x, err := p.Wait(); err != nil || x.Code != 0 {
		t.Errorf("original Wait = %+v, %v", x, err)
	}
	if err := e2.Close(); err != nil {
		t.Errorf("second executor Close: %v", err)
	}
}

func TestRealExecutorCloseBusy(t *testing.T) {
	e := newReal(t, Config{})
	e2, err := New(Config{Root: e.cfg.Root})
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, e, StartOptions{ID: "stay", Argv: []string{"sleep", "100"}})
	if err := e2.Close(); !errors.Is(err, ErrBusy) {
		t.Errorf("Close with a live task: %v, want ErrBusy", err)
	}
	if _, err := e2.Start(context.Background(), StartOptions{ID: "x", Argv: []string{"true"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if empty, _ := p.cg.empty(os.Getpid()); empty {
		t.Error("Executor.Close disturbed a live task")
	}
}

// alive reports whether pid runs: it exists and is not a zombie (an
// orphan waiting for init to reap it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// syncBuffer is a bytes.Buffer safe for the tee goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRealLaunchFromMainThread takes the path Start takes when called on
// the main thread, which must never enter a task's cgroups itself.
func TestRealLaunchFromMainThread(t *testing.T) {
	e := newReal(t, Config{})
	if len(e.v1Roots) == 0 {
		t.Skip("no cgroup v1 controllers: no thread placement")
	}
	var calls atomic.Int32
	isMain := e.h.onMainThread
	e.h.onMainThread = func() bool { return calls.Add(1) == 1 || isMain() }
	o := StartOptions{ID: "main", Argv: []string{"cat", "/proc/self/cgroup"}, LogDir: t.TempDir()}
	p := start(t, e, o)
	if x := waitWithin(t, p, 10*time.Second); x.Code != 0 {
		t.Fatalf("exit = %+v", x)
	}
	// Twice at least: the hand-off and the nested launch (more if the
	// nested goroutine happened to land on the real main thread).
	if n := calls.Load(); n < 2 {
		t.Errorf("onMainThread called %d times, want >= 2", n)
	}
	pc, err := parseProcCgroup(strings.NewReader(readLog(t, o.LogDir, "stdout.log")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/" + e.cfg.Root + "/main"; !strings.HasSuffix(pc.v1["memory"], want) {
		t.Errorf("memory cgroup %q, want …%s", pc.v1["memory"], want)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/cgroup")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(e.cfg.Root)) {
			t.Errorf("thread %s is left in a task cgroup:\n%s", f, b)
		}
	}
}

// TestRealNewWithoutWriteAccess runs New as uid nobody, in a copy of the
// test binary, and expects ErrDelegation naming the path it could not write.
func TestRealNewWithoutWriteAccess(t *testing.T) {
	e := newReal(t, Config{})                        // skips without root or cgroups
	dir, err := os.MkdirTemp("", "executor-nobody-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(testBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "executor.test")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	root := e.cfg.Root + "-nobody"
	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = []string{helperEnv + "=new:" + root}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	t.Logf("as nobody: %s", msg)
	if err != nil {
		t.Fatalf("New as nobody did not fail with ErrDelegation: %v: %s", err, msg)
	}
	if !strings.Contains(msg, "/"+root) || !strings.Contains(msg, "permission denied") || strings.Contains(msg, "\n") {
		t.Errorf("error %q should be one line naming the directory under %s it could not create", msg, root)
	}
	for _, r := range roots(e) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(r), root)); err == nil {
			t.Errorf("a root cgroup was created as nobody next to %s", r)
		}
	}
}

// TestRealRootRecreated: another Executor on the same Root (a per-task
// shim) may remove the empty root on Close; Start puts it back.
func TestRealRootRecreated(t *testing.T) {
	e := newReal(t, Config{})
	e2, err := New(Config{Root: e.cfg.Root})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range roots(e) {
		if _, err := os.Stat(r); err == nil {
			t.Fatalf("root %s still there after the other executor's Close", r)
		}
	}
	o := StartOptions{ID: "again", Argv: []string{"cat", "/proc/self/cgroup"}, LogDir: t.TempDir(), Limits: task.Limits{CPUCores: 0.5}}
	p := start(t, e, o)
	if x := waitWithin(t, p, 10*time.Second); x.Code != 0 {
		t.Fatalf("exit = %+v", x)
	}
	if !strings.Contains(readLog(t, o.LogDir, "stdout.log"), e.cfg.Root+"/again") {
		t.Errorf("task not in its cgroup:\n%s", readLog(t, o.LogDir, "stdout.log"))
	}
}

// TestRealCredentialPathChecks checks that Start's checks of the working
// directory and the program, for a task run as another user, give the
// reply that user's shell would: inside a root 0700 directory a name that
// exists and one that does not are refused alike, with "permission
// denied", and a root-only program (0700) is not executable for the user.
// (Checked as root, the existing name passed and the missing one was
// ErrNotFound: a user learnt what a 0700 directory holds.)
func TestRealCredentialPathChecks(t *testing.T) {
	e := newReal(t, Config{})
	root, err := os.MkdirTemp("", "executor-cred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	private := filepath.Join(root, "private")
	for _, d := range []string{root, filepath.Join(private, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(private, "prog")
	rootOnly := filepath.Join(root, "root-only")
	for _, p := range []string{prog, rootOnly} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\ntrue\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}
	startErr := func(o StartOptions) error {
		o.ID, o.LogDir, o.Credential = "cred-check", t.TempDir(), nobody
		p, err := e.Start(context.Background(), o)
		if err == nil {
			_, _ = p.Wait()
			p.Close()
			return nil
		}
		return err
	}
	pairs := []struct {
		name            string
		exists, missing StartOptions
		pathE, pathM    string // their paths, replaced to compare the errors
	}{
		{"working directory",
			StartOptions{Argv: []string{"/bin/true"}, Dir: filepath.Join(private, "dir")},
			StartOptions{Argv: []string{"/bin/true"}, Dir: filepath.Join(private, "nodir")},
			filepath.Join(private, "dir"), filepath.Join(private, "nodir")},
		{"program",
			StartOptions{Argv: []string{prog}, Dir: "/"},
			StartOptions{Argv: []string{filepath.Join(private, "noprog")}, Dir: "/"},
			prog, filepath.Join(private, "noprog")},
	}
	for _, tc := range pairs {
		t.Run(tc.name, func(t *testing.T) {
			errE, errM := startErr(tc.exists), startErr(tc.missing)
			t.Logf("existing: %v; missing: %v", errE, errM)
			if errE == nil || errM == nil {
				t.Fatalf("started: existing %v, missing %v; want both refused", errE, errM)
			}
			if strings.ReplaceAll(errE.Error(), tc.pathE, "P") != strings.ReplaceAll(errM.Error(), tc.pathM, "P") {
				t.Errorf("the replies differ: %q and %q", errE, errM)
			}
			if !errors.Is(errE, fs.ErrPermission) || errors.Is(errE, ErrNotFound) || errors.Is(errM, ErrNotFound) {
				t.Errorf("err = %v, want permission denied and not ErrNotFound", errE)
			}
		})
	}
	t.Run("root-only program", func(t *testing.T) {
		err := startErr(StartOptions{Argv: []string{rootOnly}, Dir: "/"})
		if !errors.Is(err, ErrNotExecutable) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("err = %v, want ErrNotExecutable, permission denied", err)
		}
	})
	if c := rootChildren(e); len(c) != 0 {
		t.Errorf("cgroups left behind: %v", c)
	}
}

// TestRealCPUShare: a task's CPU share lands in its cgroup as v1
// cpu.shares (1024 per core) or v2 cpu.weight (100 per core) and follows
// a live update.
func TestRealCPUShare(t *testing.T) {
	e := newReal(t, Config{})
	p := start(t, e, StartOptions{ID: "share", Argv: []string{"sleep", "30"}, Limits: task.Limits{CPUShare: 0.5}})
	read := func() string {
		cg := p.Cgroups()
		if d := cg.V1["cpu"]; d != "" {
			b, _ := os.ReadFile(filepath.Join(d, "cpu.shares"))
			return strings.TrimSpace(string(b))
		}
		if cg.V2 != "" {
			b, err := os.ReadFile(filepath.Join(cg.V2, "cpu.weight"))
			if err != nil {
				t.Skip("no v2 cpu controller: " + err.Error())
			}
			return strings.TrimSpace(string(b))
		}
		t.Skip("no cpu controller")
		return ""
	}
	want := func(cores float64) string {
		if p.Cgroups().V1["cpu"] != "" {
			return strconv.FormatUint(sharesV1(cores), 10)
		}
		return strconv.FormatUint(weightV2(cores), 10)
	}
	if got := read(); got != want(0.5) {
		t.Fatalf("share at start = %s, want %s", got, want(0.5))
	}
	if err := p.Update(task.Limits{CPUShare: 2}); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != want(2) {
		t.Fatalf("share after update = %s, want %s", got, want(2))
	}
}
