//go:build linux

package cred

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Ids no account on a test machine uses, so any thread that shows them got
// them from Do.
const (
	testUID = 3_999_999_001
	testGID = 3_999_999_002
	testSup = 3_999_999_003
)

var testCred = Credential{UID: testUID, GID: testGID, Groups: []uint32{testGID, testSup}}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch a thread to another user")
	}
}

// threadIDs are the ids of one thread, from /proc/self/task/TID/status.
type threadIDs struct {
	uid, gid [4]uint64 // real, effective, saved, filesystem
	groups   []uint64
}

func (t threadIDs) has(id uint64) bool {
	for _, v := range append(append(t.uid[:], t.gid[:]...), t.groups...) {
		if v == id {
			return true
		}
	}
	return false
}

// threads reads the ids of every thread of this process. A thread that
// ends while it is read is left out.
func threads(t testing.TB) map[int]threadIDs {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]threadIDs{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/self/task", e.Name(), "status"))
		if err != nil {
			continue // gone
		}
		var ids threadIDs
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			f := strings.Fields(v)
			nums := make([]uint64, len(f))
			for i, s := range f {
				nums[i], _ = strconv.ParseUint(s, 10, 64)
			}
			switch k {
			case "Uid":
				copy(ids.uid[:], nums)
			case "Gid":
				copy(ids.gid[:], nums)
			case "Groups":
				ids.groups = nums
			}
		}
		out[tid] = ids
	}
	return out
}

// TestOtherThreadsKeepTheirIDs checks the claim Do's safety rests on: while
// fn runs with the user's ids, no other thread of the process has them —
// not the threads that existed, not the ones the runtime starts meanwhile
// (fn starts 64 more goroutines than there are threads, each holding a
// thread of its own after a blocking system call, so that at least 64 new
// threads must be made, some asked for from fn's own locked thread) — and
// afterwards no thread has them at all.
func TestOtherThreadsKeepTheirIDs(t *testing.T) {
	needRoot(t)
	before := threads(t)
	n := len(before) + 64
	var (
		self     int
		during   map[int]threadIDs
		childIDs sync.Map // tid → euid seen by a goroutine fn started
	)
	err := Do(testCred, func() error {
		self = syscall.Gettid()
		var started, release sync.WaitGroup
		started.Add(n)
		release.Add(1)
		for range n {
			go func() {
				runtime.LockOSThread() // each holds a thread of its own, ended with it
				ts := syscall.NsecToTimespec(int64(time.Millisecond))
				_ = syscall.Nanosleep(&ts, nil) // a blocking syscall: its P is handed off
				childIDs.Store(syscall.Gettid(), syscall.Geteuid())
				started.Done()
				release.Wait()
			}()
		}
		started.Wait()
		during = threads(t)
		release.Done()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	for tid := range during {
		if _, ok := before[tid]; !ok {
			made++
		}
	}
	if made < 64 {
		t.Fatalf("only %d threads made during fn (%d before): the test did not make the runtime start threads", made, len(before))
	}
	me, ok := during[self]
	if !ok {
		t.Fatalf("fn's thread %d not found", self)
	}
	if me.uid != [4]uint64{0, testUID, 0, testUID} || me.gid != [4]uint64{0, testGID, 0, testGID} {
		t.Errorf("fn's thread: uid %v gid %v, want effective and fs ids %d/%d, real and saved 0", me.uid, me.gid, testUID, testGID)
	}
	if len(me.groups) != 2 || me.groups[0] != testGID || me.groups[1] != testSup {
		t.Errorf("fn's thread: groups %v, want [%d %d]", me.groups, testGID, testSup)
	}
	for tid, ids := range during {
		if tid != self && (ids.has(testUID) || ids.has(testGID) || ids.has(testSup)) {
			t.Errorf("thread %d has the user's ids while fn runs: uid %v gid %v groups %v", tid, ids.uid, ids.gid, ids.groups)
		}
	}
	got := 0
	childIDs.Range(func(k, v any) bool {
		got++
		if k.(int) == self || v.(int) != 0 {
			t.Errorf("a goroutine fn started ran on thread %d (fn's: %d) with euid %d, want another thread with euid 0", k, self, v)
		}
		return true
	})
	if got != n {
		t.Errorf("%d goroutines reported, want %d", got, n)
	}
	for tid, ids := range threads(t) {
		if ids.has(testUID) || ids.has(testGID) || ids.has(testSup) {
			t.Errorf("after Do, thread %d has the user's ids: uid %v gid %v groups %v", tid, ids.uid, ids.gid, ids.groups)
		}
	}
	// fn's thread is never reused: it ends (the main thread, if fn ran on
	// it, is parked with its own ids back instead).
	if self != os.Getpid() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(self)); errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("fn's thread %d still exists 10s after Do returned", self)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestDoFileAccess checks that fn sees files as the user does: a root file
// of mode 0600 is "permission denied"; a name inside a 0700 directory is
// "permission denied" whether it exists or not; a group-readable file opens
// through a supplementary group; and the caller's own uid runs fn directly.
func TestDoFileAccess(t *testing.T) {
	needRoot(t)
	dir := openDir(t)
	secret := filepath.Join(dir, "secret")
	must(t, os.WriteFile(secret, []byte("root only\n"), 0o600))
	closed := filepath.Join(dir, "closed")
	must(t, os.Mkdir(closed, 0o700))
	must(t, os.WriteFile(filepath.Join(closed, "exists"), []byte("x"), 0o644))
	shared := filepath.Join(dir, "shared")
	must(t, os.WriteFile(shared, []byte("group\n"), 0o640))
	must(t, os.Chown(shared, 0, testSup))

	tests := []struct {
		name string
		c    Credential
		op   func() error
		want error // nil: succeeds
	}{
		{"own file of root as root", Credential{UID: 0}, func() error { _, err := os.ReadFile(secret); return err }, nil},
		{"0600 file", testCred, func() error { _, err := os.ReadFile(secret); return err }, fs.ErrPermission},
		{"0600 file's size", testCred, func() error { _, err := os.Stat(secret); return err }, nil}, // as ls -l shows it
		{"existing name in 0700 dir", testCred, func() error { _, err := os.Stat(filepath.Join(closed, "exists")); return err }, fs.ErrPermission},
		{"missing name in 0700 dir", testCred, func() error { _, err := os.Stat(filepath.Join(closed, "missing")); return err }, fs.ErrPermission},
		{"list 0700 dir", testCred, func() error { _, err := os.ReadDir(closed); return err }, fs.ErrPermission},
		{"group file via supplementary group", testCred, func() error { _, err := os.ReadFile(shared); return err }, nil},
		{"group file without the group", Credential{UID: testUID, GID: testGID, Groups: []uint32{testGID}},
			func() error { _, err := os.ReadFile(shared); return err }, fs.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Do(tt.c, tt.op)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestDoDirect checks that the process's own user runs fn in the calling
// goroutine, on the calling thread.
func TestDoDirect(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := syscall.Gettid()
	var in int
	if err := Do(Credential{UID: uint32(os.Geteuid())}, func() error { in = syscall.Gettid(); return nil }); err != nil {
		t.Fatal(err)
	}
	if in != tid {
		t.Errorf("fn ran on thread %d, want the caller's %d", in, tid)
	}
}

// TestDoErrors checks that fn's error and panic reach the caller, and that
// a credential the kernel refuses is ErrSwitch with fn not run and no
// thread left with any of its ids.
func TestDoErrors(t *testing.T) {
	needRoot(t)
	sentinel := errors.New("from fn")
	if err := Do(testCred, func() error { return sentinel }); err != sentinel {
		t.Errorf("err = %v, want fn's", err)
	}
	func() {
		defer func() {
			p, ok := recover().(*PanicError)
			if !ok || p.Value != "boom" {
				t.Errorf("recovered %v, want *PanicError boom", p)
			}
		}()
		_ = Do(testCred, func() error { panic("boom") })
		t.Error("Do returned after fn panicked")
	}()
	tooMany := make([]uint32, 70_000) // over NGROUPS_MAX (65536)
	for i := range tooMany {
		tooMany[i] = testSup
	}
	ran := false
	err := Do(Credential{UID: testUID, GID: testGID, Groups: tooMany}, func() error { ran = true; return nil })
	if !errors.Is(err, ErrSwitch) || ran {
		t.Errorf("err = %v, ran = %v; want ErrSwitch and fn not run", err, ran)
	}
	for tid, ids := range threads(t) {
		if ids.has(testUID) || ids.has(testGID) || ids.has(testSup) {
			t.Errorf("thread %d has the user's ids: uid %v gid %v groups %v", tid, ids.uid, ids.gid, ids.groups)
		}
	}
}

// openDir is a temporary directory that every user may search and list
// (t.TempDir's parent is 0700).
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cred-test-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDo measures Do's overhead: a fresh thread, three system calls
// there and three back, and the thread's end.
func BenchmarkDo(b *testing.B) {
	needRoot(b)
	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			if err := Do(testCred, func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) { // baseline: the caller's own user
		c := Credential{UID: uint32(os.Geteuid())}
		for b.Loop() {
			_ = Do(c, func() error { return nil })
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := Do(testCred, func() error { return nil }); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
