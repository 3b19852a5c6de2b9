package profile

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCgroup is a real cgroup made for one test: a v2 directory
// <v2 mount>/<our v2 path>/prescient-test-<rand> with a "task" child (the
// NetMonitor attaches to the parent, the workload goes in the child), and
// on v1 hierarchies <mount>/<our path>/prescient-test-<rand> for cpuacct,
// memory and blkio. Everything is removed when the test ends.
type testCgroup struct {
	Target
	root string   // v2 parent, where a NetMonitor attaches; "" without v2
	dirs []string // created, in creation order
}

// newTestCgroup creates the cgroups, or skips the test saying why it
// cannot.
func newTestCgroup(t testing.TB) *testCgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	v1, v2, err := cgroupMounts()
	if err != nil {
		t.Skipf("cannot find cgroup mounts: %v", err)
	}
	if len(v1) == 0 && v2 == "" {
		t.Skip("no cgroup hierarchy mounted")
	}
	own, err := ownCgroups()
	if err != nil {
		t.Skipf("cannot read /proc/self/cgroup: %v", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "prescient-test-" + hex.EncodeToString(rnd[:])

	cg := &testCgroup{Target: Target{V1: map[string]string{}}}
	t.Cleanup(cg.remove)
	mkdir := func(dir string) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("create cgroup: %v", err)
		}
		cg.dirs = append(cg.dirs, dir)
	}
	if v2 != "" {
		cg.root = filepath.Join(v2, own[""], name)
		mkdir(cg.root)
		cg.V2 = filepath.Join(cg.root, "task")
		mkdir(cg.V2)
		var st syscall.Stat_t
		if err := syscall.Stat(cg.V2, &st); err != nil {
			t.Fatal(err)
		}
		cg.CgroupID = st.Ino
	}
	for _, ctrl := range []string{"cpuacct", "memory", "blkio"} {
		if mnt, ok := v1[ctrl]; ok {
			dir := filepath.Join(mnt, own[ctrl], name)
			mkdir(dir)
			cg.V1[ctrl] = dir
		}
	}
	return cg
}

// boostCPU also puts cg's tasks in a v1 cpu cgroup with the largest
// cpu.shares, where the host has one. Other builds and tests may keep every
// CPU busy, and with autogroup scheduling each login session gets an equal
// share whatever its nice value: a workload that must reach a set CPU rate
// gets it this way. (The workloads are paced or self-limiting, so this
// starves no one.) Best effort: without a v1 cpu hierarchy it does nothing.
func (cg *testCgroup) boostCPU(t testing.TB) {
	t.Helper()
	v1, _, err := cgroupMounts()
	if err != nil {
		return
	}
	mnt, ok := v1["cpu"]
	if !ok || cg.V1["cpu"] != "" {
		return
	}
	own, err := ownCgroups()
	if err != nil {
		return
	}
	dir := filepath.Join(mnt, own["cpu"], filepath.Base(cg.dirs[0]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Logf("no cpu boost: %v", err)
		return
	}
	cg.dirs = append(cg.dirs, dir)
	if err := os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte("262144"), 0); err != nil {
		t.Logf("no cpu boost: %v", err)
	}
	cg.V1["cpu"] = dir
}

// add moves pid into every cgroup of cg.
func (cg *testCgroup) add(t *testing.T, pid int) {
	t.Helper()
	dirs := []string{}
	if cg.V2 != "" {
		dirs = append(dirs, cg.V2)
	}
	for _, d := range cg.V1 {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("move %d to %s: %v", pid, d, err)
		}
	}
}

// remove deletes the directories, children first. A cgroup whose last
// process has just exited can be busy for a moment, hence the retries.
func (cg *testCgroup) remove() {
	for _, d := range slices.Backward(cg.dirs) {
		for i := 0; ; i++ {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) || i == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// cgroupMounts returns the mount point of each v1 controller and of the v2
// hierarchy, from /proc/self/mountinfo. Only mounts of the hierarchy root
// count.
func cgroupMounts() (v1 map[string]string, v2 string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	v1 = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			if v2 == "" {
				v2 = pf[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				if _, seen := v1[opt]; !seen {
					v1[opt] = pf[4]
				}
			}
		}
	}
	return v1, v2, sc.Err()
}

// ownCgroups maps each v1 controller, and "" for v2, to this process's
// cgroup path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, nil
}
