//go:build linux

package executor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// taskCgroup is one task's cgroup, in every hierarchy used.
type taskCgroup struct {
	id     string
	dirs   CgroupDirs
	v1Dirs []string         // distinct v1 dirs (co-mounted controllers share one)
	v1Home []string         // this process's own dir in the same hierarchy as v1Dirs[i]
	v1     cgroup1.Cgroup   // nil without v1 controllers
	v2     *cgroup2.Manager // nil without a v2 hierarchy
}

// v1Path is the library's view of the task's path in each v1 hierarchy.
// The library's subsystems (built with the mount point as root, see
// newV1Subsystem) join root, the controller's name and this path, assuming
// every controller is mounted at <root>/<name>. That holds for
// /sys/fs/cgroup/cpu but not for a co-mounted "cpu,cpuacct" without its
// symlinks, or a mount elsewhere, so the path starts with ".." to take the
// name back out: <mount>/<name>/../<rel> is <mount>/<rel> on any host.
func (e *Executor) v1Path(id string) cgroup1.Path {
	return func(name cgroup1.Name) (string, error) {
		root, ok := e.v1Roots[string(name)]
		if !ok {
			return "", cgroup1.ErrControllerNotActive
		}
		rel, err := filepath.Rel(e.lay.v1[string(name)].mount, filepath.Join(root, e.checkedID(id)))
		if err != nil {
			return "", err
		}
		return filepath.Join("..", rel), nil
	}
}

// checkedID is id, which every caller has validated; the panic guards the
// path arithmetic against a future caller that has not.
func (e *Executor) checkedID(id string) string {
	if validID(id) != nil {
		panic("executor: unvalidated task id " + strconv.Quote(id))
	}
	return id
}

func (e *Executor) v1Hierarchy() ([]cgroup1.Subsystem, error) { return e.v1Subs, nil }

// createCgroup makes the task's directories. It fails with ErrExists if
// any already exists, and leaves nothing behind on failure.
func (e *Executor) createCgroup(id string) (_ *taskCgroup, err error) {
	tc := &taskCgroup{id: id}
	defer func() {
		if err != nil {
			_ = tc.remove()
		}
	}()
	mkdir := func(dir string) error {
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrNotExist) {
			// Another Executor on the same Root (a shim) closed and
			// removed the root while it was empty.
			if rerr := e.ensureRoots(); rerr != nil {
				return rerr
			}
			err = os.Mkdir(dir, 0o755)
		}
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				if st, serr := os.Stat(dir); serr == nil && !st.IsDir() {
					return fmt.Errorf("task id %q collides with the cgroup file %s: %w", id, dir, ErrInvalid)
				}
				return fmt.Errorf("%s: %w", dir, ErrExists)
			}
			return permErr(err)
		}
		return nil
	}
	for _, c := range v1Controllers {
		root, ok := e.v1Roots[c]
		if !ok {
			continue
		}
		dir := filepath.Join(root, id)
		if tc.dirs.V1 == nil {
			tc.dirs.V1 = map[string]string{}
		}
		tc.dirs.V1[c] = dir
		if slices.Contains(tc.v1Dirs, dir) {
			continue
		}
		if err := mkdir(dir); err != nil {
			return nil, err
		}
		tc.v1Dirs = append(tc.v1Dirs, dir)
		tc.v1Home = append(tc.v1Home, e.lay.v1[c].own)
	}
	if e.v2Root != "" {
		dir := filepath.Join(e.v2Root, id)
		if err := mkdir(dir); err != nil {
			return nil, err
		}
		tc.dirs.V2 = dir
	}
	if err := e.loadCgroup(tc); err != nil {
		return nil, err
	}
	e.setOOMGroup(tc)
	return tc, nil
}

// ensureRoots recreates the root cgroups, with the v2 controllers
// delegated to them as New did, if they have gone.
func (e *Executor) ensureRoots() error {
	for _, r := range e.v1Roots {
		if err := os.MkdirAll(r, 0o755); err != nil {
			return permErr(err)
		}
	}
	if e.v2Root == "" {
		return nil
	}
	var want []string
	for _, c := range v2Controllers {
		if e.v2Ctrl[c] {
			want = append(want, c)
		}
	}
	own := e.lay.v2.own
	rel, err := filepath.Rel(own, e.v2Root)
	if err != nil {
		return err
	}
	dir := own
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return permErr(err)
		}
		if len(want) > 0 {
			if err := e.enableControllers(dir, want, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadCgroup fills in the library handles and the cgroup id for the
// directories in tc.
func (e *Executor) loadCgroup(tc *taskCgroup) error {
	if len(tc.v1Dirs) > 0 {
		cg, err := cgroup1.Load(e.v1Path(tc.id), cgroup1.WithHierarchy(e.v1Hierarchy))
		if err != nil {
			return fmt.Errorf("load v1 cgroup %s: %w", tc.id, err)
		}
		tc.v1 = cg
	}
	if tc.dirs.V2 != "" {
		var st unix.Stat_t
		if err := unix.Stat(tc.dirs.V2, &st); err != nil {
			return fmt.Errorf("stat %s: %w", tc.dirs.V2, err)
		}
		tc.dirs.CgroupID = st.Ino
		rel, err := filepath.Rel(e.lay.v2.mount, tc.dirs.V2)
		if err != nil {
			return err
		}
		m, err := cgroup2.Load("/"+rel, cgroup2.WithMountpoint(e.lay.v2.mount))
		if err != nil {
			return fmt.Errorf("load v2 cgroup %s: %w", tc.dirs.V2, err)
		}
		tc.v2 = m
	}
	return nil
}

// remove deletes the task's directories that exist. The cgroup must be
// empty; rmdir is retried briefly because an exiting task can linger for a
// moment after it is reaped.
func (tc *taskCgroup) remove() error {
	dirs := slices.Clone(tc.v1Dirs)
	if tc.dirs.V2 != "" {
		dirs = append(dirs, tc.dirs.V2)
	}
	var errs []error
	for _, d := range dirs {
		var err error
		for delay := time.Millisecond; ; delay *= 2 {
			err = unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, unix.EBUSY) || delay > 500*time.Millisecond {
				break
			}
			time.Sleep(delay)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// pids lists the processes in the task cgroup (and any cgroups the task
// made below it), without self.
func (tc *taskCgroup) pids(self int) ([]int, error) {
	var dirs []string
	if tc.dirs.V2 != "" {
		dirs = []string{tc.dirs.V2}
	} else {
		dirs = tc.v1Dirs
	}
	seen := map[int]bool{}
	var out []int
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !de.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) {
					return nil
				}
				return err
			}
			ps, err := parsePids(data)
			for _, pid := range ps {
				if pid != self && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return err
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// empty reports whether no process (other than self) is in the cgroup. On
// v2 it reads cgroup.events, whose "populated" covers the whole subtree.
func (tc *taskCgroup) empty(self int) (bool, error) {
	if tc.dirs.V2 != "" {
		data, err := os.ReadFile(filepath.Join(tc.dirs.V2, "cgroup.events"))
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err == nil {
			if v, ok := parseFlatKeyed(data)["populated"]; ok {
				return v == 0, nil
			}
		}
		// No cgroup.events (a fake cgroupfs): fall back to the lists.
	}
	ps, err := tc.pids(self)
	return len(ps) == 0, err
}

// oomKills is the number of the task's processes the kernel killed for
// memory over the task's life, read from the memory controller's counters
// (see parseOOMKills): v1 memory.oom_control oom_kill where the memory
// controller is v1 (also on a hybrid host), else v2 memory.events oom_kill
// and oom_group_kill. Every kill counts, whichever process it hit: the
// main process, a child a shell waited for, a stage of a pipeline. The
// cgroup is created anew for each task (createCgroup refuses an existing
// one), so its counters start at 0 with the task and count only its kills;
// an adopted task keeps the cgroup, and the counters, it started with.
//
// v2 reads memory.events, not memory.events.local: memory.events is
// hierarchical, so it also counts kills in sub-cgroups the task may make,
// all of which are the task's; .local counts this cgroup alone and adds
// nothing. (On a host mounted with memory_localevents the two are the
// same, and so are v1's counters, which never propagate: kills in a
// task's own sub-cgroups are then missed. Task sub-cgroups are not
// supported anyway: they keep the task cgroup from being removed.)
//
// A missing file (no memory controller, or a cgroup already removed) counts
// 0; a garbled one is an error.
func (e *Executor) oomKills(tc *taskCgroup) (uint64, error) {
	var file string
	switch {
	case tc.dirs.V1["memory"] != "":
		file = filepath.Join(tc.dirs.V1["memory"], "memory.oom_control")
	case tc.dirs.V2 != "" && e.v2Ctrl["memory"]:
		file = filepath.Join(tc.dirs.V2, "memory.events")
	default:
		return 0, nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read oom kill count: %w", err)
	}
	n, err := parseOOMKills(data)
	if err != nil {
		return 0, fmt.Errorf("read oom kill count from %s: %w", file, err)
	}
	return n, nil
}

// setOOMGroup makes the kernel kill the whole task when it kills any of
// its processes for memory (v2 memory.oom.group), rather than leave the
// rest running half-killed — a shell that goes on after its child died, a
// pipeline whose other stages go on with a truncated stream. It needs the
// v2 memory controller. Cgroup v1 (and the v1 memory controller of a
// hybrid host) has no such knob: the kernel kills only the process it
// picks, and the rest of the task may run on to its end; the run is still
// reported OOM-killed (see oomKills), but only once it ends. A failure is
// logged, not returned: the kill is still detected, only later.
func (e *Executor) setOOMGroup(tc *taskCgroup) {
	if tc.dirs.V2 == "" || !e.v2Ctrl["memory"] {
		return
	}
	if err := e.h.write(filepath.Join(tc.dirs.V2, "memory.oom.group"), []byte("1")); err != nil {
		e.log.Warn("memory.oom.group not set: an OOM kill may leave the rest of the task running", "task", tc.id, "err", err)
	}
}

// kill sends SIGKILL to every process in the cgroup. On v2 (and the
// unified part of a hybrid host, which holds every task process because
// the task was cloned into it) that is one write to cgroup.kill. Pure v1
// has no such file: freeze the cgroup so nothing can fork, SIGKILL every
// member, thaw (the signals are delivered on thaw).
func (e *Executor) kill(tc *taskCgroup) error {
	if tc.v2 != nil {
		err := tc.v2.Kill()
		if err == nil {
			return nil
		}
		if len(tc.v1Dirs) == 0 {
			return fmt.Errorf("kill cgroup %s: %w", tc.dirs.V2, err)
		}
		e.log.Warn("cgroup.kill failed; killing through v1", "task", tc.id, "err", err)
	}
	frozen := false
	fz, hasFreezer := tc.dirs.V1["freezer"]
	// A process the kernel holds at its memory limit (a memory hold: see
	// applyV1) sleeps where the freezer cannot reach it, and freezing
	// would wait out its timeout: then kill unfrozen.
	if hasFreezer && !underOOM(tc) {
		err := e.setFreezer(fz, "FROZEN", time.Second)
		if err != nil {
			e.log.Warn("freeze before kill", "task", tc.id, "err", err)
		}
		frozen = err == nil
		defer func() {
			if err := e.setFreezer(fz, "THAWED", time.Second); err != nil {
				e.log.Warn("thaw after kill", "task", tc.id, "err", err)
			}
		}()
	}
	var errs []error
	// Frozen, one pass reaches everyone; unfrozen, repeat until no new
	// process appears (a fork race), within reason.
	for round := 0; round < 100; round++ {
		ps, err := tc.pids(e.h.pid)
		if err != nil {
			return fmt.Errorf("kill task %s: list processes: %w", tc.id, err)
		}
		if len(ps) == 0 {
			break
		}
		for _, pid := range ps {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("kill pid %d: %w", pid, err))
			}
		}
		if frozen {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return errors.Join(errs...)
}

// underOOM reports whether the kernel holds the task at its v1 memory
// limit (memory.oom_control under_oom 1).
func underOOM(tc *taskCgroup) bool {
	dir := tc.dirs.V1["memory"]
	if dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	return err == nil && bytes.Contains(b, []byte("under_oom 1"))
}

// setFreezer writes a v1 freezer state and waits, up to timeout, until
// the cgroup reaches it.
func (e *Executor) setFreezer(dir, state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := e.h.write(filepath.Join(dir, "freezer.state"), []byte(state)); err != nil {
			return err
		}
		data, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return err
		}
		if string(trimSpace(data)) == state {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("freezer %s stuck in %s", dir, trimSpace(data))
		}
		time.Sleep(time.Millisecond)
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// applyLimits writes l to the task cgroup. Only dimensions that differ
// from prev are written, unless all is set (a cgroup adopted with unknown
// limits). dev is the block device for IOPS ("" when not needed).
// pidsSlack is added to a v1 pids limit while the launching thread still
// counts in the cgroup (see startMigrated).
func (e *Executor) applyLimits(tc *taskCgroup, l, prev cgLimits, all bool, dev string, pidsSlack int64) error {
	cpu := all || l.cpuQuotaUS != prev.cpuQuotaUS
	share := all || sharesV1(l.cpuShare) != sharesV1(prev.cpuShare)
	mem := all || l.memBytes != prev.memBytes || l.memHoldBytes != prev.memHoldBytes
	io := (all || l.iops != prev.iops) && dev != ""
	pids := all || l.pids != prev.pids || pidsSlack != 0
	if e.lay.mode == V2 {
		return e.applyV2(tc, l, prev, all, cpu, share, mem, io, pids, dev)
	}
	return e.applyV1(tc, l, prev, all, cpu, share, mem, io, pids, dev, pidsSlack)
}

func (e *Executor) applyV2(tc *taskCgroup, l, prev cgLimits, all, cpu, share, mem, io, pids bool, dev string) error {
	var r cgroup2.Resources
	if (cpu || share) && e.v2Ctrl["cpu"] {
		r.CPU = &cgroup2.CPU{}
		if cpu {
			period := uint64(cpuPeriodUS)
			var quota *int64
			if l.cpuQuotaUS > 0 {
				quota = &l.cpuQuotaUS
			}
			r.CPU.Max = cgroup2.NewCPUMax(quota, &period)
		}
		if share {
			w := weightV2(l.cpuShare)
			r.CPU.Weight = &w
		}
	}
	if mem && e.v2Ctrl["memory"] {
		// The library writes numbers only; the kernel takes any value at
		// or above its page-counter maximum as "max".
		max, swap := int64(math.MaxInt64), int64(math.MaxInt64)
		if l.memBytes > 0 {
			max, swap = l.memBytes, 0 // a hard limit: no swapping past it
		}
		r.Memory = &cgroup2.Memory{Max: &max}
		// A hold (task.Limits.MemoryHoldMB): v2 cannot keep the OOM
		// killer off, so the kernel throttles the task at memory.high
		// (the limit) and kills only at memory.max (the hold). Lifting
		// the hold gives memory.high back ("max"); the scheduler's soft
		// limit, which also lives in memory.high, is written again at its
		// next change.
		switch {
		case l.memHoldBytes > 0:
			high := l.memBytes
			max = l.memHoldBytes
			r.Memory.High = &high
		case prev.memHoldBytes > 0 || all:
			high := int64(math.MaxInt64)
			r.Memory.High = &high
		}
		if e.v2Swap {
			r.Memory.Swap = &swap
		}
	}
	if pids && e.v2Ctrl["pids"] {
		n := l.pids
		if n == 0 {
			n = -1 // the library writes "max"
		}
		r.Pids = &cgroup2.Pids{Max: n}
	}
	if err := tc.v2.Update(&r); err != nil {
		return fmt.Errorf("set limits on %s: %w", tc.dirs.V2, err)
	}
	if io && e.v2Ctrl["io"] {
		// Written here: the library's io.max entries are numbers only, and
		// the kernel rejects 0, so lifting a limit needs "max".
		rate := "max"
		if l.iops > 0 {
			rate = strconv.FormatUint(l.iops, 10)
		}
		line := dev + " riops=" + rate + " wiops=" + rate
		if err := e.h.write(filepath.Join(tc.dirs.V2, "io.max"), []byte(line)); err != nil {
			return fmt.Errorf("set io limit: %w", err)
		}
	}
	return nil
}

func (e *Executor) applyV1(tc *taskCgroup, l, prev cgLimits, all, cpu, share, mem, io, pids bool, dev string, pidsSlack int64) error {
	if cpu && tc.dirs.V1["cpu"] != "" {
		quota, period := int64(-1), uint64(cpuPeriodUS)
		if l.cpuQuotaUS > 0 {
			quota = l.cpuQuotaUS
		}
		if err := tc.v1.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}); err != nil {
			return fmt.Errorf("set cpu limit: %w", err)
		}
	}
	if share && tc.dirs.V1["cpu"] != "" {
		shares := sharesV1(l.cpuShare)
		if err := tc.v1.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}); err != nil {
			return fmt.Errorf("set cpu shares: %w", err)
		}
	}
	if mem && tc.dirs.V1["memory"] != "" {
		// A hold (task.Limits.MemoryHoldMB) turns the cgroup's OOM killer
		// off before a lower limit can bite, and back on only after the
		// limit is raised: turned on while a process waits at the limit,
		// the kernel kills it (that is how a hold is lifted).
		dir := tc.dirs.V1["memory"]
		hold, was := l.memHoldBytes > 0, prev.memHoldBytes > 0
		if hold && (!was || all) {
			if err := e.h.write(filepath.Join(dir, "memory.oom_control"), []byte("1")); err != nil {
				return fmt.Errorf("hold memory (oom_kill_disable): %w", err)
			}
		}
		// Only a limit that changes is written: the kernel refuses
		// (EBUSY) even the same limit while the cgroup's use is at it.
		if l.memBytes != prev.memBytes || all {
			if err := e.setMemoryV1(dir, l.memBytes); err != nil {
				return fmt.Errorf("set memory limit: %w", err)
			}
		}
		if !hold && (was || all) {
			if err := e.h.write(filepath.Join(dir, "memory.oom_control"), []byte("0")); err != nil {
				return fmt.Errorf("lift memory hold (oom_kill_disable): %w", err)
			}
		}
	}
	if io && tc.dirs.V1["blkio"] != "" {
		maj, min, err := parseMajMin(dev)
		if err != nil {
			return err
		}
		// Rate 0 deletes the device's rule.
		td := []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(maj), Minor: int64(min)}, Rate: l.iops}}
		if err := tc.v1.Update(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadIOPSDevice: td, ThrottleWriteIOPSDevice: td,
		}}); err != nil {
			return fmt.Errorf("set io limit on %s: %w", dev, err)
		}
	}
	if pids && tc.dirs.V1["pids"] != "" {
		// Written here: the library cannot write "max" (it skips 0).
		v := "max"
		if l.pids > 0 {
			v = strconv.FormatInt(l.pids+pidsSlack, 10)
		}
		if err := e.h.write(filepath.Join(tc.dirs.V1["pids"], "pids.max"), []byte(v)); err != nil {
			return fmt.Errorf("set pids limit: %w", err)
		}
	}
	return nil
}

// setMemoryV1 sets memory.limit_in_bytes and, where swap accounting
// exists, memory.memsw.limit_in_bytes to the same value (a hard limit: no
// swapping past it). The kernel insists memsw >= limit at every step, so
// memsw goes first when raising and last when lowering. Written here: the
// library orders the pair only for two positive values, not for -1.
func (e *Executor) setMemoryV1(dir string, bytes int64) error {
	v := int64(-1)
	if bytes > 0 {
		v = bytes
	}
	val := []byte(strconv.FormatInt(v, 10))
	limit := filepath.Join(dir, "memory.limit_in_bytes")
	if !e.memsw {
		return e.h.write(limit, val)
	}
	memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	cur, err := os.ReadFile(limit)
	if err != nil {
		return err
	}
	c, err := strconv.ParseUint(string(trimSpace(cur)), 10, 64)
	if err != nil {
		return fmt.Errorf("parse %s: %w", limit, err)
	}
	order := []string{limit, memsw}
	if uint64(v) > c { // raising (-1 is the largest as unsigned)
		order = []string{memsw, limit}
	}
	for _, f := range order {
		if err := e.h.write(f, val); err != nil {
			return err
		}
	}
	return nil
}

// sharesV1 is a CPU share in cores' worth as v1 cpu.shares: 1024 per core
// (the kernel's default for one task), within the kernel's [2, 262144];
// 0 means the default.
func sharesV1(cores float64) uint64 {
	if cores <= 0 {
		return 1024
	}
	return uint64(min(max(math.Round(cores*1024), 2), 262144))
}

// weightV2 is a CPU share in cores' worth as v2 cpu.weight: 100 per core
// (the default), within [1, 10000]; 0 means the default.
func weightV2(cores float64) uint64 {
	if cores <= 0 {
		return 100
	}
	return uint64(min(max(math.Round(cores*100), 1), 10000))
}
