package executor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
)

// This file decodes what the kernel tells us about cgroups (mountinfo,
// /proc/<pid>/cgroup, flat-keyed cgroup files) and works out the layout.
// It is portable so that its tests and fuzzers run anywhere.

// v1Controllers are the v1 controllers a task cgroup is created in, in the
// order they are created. cpuset is left out on purpose: a new cpuset
// cgroup is unusable until cpuset.cpus and cpuset.mems are filled in.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "blkio", "pids", "freezer"}

// mount is one cgroup or cgroup2 line of /proc/self/mountinfo.
type mount struct {
	root   string   // the path inside the hierarchy that is mounted
	point  string   // where it is mounted
	fstype string   // "cgroup" or "cgroup2"
	opts   []string // super options: the v1 controllers, name=…
}

// parseMountinfo returns the cgroup and cgroup2 mounts in r, in order.
func parseMountinfo(r io.Reader) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// id parent maj:min root point opts [optional…] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %q: no separator", line)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 1 {
			return nil, fmt.Errorf("mountinfo line %q: too few fields", line)
		}
		if g[0] != "cgroup" && g[0] != "cgroup2" {
			continue
		}
		m := mount{root: unescapeOctal(f[3]), point: unescapeOctal(f[4]), fstype: g[0]}
		if !path.IsAbs(m.root) || !path.IsAbs(m.point) {
			return nil, fmt.Errorf("mountinfo line %q: relative path", line)
		}
		m.root, m.point = path.Clean(m.root), path.Clean(m.point)
		if len(g) >= 3 {
			m.opts = strings.Split(g[2], ",")
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeOctal undoes the \ooo escapes mountinfo uses for space, tab,
// newline and backslash.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procCgroup is /proc/<pid>/cgroup: a v1 path per controller and the v2
// path ("" with hasV2 false when there is no "0::" line).
type procCgroup struct {
	v1    map[string]string
	v2    string
	hasV2 bool
}

// parseProcCgroup decodes /proc/<pid>/cgroup.
func parseProcCgroup(r io.Reader) (procCgroup, error) {
	pc := procCgroup{v1: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return pc, fmt.Errorf("cgroup line %q: want id:controllers:/path", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			pc.v2, pc.hasV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "" {
				pc.v1[c] = parts[2]
			}
		}
	}
	return pc, sc.Err()
}

// hier is one hierarchy as this process sees it.
type hier struct {
	mount string // mount point
	own   string // absolute directory of this process's cgroup
}

// layout is the cgroup layout of the host, from this process's view.
type layout struct {
	mode Mode
	v1   map[string]hier // v1 controller -> hierarchy; only v1Controllers
	v2   *hier           // nil when there is no usable v2 hierarchy
}

// errOutside is why a mounted hierarchy cannot be used.
var errOutside = errors.New("this process's cgroup is outside the mounted part of the hierarchy")

// discover works out the layout from the mounts and this process's cgroups.
func discover(mounts []mount, pc procCgroup) (layout, error) {
	l := layout{v1: map[string]hier{}}
	for _, m := range mounts {
		switch m.fstype {
		case "cgroup":
			for _, c := range m.opts {
				if !slices.Contains(v1Controllers, c) {
					continue
				}
				if _, done := l.v1[c]; done {
					continue
				}
				p, ok := pc.v1[c]
				if !ok {
					continue
				}
				own, ok := under(m, p)
				if !ok {
					continue // another bind mount of the hierarchy may fit
				}
				l.v1[c] = hier{mount: m.point, own: own}
			}
		case "cgroup2":
			if l.v2 != nil || !pc.hasV2 {
				continue
			}
			if own, ok := under(m, pc.v2); ok {
				l.v2 = &hier{mount: m.point, own: own}
			}
		}
	}
	switch {
	case len(l.v1) > 0 && l.v2 != nil:
		l.mode = Hybrid
	case len(l.v1) > 0:
		l.mode = V1
	case l.v2 != nil:
		l.mode = V2
	default:
		if len(mounts) > 0 {
			return l, fmt.Errorf("%w: %w", errOutside, ErrNoCgroups)
		}
		return l, ErrNoCgroups
	}
	return l, nil
}

// under maps cgroup path p to a directory through mount m, if m exposes it.
func under(m mount, p string) (string, bool) {
	root := path.Clean("/" + m.root)
	p = path.Clean("/" + p)
	if root != "/" {
		if p != root && !strings.HasPrefix(p, root+"/") {
			return "", false
		}
		p = strings.TrimPrefix(p, root)
	}
	return path.Join(m.point, p), true
}

// parseFlatKeyed decodes a flat-keyed cgroup file ("key value" lines:
// memory.events, memory.oom_control, cgroup.events, cpu.stat). Lines that
// are not "key unsigned-integer" are skipped.
func parseFlatKeyed(data []byte) map[string]uint64 {
	out := map[string]uint64{}
	for line := range bytes.Lines(data) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// parsePids decodes cgroup.procs / tasks: one decimal pid per line.
func parsePids(data []byte) ([]int, error) {
	var out []int
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return out, fmt.Errorf("bad pid %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseOOMKills reads the OOM kill count from a v1 memory.oom_control or a
// v2 memory.events file. oom_kill counts the processes the kernel killed
// for memory; v2's oom_group_kill counts kills of the whole cgroup
// (memory.oom.group), each of which also counts its processes in
// oom_kill, so the larger of the two is the count, never their sum (the
// group counter only guards against a kernel that counts a group kill
// there alone). A key that is absent counts 0: kernels before 4.13 have
// no oom_kill, before 5.17 no oom_group_kill. A key whose value is not an
// unsigned integer is an error, not 0: a count that cannot be read could
// hide a kill, and a hidden kill is how a truncated run passes for a
// success.
func parseOOMKills(data []byte) (uint64, error) {
	var kills uint64
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) == 0 || f[0] != "oom_kill" && f[0] != "oom_group_kill" {
			continue
		}
		if len(f) != 2 {
			return 0, fmt.Errorf("oom counter line %q: want \"key count\"", strings.TrimSpace(string(line)))
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("oom counter %s: %w", f[0], err)
		}
		kills = max(kills, n)
	}
	return kills, nil
}
