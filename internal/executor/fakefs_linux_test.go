//go:build linux

package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prescient-sched/prescient/internal/task"
	"golang.org/x/sys/unix"
)

// fakeFS is a cgroupfs in a temporary directory, with the kernel rules the
// executor relies on: a non-root v2 cgroup with processes cannot delegate
// controllers, writing a pid to cgroup.procs moves it, subtree_control takes
// "+ctrl -ctrl" edits, and v1 memory limits read back -1 as a huge number.
// It runs anywhere, without root.
type fakeFS struct {
	dir string

	mu     sync.Mutex
	writes []string                             // "relpath=data", in order
	fail   func(path string, data []byte) error // injected failures
}

const fakePid = 4242

func newFakeFS(t *testing.T) *fakeFS {
	return &fakeFS{dir: t.TempDir()}
}

func (f *fakeFS) path(rel string) string { return filepath.Join(f.dir, rel) }

// file creates rel (and its parents) with content.
func (f *fakeFS) file(t *testing.T, rel, content string) {
	t.Helper()
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// populate creates the control files the kernel creates with a cgroup
// directory (the library writes them with mode 0, as cgroupfs files always
// exist; without this a non-root test could not read them back).
func (f *fakeFS) populate(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, v := range files {
		f.file(t, filepath.Join(dir, name), v)
	}
}

func (f *fakeFS) read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(f.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (f *fakeFS) host() host {
	return host{
		mountinfo:    f.path("proc/mountinfo"),
		selfCgroup:   f.path("proc/cgroup"),
		sysDevBlock:  f.path("sys/dev/block"),
		pid:          fakePid,
		write:        f.write,
		onMainThread: func() bool { return unix.Gettid() == unix.Getpid() },
	}
}

func (f *fakeFS) written() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

func (f *fakeFS) write(path string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rel, _ := filepath.Rel(f.dir, path)
	f.writes = append(f.writes, rel+"="+string(data))
	if f.fail != nil {
		if err := f.fail(path, data); err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
	}
	dir, name := filepath.Split(path)
	dir = filepath.Clean(dir)
	switch {
	case name == "cgroup.subtree_control":
		if procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); strings.TrimSpace(string(procs)) != "" &&
			dir != filepath.Join(f.dir, "v2") { // the root cgroup may hold processes
			return &fs.PathError{Op: "write", Path: path, Err: unix.EBUSY}
		}
		have, _ := readControllers(path)
		for _, tok := range strings.Fields(string(data)) {
			have[tok[1:]] = tok[0] == '+'
		}
		var on []string
		for c, ok := range have {
			if ok {
				on = append(on, c)
			}
		}
		slices.Sort(on)
		return os.WriteFile(path, []byte(strings.Join(on, " ")), 0o644)
	case name == "cgroup.procs":
		pid := strings.TrimSpace(string(data))
		_ = filepath.WalkDir(f.dir, func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.Name() == "cgroup.procs" && p != path {
				b, _ := os.ReadFile(p)
				lines := slices.DeleteFunc(strings.Fields(string(b)), func(s string) bool { return s == pid })
				_ = os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
			}
			return nil
		})
		old, _ := os.ReadFile(path)
		return os.WriteFile(path, append(old, []byte(pid+"\n")...), 0o644)
	case strings.HasSuffix(name, "limit_in_bytes") && string(data) == "-1":
		return os.WriteFile(path, []byte("9223372036854771712"), 0o644)
	}
	return os.WriteFile(path, data, 0o644)
}

// v2Fake lays out a pure v2 host: the hierarchy at <dir>/v2, this process
// alone in /svc, whose parent delegates ctrls.
func v2Fake(t *testing.T, ctrls string) *fakeFS {
	f := newFakeFS(t)
	f.file(t, "proc/mountinfo", fmt.Sprintf(
		"25 30 0:22 / /sys rw - sysfs sysfs rw\n29 25 0:26 / %s rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", f.path("v2")))
	f.file(t, "proc/cgroup", "0::/svc\n")
	f.file(t, "v2/cgroup.controllers", "cpuset cpu io memory pids")
	f.file(t, "v2/cgroup.subtree_control", "cpu io memory pids")
	f.file(t, "v2/svc/cgroup.controllers", ctrls)
	f.file(t, "v2/svc/cgroup.subtree_control", "")
	f.file(t, "v2/svc/cgroup.procs", strconv.Itoa(fakePid)+"\n")
	return f
}

func TestFakeV2NewDelegatesControllers(t *testing.T) {
	f := v2Fake(t, "cpu io memory pids")
	e, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode() != V2 || e.V2Root() != f.path("v2/svc/prescient") {
		t.Fatalf("mode %v, v2 root %q", e.Mode(), e.V2Root())
	}
	for rel, want := range map[string]string{
		"v2/svc/cgroup.subtree_control":           "cpu io memory pids",
		"v2/svc/prescient/cgroup.subtree_control": "cpu io memory pids",
		"v2/svc/daemon/cgroup.procs":              strconv.Itoa(fakePid),
		"v2/svc/cgroup.procs":                     "",
	} {
		if got := f.read(t, rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	for _, c := range v2Controllers {
		if !e.v2Ctrl[c] {
			t.Errorf("controller %s not delegated to task cgroups", c)
		}
	}
	// A second Executor in a process now in the leaf (a shim the daemon
	// spawned) finds the same root and moves nothing.
	f.writes = nil
	f.file(t, "proc/cgroup", "0::/svc/daemon\n")
	e2, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	if e2.V2Root() != e.V2Root() {
		t.Errorf("executor in the leaf uses root %q, want %q", e2.V2Root(), e.V2Root())
	}
	for _, w := range f.written() {
		if strings.Contains(w, "cgroup.procs") {
			t.Errorf("restart wrote %s", w)
		}
	}
}

func TestFakeV2NewErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		procs    string
		fail     func(string, []byte) error
		want     error
		contains string
	}{
		{
			name: "other processes in our cgroup", procs: "4242\n999\n",
			want: unix.EBUSY, contains: "other processes remain in " + "%s/v2/svc/cgroup.procs",
		},
		{
			name: "subtree_control not writable", procs: "4242\n",
			fail: func(p string, _ []byte) error {
				if strings.HasSuffix(p, "svc/cgroup.subtree_control") {
					return unix.EACCES
				}
				return nil
			},
			want: ErrDelegation, contains: "%s/v2/svc/cgroup.subtree_control",
		},
		{
			name: "cannot move ourselves", procs: "4242\n",
			fail: func(p string, _ []byte) error {
				if strings.HasSuffix(p, "daemon/cgroup.procs") {
					return unix.EPERM
				}
				return nil
			},
			want: ErrDelegation, contains: "%s/v2/svc/daemon/cgroup.procs",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := v2Fake(t, "cpu io memory pids")
			f.file(t, "v2/svc/cgroup.procs", tc.procs)
			f.fail = tc.fail
			_, err := newExecutor(Config{}, f.host())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if want := fmt.Sprintf(tc.contains, f.dir); !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to name %q", err, want)
			}
			if _, err := os.Stat(f.path("v2/svc/prescient")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("root cgroup created despite the error (%v)", err)
			}
		})
	}
}

func TestFakeV2NestedRootAndMissingController(t *testing.T) {
	f := v2Fake(t, "cpu memory pids") // no io delegated to us
	e, err := newExecutor(Config{Root: "a/b"}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"v2/svc", "v2/svc/a", "v2/svc/a/b"} {
		if got := f.read(t, rel+"/cgroup.subtree_control"); got != "cpu memory pids" {
			t.Errorf("%s/cgroup.subtree_control = %q", rel, got)
		}
	}
	err = e.checkLimits(cgLimits{iops: 10}, nil)
	if !errors.Is(err, ErrUnsupportedLimit) || !strings.Contains(err.Error(), "io controller") {
		t.Errorf("iops without io controller: %v", err)
	}
	if err := e.checkLimits(cgLimits{cpuQuotaUS: 5000, memBytes: 1 << 20, pids: 3}, nil); err != nil {
		t.Errorf("cpu/memory/pids: %v", err)
	}
}

func TestFakeV2LimitFiles(t *testing.T) {
	f := v2Fake(t, "cpu io memory pids")
	f.file(t, "v2/svc/prescient/memory.swap.max", "max") // swap accounting on
	e, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	tc, err := e.createCgroup("t1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.createCgroup("t1"); !errors.Is(err, ErrExists) {
		t.Errorf("second createCgroup: %v, want ErrExists", err)
	}
	f.populate(t, "v2/svc/prescient/t1", map[string]string{
		"cpu.max": "max 100000", "memory.max": "max", "memory.swap.max": "max", "io.max": "", "pids.max": "max",
	})
	lim, err := translate(task.Limits{CPUCores: 0.25, MemoryMB: 64, IOPS: 100, Pids: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.applyLimits(tc, lim, cgLimits{}, false, "8:0", 0); err != nil {
		t.Fatal(err)
	}
	p := &Process{e: e, id: "t1", cg: tc, limits: lim, known: true, ioDev: "8:0", log: e.log}
	check := func(want map[string]string) {
		t.Helper()
		for file, w := range want {
			if got := f.read(t, "v2/svc/prescient/t1/"+file); got != w {
				t.Errorf("%s = %q, want %q", file, got, w)
			}
		}
	}
	check(map[string]string{
		"cpu.max": "25000 100000", "memory.max": "67108864", "memory.swap.max": "0",
		"io.max": "8:0 riops=100 wiops=100", "pids.max": "10",
	})
	// Only what changes is written.
	f.file(t, "v2/svc/prescient/t1/memory.max", "untouched")
	if err := p.Update(task.Limits{CPUCores: 2, MemoryMB: 64, IOPS: 100, Pids: 10}); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"cpu.max": "200000 100000", "memory.max": "untouched"})
	// A hold: throttled at memory.high (the limit), killed only at
	// memory.max (the hold); lifted, memory.high is max again.
	if err := p.Update(task.Limits{CPUCores: 2, MemoryMB: 32, MemoryHoldMB: 256, IOPS: 100, Pids: 10}); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"memory.max": "268435456", "memory.high": "33554432"})
	if err := p.Update(task.Limits{CPUCores: 2, MemoryMB: 300, IOPS: 100, Pids: 10}); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"memory.max": "314572800", "memory.high": "9223372036854775807"})
	if err := p.Update(task.Limits{}); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{
		"cpu.max": "max 100000", "memory.max": "9223372036854775807", "memory.swap.max": "9223372036854775807",
		"io.max": "8:0 riops=max wiops=max", "pids.max": "max",
	})
	if id := tc.dirs.CgroupID; id == 0 {
		t.Error("no cgroup id")
	}
}

// v1Fake lays out a pure v1 host with cpu and cpuacct co-mounted and this
// process in a nested memory cgroup, as on the machines Prescient grew up on.
func v1Fake(t *testing.T) *fakeFS {
	f := newFakeFS(t)
	var mi strings.Builder
	for i, m := range []string{"cpu,cpuacct", "memory", "blkio", "pids", "freezer", "cpuset"} {
		fmt.Fprintf(&mi, "%d 25 0:%d / %s rw,nosuid - cgroup cgroup rw,%s\n", 30+i, 30+i, f.path("v1/"+m), m)
	}
	fmt.Fprintf(&mi, "40 25 0:40 / %s rw - cgroup cgroup rw,name=systemd\n", f.path("v1/systemd"))
	f.file(t, "proc/mountinfo", mi.String())
	f.file(t, "proc/cgroup", "9:name=systemd:/\n6:cpuset:/\n5:freezer:/\n4:pids:/\n3:blkio:/\n2:memory:/process_api/x\n1:cpu,cpuacct:/\n")
	for _, d := range []string{"cpu,cpuacct", "memory/process_api/x", "blkio", "pids", "freezer", "cpuset"} {
		f.file(t, "v1/"+d+"/tasks", "")
	}
	f.file(t, "v1/memory/process_api/x/prescient/memory.memsw.limit_in_bytes", "9223372036854771712")
	return f
}

func TestFakeV1LayoutAndLimits(t *testing.T) {
	f := v1Fake(t)
	e, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode() != V1 || e.V2Root() != "" || !e.memsw {
		t.Fatalf("mode %v, v2 root %q, memsw %v", e.Mode(), e.V2Root(), e.memsw)
	}
	if _, ok := e.v1Roots["cpuset"]; ok {
		t.Error("a cpuset cgroup would be created")
	}
	tc, err := e.createCgroup("t1")
	if err != nil {
		t.Fatal(err)
	}
	if tc.dirs.V1["cpu"] != tc.dirs.V1["cpuacct"] || tc.dirs.V1["cpu"] != f.path("v1/cpu,cpuacct/prescient/t1") {
		t.Errorf("cpu %q, cpuacct %q", tc.dirs.V1["cpu"], tc.dirs.V1["cpuacct"])
	}
	if tc.dirs.V1["memory"] != f.path("v1/memory/process_api/x/prescient/t1") {
		t.Errorf("memory dir %q", tc.dirs.V1["memory"])
	}
	if len(tc.v1Dirs) != 5 || len(tc.dirs.V1) != 6 {
		t.Errorf("v1 dirs %v, controllers %v", tc.v1Dirs, tc.dirs.V1)
	}
	f.populate(t, "v1/memory/process_api/x/prescient/t1", map[string]string{
		"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
	})
	f.populate(t, "v1/cpu,cpuacct/prescient/t1", map[string]string{"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"})
	f.populate(t, "v1/blkio/prescient/t1", map[string]string{"blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""})

	mem := func() []string { // the memory writes since the last call, in order
		var out []string
		for _, w := range f.written() {
			if strings.Contains(w, "limit_in_bytes") || strings.Contains(w, "oom_control") {
				out = append(out, filepath.Base(w))
			}
		}
		f.mu.Lock()
		f.writes = nil
		f.mu.Unlock()
		return out
	}
	lim, _ := translate(task.Limits{CPUCores: 0.25, MemoryMB: 512, IOPS: 100, Pids: 10})
	if err := e.applyLimits(tc, lim, cgLimits{}, false, "8:0", 1); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu,cpuacct/prescient/t1/cpu.cfs_quota_us":                     "25000",
		"cpu,cpuacct/prescient/t1/cpu.cfs_period_us":                    "100000",
		"memory/process_api/x/prescient/t1/memory.limit_in_bytes":       "536870912",
		"memory/process_api/x/prescient/t1/memory.memsw.limit_in_bytes": "536870912",
		"blkio/prescient/t1/blkio.throttle.read_iops_device":            "8:0 100",
		"blkio/prescient/t1/blkio.throttle.write_iops_device":           "8:0 100",
		"pids/prescient/t1/pids.max":                                    "11", // + the launching thread
	} {
		if got := f.read(t, "v1/"+file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// memsw may never drop below the limit: lower the limit first, raise
	// memsw first.
	prev := lim
	for _, step := range []struct {
		mb   float64
		want []string
	}{
		{0, nil}, // (first call flushes the writes above)
		{64, []string{"memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=67108864"}},
		{1024, []string{"memory.memsw.limit_in_bytes=1073741824", "memory.limit_in_bytes=1073741824"}},
		{0, []string{"memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"}},
	} {
		if step.want == nil {
			mem()
			continue
		}
		l := lim
		l.memBytes = int64(step.mb * (1 << 20))
		if err := e.applyV1(tc, l, prev, false, false, false, true, false, false, "", 0); err != nil {
			t.Fatal(err)
		}
		if got := mem(); !slices.Equal(got, step.want) {
			t.Errorf("memory %v MB: writes %v, want %v", step.mb, got, step.want)
		}
		prev = l
	}
	// A hold turns the OOM killer off before the lower limit bites and
	// back on only after the raise; a hold that only moves writes no
	// oom_control; lifting it where the limit stays turns the killer on.
	for _, step := range []struct {
		mb, hold float64
		want     []string
	}{
		{1024, 0, []string{"memory.limit_in_bytes=1073741824", "memory.memsw.limit_in_bytes=1073741824"}}, // down from -1
		{64, 1024, []string{"memory.oom_control=1", "memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=67108864"}},
		{128, 1024, []string{"memory.memsw.limit_in_bytes=134217728", "memory.limit_in_bytes=134217728"}},
		{1024, 0, []string{"memory.memsw.limit_in_bytes=1073741824", "memory.limit_in_bytes=1073741824", "memory.oom_control=0"}},
		{64, 1024, []string{"memory.oom_control=1", "memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=67108864"}},
		{64, 0, []string{"memory.oom_control=0"}}, // the same limit is not written: EBUSY at use
	} {
		l, err := translate(task.Limits{MemoryMB: step.mb, MemoryHoldMB: step.hold})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.applyLimits(tc, l, prev, false, "", 0); err != nil {
			t.Fatal(err)
		}
		if got := mem(); !slices.Equal(got, step.want) {
			t.Errorf("memory %v MB, hold %v: writes %v, want %v", step.mb, step.hold, got, step.want)
		}
		prev = l
	}
	// An adopted cgroup (limits unknown) gets the killer set either way.
	if err := e.applyLimits(tc, lim, cgLimits{}, true, "8:0", 0); err != nil {
		t.Fatal(err)
	}
	if got := mem(); !slices.Contains(got, "memory.oom_control=0") {
		t.Errorf("adopted without a hold: writes %v, want memory.oom_control=0", got)
	}
	if err := e.applyLimits(tc, cgLimits{}, lim, false, "8:0", 0); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu,cpuacct/prescient/t1/cpu.cfs_quota_us":          "-1",
		"blkio/prescient/t1/blkio.throttle.read_iops_device": "8:0 0", // deletes the rule
		"pids/prescient/t1/pids.max":                         "max",
	} {
		if got := f.read(t, "v1/"+file); got != want {
			t.Errorf("lifted: %s = %q, want %q", file, got, want)
		}
	}
}

// TestFakeV1LaunchThread checks the v1 placement protocol on the fake: the
// launching thread enters each task cgroup ("0" = this thread), the child
// starts, the thread leaves pids and the pids slack is taken back at once,
// then it leaves the rest.
func TestFakeV1LaunchThread(t *testing.T) {
	f := v1Fake(t)
	e, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	f.writes = nil
	p, err := e.Start(context.Background(), StartOptions{ID: "t1", Argv: []string{"true"}, Limits: task.Limits{Pids: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if x, err := p.Wait(); err != nil || x.Code != 0 {
		t.Fatalf("Wait = %+v, %v", x, err)
	}
	want := []string{"v1/pids/prescient/t1/pids.max=11"}
	for _, d := range []string{"freezer/prescient/t1", "pids/prescient/t1", "blkio/prescient/t1", "memory/process_api/x/prescient/t1", "cpu,cpuacct/prescient/t1"} {
		want = append(want, "v1/"+d+"/tasks=0")
	}
	// Out of pids first, the exact limit at once, then the rest, cpu first.
	want = append(want, "v1/pids/tasks=0", "v1/pids/prescient/t1/pids.max=10")
	for _, d := range []string{"cpu,cpuacct", "memory/process_api/x", "blkio", "freezer"} {
		want = append(want, "v1/"+d+"/tasks=0")
	}
	if got := f.written(); !slices.Equal(got, want) {
		t.Errorf("writes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFakeWholeDisk(t *testing.T) {
	f := newFakeFS(t)
	// /sys/dev/block/M:m are links into /sys/devices/…/<disk>[/<part>].
	f.file(t, "sys/devices/virtual/block/sda/dev", "8:0\n")
	f.file(t, "sys/devices/virtual/block/sda/sda1/dev", "8:1\n")
	f.file(t, "sys/devices/virtual/block/sda/sda1/partition", "1\n")
	f.file(t, "sys/devices/virtual/block/dm-0/dev", "253:0\n")
	if err := os.MkdirAll(f.path("sys/dev/block"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"8:0": "../../devices/virtual/block/sda", "8:1": "../../devices/virtual/block/sda/sda1",
		"253:0": "../../devices/virtual/block/dm-0",
	} {
		if err := os.Symlink(target, f.path("sys/dev/block/"+link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		maj, min uint32
		want     string
		err      error
	}{
		{8, 0, "8:0", nil},
		{8, 1, "8:0", nil},
		{253, 0, "253:0", nil},
		{0, 27, "", ErrUnsupportedLimit},
	} {
		t.Run(fmt.Sprintf("%d:%d", tc.maj, tc.min), func(t *testing.T) {
			got, err := wholeDisk(f.path("sys/dev/block"), tc.maj, tc.min)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("wholeDisk = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestFakeV1LaunchThreadCannotGoHome: when the launching thread cannot
// return to its own cgroup, it goes to the executor's root cgroup instead,
// out of the task's, and the task still starts.
func TestFakeV1LaunchThreadCannotGoHome(t *testing.T) {
	f := v1Fake(t)
	e, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	f.fail = func(p string, _ []byte) error {
		if p == f.path("v1/blkio/tasks") {
			return unix.EACCES
		}
		return nil
	}
	f.writes = nil
	done := make(chan error, 1)
	go func() { // its thread stays locked to it and ends with it
		p, err := e.Start(context.Background(), StartOptions{ID: "t1", Argv: []string{"true"}})
		if err == nil {
			_, err = p.Wait()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w := f.written()
	i := slices.Index(w, "v1/blkio/tasks=0")
	if i < 0 || i+1 >= len(w) || w[i+1] != "v1/blkio/prescient/tasks=0" {
		t.Errorf("after the failed move home, writes are %v; want the thread moved to v1/blkio/prescient", w)
	}
}

func TestFakeV2RootRecreated(t *testing.T) {
	f := v2Fake(t, "cpu io memory pids")
	e, err := newExecutor(Config{}, f.host())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.path("v2/svc/prescient")); err != nil { // another executor's Close
		t.Fatal(err)
	}
	if _, err := e.createCgroup("t1"); err != nil {
		t.Fatal(err)
	}
	if got := f.read(t, "v2/svc/prescient/cgroup.subtree_control"); got != "cpu io memory pids" {
		t.Errorf("recreated root delegates %q", got)
	}
}

// TestFakeOOMKills reads the OOM kill counters of a task cgroup: v1
// memory.oom_control, v2 memory.events; present, absent and garbled.
func TestFakeOOMKills(t *testing.T) {
	type host struct {
		name string
		fake func(t *testing.T) *fakeFS
		dir  string // the task's memory cgroup, relative to the fake root
		file string // its counter file
	}
	hosts := []host{
		{"v1", v1Fake, "v1/memory/process_api/x/prescient/t1", "memory.oom_control"},
		{"v2", func(t *testing.T) *fakeFS { return v2Fake(t, "cpu io memory pids") }, "v2/svc/prescient/t1", "memory.events"},
	}
	for _, h := range hosts {
		for _, tc := range []struct {
			name    string
			content *string // nil: no file
			want    uint64
			err     string
		}{
			{name: "absent", content: nil, want: 0},
			{name: "zero", content: ptr(map[string]string{
				"v1": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
				"v2": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"}[h.name]), want: 0},
			{name: "kills", content: ptr(map[string]string{
				"v1": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
				"v2": "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n"}[h.name]), want: 2},
			{name: "old kernel without the counter", content: ptr(map[string]string{
				"v1": "oom_kill_disable 0\nunder_oom 0\n",
				"v2": "low 0\nhigh 0\nmax 0\noom 1\n"}[h.name]), want: 0},
			{name: "garbled", content: ptr("under_oom 0\noom_kill many\n"), err: h.file},
			{name: "truncated", content: ptr("oom_kill\n"), err: h.file},
		} {
			t.Run(h.name+"/"+tc.name, func(t *testing.T) {
				f := h.fake(t)
				e, err := newExecutor(Config{}, f.host())
				if err != nil {
					t.Fatal(err)
				}
				tc2, err := e.createCgroup("t1")
				if err != nil {
					t.Fatal(err)
				}
				if tc.content != nil {
					f.file(t, filepath.Join(h.dir, h.file), *tc.content)
				}
				got, err := e.oomKills(tc2)
				switch {
				case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
					t.Errorf("oomKills = %d, %v; want an error naming %s", got, err, tc.err)
				case tc.err == "" && (err != nil || got != tc.want):
					t.Errorf("oomKills = %d, %v; want %d", got, err, tc.want)
				}
			})
		}
	}
	t.Run("v2 group kill", func(t *testing.T) {
		f := v2Fake(t, "cpu io memory pids")
		e, err := newExecutor(Config{}, f.host())
		if err != nil {
			t.Fatal(err)
		}
		tc, err := e.createCgroup("t1")
		if err != nil {
			t.Fatal(err)
		}
		f.file(t, "v2/svc/prescient/t1/memory.events", "oom 1\noom_kill 3\noom_group_kill 1\n")
		if got, err := e.oomKills(tc); err != nil || got != 3 {
			t.Errorf("oomKills = %d, %v; want 3 (the processes the group kill killed)", got, err)
		}
	})
	t.Run("v2 without the memory controller", func(t *testing.T) {
		f := v2Fake(t, "cpu io pids")
		e, err := newExecutor(Config{}, f.host())
		if err != nil {
			t.Fatal(err)
		}
		tc, err := e.createCgroup("t1")
		if err != nil {
			t.Fatal(err)
		}
		f.file(t, "v2/svc/prescient/t1/memory.events", "oom_kill x\n") // not ours to read
		if got, err := e.oomKills(tc); err != nil || got != 0 {
			t.Errorf("oomKills = %d, %v; want 0 without the memory controller", got, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestFakeV2OOMGroup: a task cgroup is made to die whole at an OOM kill
// where the v2 memory controller is delegated; a refused write is not
// fatal (the kill is still counted).
func TestFakeV2OOMGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ctrls string
		fail  error
		want  []string // writes to memory.oom.group
	}{
		{name: "memory controller", ctrls: "cpu io memory pids", want: []string{"v2/svc/prescient/t1/memory.oom.group=1"}},
		{name: "no memory controller", ctrls: "cpu io pids", want: nil},
		{name: "old kernel", ctrls: "cpu io memory pids", fail: unix.ENOENT, want: []string{"v2/svc/prescient/t1/memory.oom.group=1"}},
		{name: "refused", ctrls: "cpu io memory pids", fail: unix.EACCES, want: []string{"v2/svc/prescient/t1/memory.oom.group=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := v2Fake(t, tc.ctrls)
			e, err := newExecutor(Config{}, f.host())
			if err != nil {
				t.Fatal(err)
			}
			f.fail = func(p string, _ []byte) error {
				if filepath.Base(p) == "memory.oom.group" {
					return tc.fail
				}
				return nil
			}
			f.writes = nil
			if _, err := e.createCgroup("t1"); err != nil {
				t.Fatalf("createCgroup: %v", err)
			}
			var got []string
			for _, w := range f.written() {
				if strings.Contains(w, "memory.oom.group") {
					got = append(got, w)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("memory.oom.group writes %v, want %v", got, tc.want)
			}
			if tc.fail == nil && tc.want != nil {
				if v := f.read(t, "v2/svc/prescient/t1/memory.oom.group"); v != "1" {
					t.Errorf("memory.oom.group = %q, want 1", v)
				}
			}
		})
	}
}

// TestFakeV1WaitReportsChildOOM: Wait reports an OOM-killed run when the
// task's cgroup counted a kill, although the main process exited 0 (the
// pipeline whose middle stage was killed), and fails when the counter
// cannot be read, rather than report a clean run.
func TestFakeV1WaitReportsChildOOM(t *testing.T) {
	for _, tc := range []struct {
		name    string
		counter string
		want    Exit
		err     bool
	}{
		{name: "clean", counter: "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", want: Exit{Code: 0}},
		{name: "child killed", counter: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", want: Exit{Code: 0, OOMKilled: true, OOMKills: 2}},
		{name: "garbled", counter: "oom_kill ?\n", want: Exit{Code: 0}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := v1Fake(t)
			e, err := newExecutor(Config{}, f.host())
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.Start(context.Background(), StartOptions{ID: "t1", Argv: []string{"true"}})
			if err != nil {
				t.Fatal(err)
			}
			f.file(t, "v1/memory/process_api/x/prescient/t1/memory.oom_control", tc.counter)
			x, werr := p.Wait()
			if x != tc.want || (werr != nil) != tc.err {
				t.Errorf("Wait = %+v, %v; want %+v, error %v", x, werr, tc.want, tc.err)
			}
		})
	}
}
