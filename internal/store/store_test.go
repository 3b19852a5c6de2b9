package store

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

func TestOpenBundlesBoth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	reg := prometheus.NewRegistry()
	st, err := Open(dir, WithRegisterer(reg), WithRetention(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r := rec(NewID(), "sig", task.Running, t0)
	if err := st.Tasks.Put(r); err != nil {
		t.Fatal(err)
	}
	in := []resource.Sample{sampleAt(t0, 1, allDims), sampleAt(t0.Add(time.Second), 2, allDims)}
	if err := st.Samples.Append(r.ID, r.Signature, in...); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{TasksFile, filepath.Join(SamplesDir, "wal")} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"prescient_store_samples_appended_total", "prescient_store_task_commit_seconds", "prometheus_tsdb_head_series"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	st, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Tasks.Get(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("record after reopen (-want +got):\n%s", diff)
	}
	curve, err := st.Samples.Curve(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storedAll(in), curve); diff != "" {
		t.Errorf("curve after reopen (-want +got):\n%s", diff)
	}
}

func TestOpenSecondFails(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	_, err = Open(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("second Open took %v: it should give up after about a second", elapsed)
	}
	for _, want := range []string{"tasks.db", "state dir in use", "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The failed Open left the first one working.
	if err := st.Tasks.Put(rec("a", "s", task.Queued, t0)); err != nil {
		t.Errorf("Put after a failed second Open: %v", err)
	}
}

func TestOpenReleasesTasksWhenSamplesFail(t *testing.T) {
	dir := t.TempDir()
	// A file where the TSDB directory should be makes OpenSamples fail.
	if err := os.WriteFile(filepath.Join(dir, SamplesDir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("Open succeeded with a file in place of tsdb/")
	}
	// tasks.db must have been closed again: its lock is free.
	ts, err := OpenTasks(filepath.Join(dir, TasksFile), WithLockTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatalf("tasks.db still locked after the failed Open: %v", err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInvalid(t *testing.T) {
	if _, err := Open(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(\"\") = %v, want ErrInvalid", err)
	}
}

// TestSamplesCloseStopsGoroutines checks that the TSDB's goroutines run
// while it is open and are all gone once Close returns.
func TestSamplesCloseStopsGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	s, err := OpenSamples(SamplesConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append("a", "sig", sampleAt(t0, 1, allDims), sampleAt(t0.Add(3*time.Hour), 2, allDims)); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := goleak.Find(ignore); err == nil {
		t.Fatal("no TSDB goroutine found while open: the check below would prove nothing")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}
