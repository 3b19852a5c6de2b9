package executor

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// mountinfo of a hybrid host (systemd's legacy+unified layout), trimmed.
const hybridMountinfo = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
32 25 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:32 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,blkio
34 25 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
35 25 0:34 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,freezer
36 25 0:35 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,cpuset
`

const hybridCgroup = `12:cpuset:/
11:freezer:/user.slice
10:pids:/user.slice/user-1000.slice
9:blkio:/user.slice
8:memory:/user.slice/user-1000.slice
7:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
`

func mustMounts(t *testing.T, s string) []mount {
	t.Helper()
	m, err := parseMountinfo(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustProcCgroup(t *testing.T, s string) procCgroup {
	t.Helper()
	pc, err := parseProcCgroup(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func TestParseMountinfo(t *testing.T) {
	got := mustMounts(t, hybridMountinfo+
		`40 25 0:36 /docker/abc /mnt/with\040space rw - cgroup2 cgroup2 rw
41 25 0:37 / /x rw shared:1 master:2 - cgroup cgroup rw,pids
`)
	if len(got) != 10 {
		t.Fatalf("%d cgroup mounts, want 10: %+v", len(got), got)
	}
	if m := got[0]; m.fstype != "cgroup2" || m.point != "/sys/fs/cgroup/unified" || m.root != "/" {
		t.Errorf("first = %+v", m)
	}
	if m := got[2]; !slices.Equal(m.opts, []string{"rw", "cpu", "cpuacct"}) {
		t.Errorf("cpu,cpuacct opts = %v", m.opts)
	}
	if m := got[8]; m.point != "/mnt/with space" || m.root != "/docker/abc" {
		t.Errorf("escaped mount = %+v", m)
	}
	if m := got[9]; m.point != "/x" || !slices.Contains(m.opts, "pids") {
		t.Errorf("mount with several optional fields = %+v", m)
	}
	for _, bad := range []string{"1 2 3\n", "1 2 0:1 / /x rw - \n"} {
		if _, err := parseMountinfo(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMountinfo(%q) accepted it", bad)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	pc := mustProcCgroup(t, hybridCgroup)
	if !pc.hasV2 || pc.v2 != "/user.slice/user-1000.slice/session-2.scope" {
		t.Errorf("v2 = %q, %v", pc.v2, pc.hasV2)
	}
	for c, want := range map[string]string{"cpu": "/user.slice", "cpuacct": "/user.slice", "memory": "/user.slice/user-1000.slice", "name=systemd": "/user.slice/user-1000.slice/session-2.scope"} {
		if pc.v1[c] != want {
			t.Errorf("%s = %q, want %q", c, pc.v1[c], want)
		}
	}
	if _, err := parseProcCgroup(strings.NewReader("garbage\n")); err == nil {
		t.Error("accepted garbage")
	}
	if pc := mustProcCgroup(t, "4:memory:/a\n"); pc.hasV2 {
		t.Error("v2 found in a v1-only file")
	}
}

func TestDiscover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mounts  string
		cgroup  string
		mode    Mode
		v1      map[string]string // controller -> own dir
		v2      string
		wantErr error
	}{
		{
			name: "hybrid", mounts: hybridMountinfo, cgroup: hybridCgroup, mode: Hybrid,
			v1: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu,cpuacct/user.slice", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/user.slice",
				"memory":  "/sys/fs/cgroup/memory/user.slice/user-1000.slice",
				"blkio":   "/sys/fs/cgroup/blkio/user.slice",
				"pids":    "/sys/fs/cgroup/pids/user.slice/user-1000.slice",
				"freezer": "/sys/fs/cgroup/freezer/user.slice",
			},
			v2: "/sys/fs/cgroup/unified/user.slice/user-1000.slice/session-2.scope",
		},
		{
			name: "pure v1", mode: V1,
			mounts: "32 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			cgroup: "8:memory:/a\n",
			v1:     map[string]string{"memory": "/sys/fs/cgroup/memory/a"},
		},
		{
			name: "pure v2", mode: V2,
			mounts: "26 25 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
			cgroup: "0::/system.slice/prescient.service\n",
			v1:     map[string]string{},
			v2:     "/sys/fs/cgroup/system.slice/prescient.service",
		},
		{
			name: "v2 with only a named v1 hierarchy", mode: V2,
			mounts: "26 25 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n27 25 0:26 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
			cgroup: "1:name=systemd:/\n0::/\n",
			v1:     map[string]string{},
			v2:     "/sys/fs/cgroup",
		},
		{
			name: "container: mount root is a sub-cgroup", mode: V2,
			mounts: "26 25 0:25 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			cgroup: "0::/kubepods/pod1/ctr\n",
			v1:     map[string]string{},
			v2:     "/sys/fs/cgroup/ctr",
		},
		{
			name: "own cgroup outside the mount", wantErr: ErrNoCgroups,
			mounts: "26 25 0:25 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			cgroup: "0::/elsewhere\n",
		},
		{
			name: "prefix is not a parent", wantErr: ErrNoCgroups,
			mounts: "26 25 0:25 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			cgroup: "0::/ab\n",
		},
		{name: "nothing mounted", wantErr: ErrNoCgroups, mounts: "", cgroup: "0::/\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := discover(mustMounts(t, tc.mounts), mustProcCgroup(t, tc.cgroup))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if l.mode != tc.mode {
				t.Errorf("mode = %v, want %v", l.mode, tc.mode)
			}
			own := map[string]string{}
			for c, h := range l.v1 {
				own[c] = h.own
			}
			if !maps.Equal(own, tc.v1) {
				t.Errorf("v1 = %v, want %v", own, tc.v1)
			}
			var v2 string
			if l.v2 != nil {
				v2 = l.v2.own
			}
			if v2 != tc.v2 {
				t.Errorf("v2 = %q, want %q", v2, tc.v2)
			}
		})
	}
}

func TestParseFlatKeyed(t *testing.T) {
	got := parseFlatKeyed([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbogus\nneg -1\n\nlow 1 2\n"))
	want := map[string]uint64{"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseOOMKills(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       uint64
		err        bool
	}{
		{name: "v1 oom_control", data: "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", want: 3},
		{name: "v1 before 4.13", data: "oom_kill_disable 0\nunder_oom 1\n", want: 0},
		{name: "v2 events", data: "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n", want: 2},
		{name: "v2 group kill counts its processes in oom_kill", data: "oom 1\noom_kill 4\noom_group_kill 1\n", want: 4},
		{name: "v2 group kill alone", data: "oom 1\noom_kill 0\noom_group_kill 1\n", want: 1},
		{name: "v2 before 4.13", data: "low 0\nhigh 0\nmax 0\noom 0\n", want: 0},
		{name: "empty", data: "", want: 0},
		{name: "no trailing newline", data: "oom_kill 1", want: 1},
		{name: "max value", data: "oom_kill 18446744073709551615\n", want: 1<<64 - 1},
		{name: "garbled count", data: "oom_kill x\n", err: true},
		{name: "negative count", data: "oom_kill -1\n", err: true},
		{name: "overflow", data: "oom_kill 18446744073709551616\n", err: true},
		{name: "no count", data: "under_oom 0\noom_kill\n", err: true},
		{name: "extra field", data: "oom_kill 1 2\n", err: true},
		{name: "garbled group count", data: "oom_kill 1\noom_group_kill ?\n", err: true},
		{name: "other garbled keys ignored", data: "under_oom x\nlow\noom_kill 5\n", want: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOOMKills([]byte(tc.data))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("parseOOMKills(%q) = %d, %v; want %d, error %v", tc.data, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids([]byte("12\n7\n\n"))
	if err != nil || !slices.Equal(got, []int{12, 7}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parsePids([]byte("12\nx\n")); err == nil {
		t.Error("accepted x")
	}
	if _, err := parsePids([]byte("0\n")); err == nil {
		t.Error("accepted pid 0")
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add(`40 25 0:36 /a\040b /mnt\134x rw - cgroup2 cgroup2 rw`)
	f.Add("1 2 3 - cgroup")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		pc, err := parseProcCgroup(strings.NewReader(hybridCgroup))
		if err != nil {
			t.Fatal(err)
		}
		l, err := discover(ms, pc)
		if err != nil {
			return
		}
		for _, h := range l.v1 {
			if !strings.HasPrefix(h.own, h.mount) {
				t.Errorf("own %q outside mount %q", h.own, h.mount)
			}
		}
		if l.v2 != nil && !strings.HasPrefix(l.v2.own, l.v2.mount) {
			t.Errorf("own %q outside mount %q", l.v2.own, l.v2.mount)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add(hybridCgroup)
	f.Add("0::/\n")
	f.Add("1:a,b,,c:/x:y\n")
	f.Fuzz(func(t *testing.T, s string) {
		pc, err := parseProcCgroup(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range pc.v1 {
			if !strings.HasPrefix(p, "/") {
				t.Errorf("path %q not absolute", p)
			}
		}
		ms, _ := parseMountinfo(strings.NewReader(hybridMountinfo))
		l, err := discover(ms, pc)
		if err == nil && l.v2 != nil && strings.Contains(l.v2.own, "/../") {
			t.Errorf("v2 dir %q escapes its mount", l.v2.own)
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("populated 1\nfrozen 0\n"))
	f.Add([]byte("oom_kill 18446744073709551615\n"))
	f.Add([]byte("oom 1\noom_kill 4\noom_group_kill 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseOOMKills(b); err != nil && n != 0 {
			t.Errorf("parseOOMKills = %d with error %v", n, err)
		} else if err == nil && n != 0 && !bytes.Contains(b, []byte("oom_")) {
			t.Errorf("parseOOMKills = %d from a file without an oom counter", n)
		}
		for k := range parseFlatKeyed(b) {
			if k == "" || strings.ContainsAny(k, " \n") {
				t.Errorf("bad key %q", k)
			}
		}
		ps, err := parsePids(b)
		if err == nil {
			for _, p := range ps {
				if p <= 0 {
					t.Errorf("pid %d", p)
				}
			}
		}
	})
}
