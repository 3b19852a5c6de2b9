package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/prescient-sched/prescient/internal/task"
)

func openTestTasks(t testing.TB, opts ...Option) *Tasks {
	t.Helper()
	ts, err := OpenTasks(filepath.Join(t.TempDir(), TasksFile), opts...)
	if err != nil {
		t.Fatalf("OpenTasks: %v", err)
	}
	t.Cleanup(func() {
		if err := ts.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ts
}

func ptr[T any](v T) *T { return &v }

// fullRecord has every field set.
func fullRecord(id string) *task.Record {
	sub := time.Date(2026, 11, 2, 10, 0, 0, 123456789, time.UTC)
	return &task.Record{
		ID:        id,
		Signature: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Spec: task.Spec{
			Argv: []string{"make", "-j2", "all"}, Inputs: []string{"/src"},
			Env: []string{"PATH=/bin", "Q=\"<&>\""}, Dir: "/src",
			Limits: task.Limits{CPUCores: 1.5, MemoryMB: 512, IOPS: 100, NetMbps: 10, Pids: 64},
		},
		State:       task.Failed,
		ExitCode:    ptr(2),
		Signal:      "",
		OOMKilled:   true,
		Error:       "oom",
		Limits:      task.Limits{CPUCores: 2, MemoryMB: 1024},
		Peak:        task.Stats{CPUPct: ptr(180.5), MemoryMB: ptr(1023.9), IOPS: nil, NetMbps: ptr(0.0)},
		Mean:        task.Stats{CPUPct: ptr(90.0)},
		Samples:     3600,
		SubmittedAt: sub, StartedAt: ptr(sub.Add(time.Second)), FinishedAt: ptr(sub.Add(time.Hour)),
		DurationS: 3599, LogDir: "/var/log/x", InputBytes: 1 << 40,
	}
}

// rec makes a small record.
func rec(id, sig string, st task.State, submitted time.Time) *task.Record {
	return &task.Record{ID: id, Signature: sig, State: st, SubmittedAt: submitted, Spec: task.Spec{Argv: []string{"true"}}}
}

func TestTasksRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    *task.Record
	}{
		{"every field", fullRecord(NewID())},
		{"minimal", rec("m", "", task.Queued, time.Time{})},
		{"unicode id", rec("tâche-✓", "s", task.Running, time.Unix(-5, 0).UTC())},
	}
	ts := openTestTasks(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ts.Put(tt.r); err != nil {
				t.Fatal(err)
			}
			got, err := ts.Get(tt.r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.r, got); diff != "" {
				t.Errorf("Get mismatch (-want +got):\n%s", diff)
			}
			if got == tt.r {
				t.Error("Get returned the caller's pointer")
			}
		})
	}
	checkIndexes(t, ts)
}

func TestTasksGetNotFound(t *testing.T) {
	ts := openTestTasks(t)
	if _, err := ts.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
}

func TestTasksInvalid(t *testing.T) {
	tests := []struct {
		name string
		r    *task.Record
	}{
		{"nil", nil},
		{"empty id", rec("", "s", task.Queued, t0)},
		{"long id", rec(strings.Repeat("x", maxIDLen+1), "s", task.Queued, t0)},
		{"NUL in id", rec("a\x00b", "s", task.Queued, t0)},
		{"NUL in signature", rec("a", "s\x00", task.Queued, t0)},
		{"empty state", rec("a", "s", "", t0)},
		{"unknown state", rec("a", "s", "paused", t0)},
		{"NaN stat", func() *task.Record { r := rec("a", "s", task.Succeeded, t0); r.Peak.CPUPct = ptr(math.NaN()); return r }()},
		{"year 10000", rec("a", "s", task.Queued, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))},
	}
	ts := openTestTasks(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ts.Put(tt.r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Put = %v, want ErrInvalid", err)
			}
			// A batch with one bad record writes nothing.
			if err := ts.PutBatch([]*task.Record{rec("ok", "s", task.Queued, t0), tt.r}); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutBatch = %v, want ErrInvalid", err)
			}
			if _, err := ts.Get("ok"); !errors.Is(err, ErrNotFound) {
				t.Errorf("rejected batch stored a record: %v", err)
			}
		})
	}
	for _, f := range []Filter{{State: "paused"}, {Limit: -1}} {
		if _, err := ts.List(f); !errors.Is(err, ErrInvalid) {
			t.Errorf("List(%+v) = %v, want ErrInvalid", f, err)
		}
	}
	if _, err := ts.BySignature("", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("BySignature(\"\") = %v, want ErrInvalid", err)
	}
}

// checkIndexes verifies that each record has exactly its three index
// entries and that no index entry is left over.
func checkIndexes(t *testing.T, ts *Tasks) {
	t.Helper()
	err := ts.db.View(func(tx *bolt.Tx) error {
		want := map[string]map[string]bool{
			string(bucketByTime): {}, string(bucketBySig): {}, string(bucketByState): {},
		}
		err := tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			if r.ID != string(k) {
				return fmt.Errorf("record under key %q has id %q", k, r.ID)
			}
			kt, ks, kst := indexKeys(r)
			want[string(bucketByTime)][string(kt)] = true
			want[string(bucketBySig)][string(ks)] = true
			want[string(bucketByState)][string(kst)] = true
			return nil
		})
		if err != nil {
			return err
		}
		for name, keys := range want {
			got := map[string]bool{}
			if err := tx.Bucket([]byte(name)).ForEach(func(k, _ []byte) error {
				got[string(k)] = true
				return nil
			}); err != nil {
				return err
			}
			if diff := cmp.Diff(keys, got); diff != "" {
				return fmt.Errorf("index %s (-want +got):\n%s", name, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func ids(rs []*task.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestTasksIndexesAfterReplace(t *testing.T) {
	type step struct {
		sig   string
		state task.State
		sub   time.Time
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"queued to running to succeeded", []step{{"s1", task.Queued, t0}, {"s1", task.Running, t0}, {"s1", task.Succeeded, t0}}},
		{"same state rewritten", []step{{"s1", task.Queued, t0}, {"s1", task.Queued, t0}}},
		{"signature changes", []step{{"s1", task.Queued, t0}, {"s2", task.Queued, t0}}},
		{"submission time changes", []step{{"s1", task.Queued, t0}, {"s1", task.Failed, t0.Add(time.Hour)}}},
		{"everything changes", []step{{"s1", task.Queued, t0}, {"s2", task.Cancelled, t0.Add(-time.Hour)}, {"s3", task.Running, t0}}},
	}
	states := []task.State{task.Queued, task.Running, task.Succeeded, task.Failed, task.Cancelled}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := openTestTasks(t)
			// A neighbour that must not be disturbed.
			if err := ts.Put(rec("other", "s1", task.Queued, t0)); err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				if err := ts.Put(rec("x", st.sig, st.state, st.sub)); err != nil {
					t.Fatal(err)
				}
				for _, s := range states {
					got, err := ts.List(Filter{State: s})
					if err != nil {
						t.Fatal(err)
					}
					if in := slices.Contains(ids(got), "x"); in != (s == st.state) {
						t.Errorf("step %d: x in state index %s = %v", i, s, in)
					}
				}
				for _, sig := range []string{"s1", "s2", "s3"} {
					got, err := ts.BySignature(sig, 0)
					if err != nil {
						t.Fatal(err)
					}
					if in := slices.Contains(ids(got), "x"); in != (sig == st.sig) {
						t.Errorf("step %d: x in signature index %s = %v", i, sig, in)
					}
				}
				all, err := ts.List(Filter{})
				if err != nil {
					t.Fatal(err)
				}
				if len(all) != 2 {
					t.Errorf("step %d: List() has %d records, want 2", i, len(all))
				}
				checkIndexes(t, ts)
			}
			if got, err := ts.Get("other"); err != nil || got.State != task.Queued {
				t.Errorf("neighbour disturbed: %+v, %v", got, err)
			}
		})
	}
}

func TestTasksList(t *testing.T) {
	ts := openTestTasks(t)
	// 30 records: signature i%3, state i%5, submitted at t0 + i min, except
	// that 10 and 11 share a submission time (ties sort by id, descending).
	states := []task.State{task.Queued, task.Running, task.Succeeded, task.Failed, task.Cancelled}
	var all []*task.Record
	for i := range 30 {
		sub := t0.Add(time.Duration(i) * time.Minute)
		if i == 11 {
			sub = t0.Add(10 * time.Minute)
		}
		all = append(all, rec(fmt.Sprintf("id%02d", i), fmt.Sprintf("sig%d", i%3), states[i%5], sub))
	}
	// Put in a scrambled order, in two batches.
	shuffled := slices.Clone(all)
	for i := range shuffled {
		j := (i * 7) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	if err := ts.PutBatch(shuffled[:13]); err != nil {
		t.Fatal(err)
	}
	if err := ts.PutBatch(shuffled[13:]); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, ts)

	// want filters all newest first.
	want := func(f Filter) []string {
		out := []string{}
		for i := len(all) - 1; i >= 0; i-- {
			r := all[i]
			if (f.State == "" || r.State == f.State) && (f.Signature == "" || r.Signature == f.Signature) {
				out = append(out, r.ID)
			}
		}
		// id11 and id10 tie on time; id11 > id10 so it comes first, which
		// is already the reverse index order above.
		if f.Limit > 0 && len(out) > f.Limit {
			out = out[:f.Limit]
		}
		return out
	}
	tests := []struct {
		name string
		f    Filter
	}{
		{"all", Filter{}},
		{"limit", Filter{Limit: 4}},
		{"limit above count", Filter{Limit: 100}},
		{"by state", Filter{State: task.Running}},
		{"by signature", Filter{Signature: "sig1"}},
		{"by signature and state", Filter{Signature: "sig2", State: task.Succeeded}},
		{"by signature and state, limit", Filter{Signature: "sig0", State: task.Queued, Limit: 1}},
		{"unknown signature", Filter{Signature: "nope"}},
		{"signature that prefixes others", Filter{Signature: "sig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ts.List(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want(tt.f), ids(got)); diff != "" {
				t.Errorf("List(%+v) (-want +got):\n%s", tt.f, diff)
			}
		})
	}
	got, err := ts.BySignature("sig1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want(Filter{Signature: "sig1", Limit: 3}), ids(got)); diff != "" {
		t.Errorf("BySignature (-want +got):\n%s", diff)
	}
}

func TestTasksPutBatchDuplicateIDs(t *testing.T) {
	ts := openTestTasks(t)
	err := ts.PutBatch([]*task.Record{
		rec("a", "s1", task.Queued, t0),
		rec("a", "s2", task.Running, t0.Add(time.Second)),
		rec("b", "s1", task.Queued, t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ts.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != task.Running || got.Signature != "s2" {
		t.Errorf("last write did not win: %+v", got)
	}
	checkIndexes(t, ts)
}

func TestTasksReopenPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), TasksFile)
	ts, err := OpenTasks(path)
	if err != nil {
		t.Fatal(err)
	}
	want := fullRecord("persist")
	if err := ts.Put(want); err != nil {
		t.Fatal(err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ts.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ts.Get("persist"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := ts.Put(want); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}

	ts, err = OpenTasks(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	got, err := ts.Get("persist")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
	checkIndexes(t, ts)
}

func TestTasksSecondOpenFails(t *testing.T) {
	ts := openTestTasks(t)
	tests := []struct {
		name string
		opts []Option
	}{
		{"default timeout", nil},
		{"short timeout", []Option{WithLockTimeout(50 * time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenTasks(ts.db.Path(), tt.opts...)
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("second OpenTasks = %v, want ErrLocked", err)
			}
			if want := "pid " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		})
	}
}

// TestTasksLockedByOtherProcess holds the lock in a child process (this
// test binary, see TestMain) and expects its pid in the error.
func TestTasksLockedByOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), TasksFile)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not get ready: %q, %v; stderr: %s", line, err, stderr.String())
	}

	_, err = OpenTasks(path, WithLockTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrLocked) {
		t.Errorf("OpenTasks = %v, want ErrLocked", err)
	} else if want := fmt.Sprintf("pid %d", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the helper's %s", err, want)
	} else {
		t.Logf("error: %v", err)
	}

	stdin.Close() // the helper closes the store and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; stderr: %s", err, stderr.String())
	}
	ts, err := OpenTasks(path, WithLockTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("open after the helper exited: %v", err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTasksCorruptRecord(t *testing.T) {
	ts := openTestTasks(t)
	for _, r := range []*task.Record{rec("good1", "s", task.Queued, t0), rec("bad", "s", task.Queued, t0.Add(time.Second)), rec("good2", "s", task.Queued, t0.Add(2*time.Second))} {
		if err := ts.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	// Damage "bad" behind the store's back; its index entries stay.
	if err := ts.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).Put([]byte("bad"), []byte{recordV1, '{', '"'})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Get("bad"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get(bad) = %v, want ErrCorrupt", err)
	}
	got, err := ts.List(Filter{Signature: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"good2", "good1"}, ids(got)); diff != "" {
		t.Errorf("List skips the corrupt record (-want +got):\n%s", diff)
	}
	// Replacing it removes its old index entries by scanning.
	if err := ts.Put(rec("bad", "t", task.Running, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, ts)
}

func TestTasksSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), TasksFile)
	ts, err := OpenTasks(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.AppendUvarint(nil, schemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTasks(path); !errors.Is(err, ErrSchema) {
		t.Errorf("OpenTasks of a newer schema = %v, want ErrSchema", err)
	}
}
