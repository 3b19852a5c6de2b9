package store

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oklog/ulid/v2"

	"github.com/prescient-sched/prescient/internal/resource"
)

// t0 is a fixed, 2 h-aligned start time for sample tests.
var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const allDims = resource.All

func openTestSamples(t testing.TB, cfg SamplesConfig) *Samples {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "tsdb")
	}
	s, err := OpenSamples(cfg)
	if err != nil {
		t.Fatalf("OpenSamples: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// sampleAt makes a sample whose values encode i, already on the quanta so
// that a round trip must give them back exactly.
func sampleAt(tm time.Time, i int, avail resource.Set) resource.Sample {
	f := float64(i)
	return resource.Sample{
		Time: tm, Avail: avail,
		CPU: 0.125 + f/1024, MemoryMB: 100 + f/4, RSSMB: 90 + f/4, PeakMB: 120 + f,
		IOPS: f / 2, NetInMbps: 1 + f/1024, NetOutMbps: 2 + f/512,
	}
}

// stored returns what a read gives back for in: quantized available
// fields, zero unavailable ones, UTC millisecond time.
func stored(in resource.Sample) resource.Sample {
	out := resource.Sample{Time: time.UnixMilli(in.Time.UnixMilli()).UTC()}
	for c := range numColumns {
		if in.Avail.Has(columns[c].dim) {
			c.set(&out, c.quantize(c.get(&in)))
		}
	}
	return out
}

func storedAll(in []resource.Sample) []resource.Sample {
	out := []resource.Sample{}
	for _, s := range in {
		if s.Avail != 0 {
			out = append(out, stored(s))
		}
	}
	return out
}

func TestSamplesRoundTrip(t *testing.T) {
	series := func(n int, step time.Duration, avail func(i int) resource.Set) []resource.Sample {
		out := make([]resource.Sample, n)
		for i := range out {
			out[i] = sampleAt(t0.Add(time.Duration(i)*step), i, avail(i))
		}
		return out
	}
	all := func(int) resource.Set { return allDims }
	tests := []struct {
		name string
		in   []resource.Sample
	}{
		{"all dims, 1 s steps", series(120, time.Second, all)},
		{"100 ms sampling", series(50, 100*time.Millisecond, all)},
		{"1 ms steps", series(20, time.Millisecond, all)},
		{"cpu only", series(10, time.Second, func(int) resource.Set { return resource.SetOf(resource.CPU) })},
		{"memory and net", series(10, time.Second, func(int) resource.Set { return resource.SetOf(resource.Memory, resource.Net) })},
		{"availability changes", series(12, time.Second, func(i int) resource.Set { return resource.Set(1 << (i % 4)) })},
		{"some samples with nothing available", series(12, time.Second, func(i int) resource.Set {
			if i%3 == 0 {
				return 0
			}
			return allDims
		})},
		{"unquantized values", func() []resource.Sample {
			out := series(10, time.Second, all)
			for i := range out {
				out[i].CPU = math.Pi * float64(i)
				out[i].MemoryMB = math.E * 1000 * float64(i)
				out[i].NetInMbps = 0.0003 * float64(i)
			}
			return out
		}()},
	}
	s := openTestSamples(t, SamplesConfig{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("task-%d", i)
			if err := s.Append(id, "sig", tt.in...); err != nil {
				t.Fatalf("Append: %v", err)
			}
			got, err := s.Curve(id)
			if err != nil {
				t.Fatalf("Curve: %v", err)
			}
			if diff := cmp.Diff(storedAll(tt.in), got); diff != "" {
				t.Errorf("Curve mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQuantize(t *testing.T) {
	tests := []struct {
		name    string
		c       column
		in      float64
		want    float64
		maxDiff float64
	}{
		{"cpu exact", colCPU, 0.375, 0.375, 0},
		{"cpu rounds to 1/8192 core", colCPU, 0.37123, 3041.0 / 8192, 1.0 / 16384},
		{"memory page exact", colMem, 4.0 / 1024, 4.0 / 1024, 0},
		{"memory 1 KiB", colMem, 100.0004, 100, 1.0 / 2048},
		{"net ≈ 1 kbit/s", colNetIn, 0.0004, 0, 1.0 / 2048},
		{"negative", colIO, -3.3, -3.296875, 1.0 / 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.quantize(tt.in)
			if got != tt.want {
				t.Errorf("quantize(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if math.Abs(got-tt.in) > tt.maxDiff {
				t.Errorf("quantize(%v) = %v, off by more than %v", tt.in, got, tt.maxDiff)
			}
			if again := tt.c.quantize(got); again != got {
				t.Errorf("quantize not idempotent: %v then %v", got, again)
			}
		})
	}
}

func TestSamplesUnavailableIsNotZero(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	in := resource.Sample{Time: t0, Avail: resource.SetOf(resource.CPU), CPU: 0, MemoryMB: 512, NetInMbps: 3}
	if err := s.Append("a", "sig", in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Curve("a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d samples, want 1", len(got))
	}
	if got[0].Avail != resource.SetOf(resource.CPU) {
		t.Errorf("Avail = %b, want only CPU", got[0].Avail)
	}
	if got[0].MemoryMB != 0 || got[0].NetInMbps != 0 {
		t.Errorf("unavailable fields came back non-zero: %+v", got[0])
	}
	// A zero CPU value that is available stays available.
	if !got[0].Avail.Has(resource.CPU) || got[0].CPU != 0 {
		t.Errorf("available zero CPU lost: %+v", got[0])
	}
}

func TestSamplesRuns(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	want := map[string][]resource.Sample{}
	for i, id := range []string{"a1", "a2", "a3"} {
		var in []resource.Sample
		for j := range 5 + i {
			in = append(in, sampleAt(t0.Add(time.Duration(j)*time.Second), j*(i+1), allDims))
		}
		if err := s.Append(id, "sigA", in...); err != nil {
			t.Fatal(err)
		}
		want[id] = storedAll(in)
	}
	if err := s.Append("b1", "sigB", sampleAt(t0, 1, allDims)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sig  string
		want map[string][]resource.Sample
	}{
		{"three runs", "sigA", want},
		{"one run", "sigB", map[string][]resource.Sample{"b1": storedAll([]resource.Sample{sampleAt(t0, 1, allDims)})}},
		{"no runs", "sigC", map[string][]resource.Sample{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Runs(tt.sig)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Runs(%s) mismatch (-want +got):\n%s", tt.sig, diff)
			}
		})
	}
}

func TestSamplesAppendErrors(t *testing.T) {
	good := sampleAt(t0, 1, allDims)
	nanCPU := good
	nanCPU.CPU = math.NaN()
	infMem := good
	infMem.Avail = resource.SetOf(resource.Memory)
	infMem.PeakMB = math.Inf(1)
	nanUnavailable := good
	nanUnavailable.Avail = resource.SetOf(resource.CPU)
	nanUnavailable.NetInMbps = math.NaN()
	zeroTime := good
	zeroTime.Time = time.Time{}

	tests := []struct {
		name    string
		task    string
		sig     string
		ss      []resource.Sample
		wantErr error
	}{
		{"empty task", "", "sig", []resource.Sample{good}, ErrInvalid},
		{"empty sig", "x", "", []resource.Sample{good}, ErrInvalid},
		{"bad utf8", "x\xff", "sig", []resource.Sample{good}, ErrInvalid},
		{"zero time", "x", "sig", []resource.Sample{zeroTime}, ErrInvalid},
		{"NaN available", "x", "sig", []resource.Sample{nanCPU}, ErrInvalid},
		{"Inf available", "x", "sig", []resource.Sample{infMem}, ErrInvalid},
		{"NaN unavailable is fine", "x", "sig", []resource.Sample{nanUnavailable}, nil},
		{"no samples", "x", "sig", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestSamples(t, SamplesConfig{})
			err := s.Append(tt.task, tt.sig, tt.ss...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Append error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && tt.task != "" {
				if got, _ := s.Curve(tt.task); len(got) != 0 {
					t.Errorf("rejected Append stored %d samples", len(got))
				}
			}
		})
	}
}

func TestSamplesOrdering(t *testing.T) {
	at := func(d time.Duration, v int) resource.Sample { return sampleAt(t0.Add(d), v, allDims) }
	tests := []struct {
		name     string
		ooo      time.Duration
		first    []resource.Sample // appended to "a" first
		other    []resource.Sample // then to "b"
		second   []resource.Sample // then to "a" again
		wantErr  error
		wantCurv int // samples of "a" afterwards
	}{
		{"in order", -1, []resource.Sample{at(0, 1)}, nil, []resource.Sample{at(time.Second, 2)}, nil, 2},
		{"older than series, no ooo window", -1, []resource.Sample{at(time.Minute, 1)}, nil, []resource.Sample{at(0, 2)}, ErrOutOfOrder, 1},
		{"older than series, inside ooo window", time.Hour, []resource.Sample{at(time.Minute, 1)}, nil, []resource.Sample{at(0, 2)}, nil, 2},
		{"late batch behind head, no ooo window", -1, nil, []resource.Sample{at(3*time.Hour, 1)},
			[]resource.Sample{at(0, 1), at(time.Second, 2)}, ErrOutOfOrder, 0},
		{"late batch behind head, default window", 0, nil, []resource.Sample{at(3*time.Hour, 1)},
			[]resource.Sample{at(0, 1), at(time.Second, 2)}, nil, 2},
		{"late batch beyond the window", 0, nil, []resource.Sample{at(9*time.Hour, 1)},
			[]resource.Sample{at(0, 1)}, ErrOutOfOrder, 0},
		{"same ms same value is dropped", -1, []resource.Sample{at(0, 1)}, nil, []resource.Sample{at(0, 1)}, nil, 1},
		{"same ms other value", -1, []resource.Sample{at(0, 1)}, nil, []resource.Sample{at(0, 2)}, ErrDuplicate, 1},
		{"batch is atomic", -1, []resource.Sample{at(time.Minute, 1)}, nil,
			[]resource.Sample{at(2*time.Minute, 2), at(3*time.Minute, 3), at(30*time.Second, 4)}, ErrOutOfOrder, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestSamples(t, SamplesConfig{OutOfOrderWindow: tt.ooo})
			if err := s.Append("a", "sig", tt.first...); err != nil {
				t.Fatal(err)
			}
			if err := s.Append("b", "sig", tt.other...); err != nil {
				t.Fatal(err)
			}
			err := s.Append("a", "sig", tt.second...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("second Append error = %v, want %v", err, tt.wantErr)
			}
			got, err := s.Curve("a")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantCurv {
				t.Errorf("curve has %d samples, want %d", len(got), tt.wantCurv)
			}
			for i := 1; i < len(got); i++ {
				if !got[i-1].Time.Before(got[i].Time) {
					t.Errorf("curve not time-ordered at %d: %v then %v", i, got[i-1].Time, got[i].Time)
				}
			}
		})
	}
}

func TestSamplesTwoSignaturesOneTask(t *testing.T) {
	// Not a supported use, but a read must still be one ordered curve.
	s := openTestSamples(t, SamplesConfig{})
	if err := s.Append("a", "sig1", sampleAt(t0, 1, allDims), sampleAt(t0.Add(2*time.Second), 3, allDims)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("a", "sig2", sampleAt(t0.Add(time.Second), 2, allDims)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Curve("a")
	if err != nil {
		t.Fatal(err)
	}
	want := storedAll([]resource.Sample{sampleAt(t0, 1, allDims), sampleAt(t0.Add(time.Second), 2, allDims), sampleAt(t0.Add(2*time.Second), 3, allDims)})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Curve mismatch (-want +got):\n%s", diff)
	}
}

func TestSamplesConcurrentAppend(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	const (
		writers = 8
		batches = 40
		batch   = 10
	)
	var wg sync.WaitGroup
	errc := make(chan error, 2*writers)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", w)
			for b := range batches {
				ss := make([]resource.Sample, batch)
				for i := range ss {
					n := b*batch + i
					ss[i] = sampleAt(t0.Add(time.Duration(n)*100*time.Millisecond), n, allDims)
				}
				if err := s.Append(id, fmt.Sprintf("sig%d", w%2), ss...); err != nil {
					errc <- err
					return
				}
			}
		}()
		go func() { // readers race the writers
			defer wg.Done()
			for range batches / 4 {
				if _, err := s.Curve(fmt.Sprintf("w%d", w)); err != nil {
					errc <- err
					return
				}
				if _, err := s.Runs(fmt.Sprintf("sig%d", w%2)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for w := range writers {
		got, err := s.Curve(fmt.Sprintf("w%d", w))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != batches*batch {
			t.Errorf("w%d: %d samples, want %d", w, len(got), batches*batch)
		}
	}
	runs, err := s.Runs("sig0")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != writers/2 {
		t.Errorf("Runs(sig0) has %d tasks, want %d", len(runs), writers/2)
	}
}

func TestSamplesReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tsdb")
	in := make([]resource.Sample, 300)
	for i := range in {
		in[i] = sampleAt(t0.Add(time.Duration(i)*time.Second), i, allDims)
	}
	s, err := OpenSamples(SamplesConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append("a", "sig", in...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Append("a", "sig", sampleAt(t0.Add(time.Hour), 1, allDims)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Curve("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Curve after Close = %v, want ErrClosed", err)
	}
	if err := s.Compact(); !errors.Is(err, ErrClosed) {
		t.Errorf("Compact after Close = %v, want ErrClosed", err)
	}

	s = openTestSamples(t, SamplesConfig{Dir: dir})
	got, err := s.Curve("a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storedAll(in), got); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
	// Appending continues after the replayed samples.
	if err := s.Append("a", "sig", sampleAt(t0.Add(time.Hour), 1, allDims)); err != nil {
		t.Errorf("Append after reopen: %v", err)
	}
}

// blockDirs lists the persisted blocks (ULID-named directories) of a TSDB.
func blockDirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, err := ulid.ParseStrict(e.Name()); err == nil && e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// copyDir copies a directory tree, skipping top-level entries in skip; it
// stands for the disk as a crash leaves it.
func copyDir(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		if rel == "lock" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSamplesWALMakesHeadDurable shows that committed samples not yet in a
// block survive a crash because of the WAL, and only because of it.
func TestSamplesWALMakesHeadDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tsdb")
	s := openTestSamples(t, SamplesConfig{Dir: dir})
	in := make([]resource.Sample, 200)
	for i := range in {
		in[i] = sampleAt(t0.Add(time.Duration(i)*time.Second), i, allDims)
	}
	if err := s.Append("a", "sig", in...); err != nil {
		t.Fatal(err)
	}
	if blocks := blockDirs(t, dir); len(blocks) != 0 {
		t.Fatalf("samples already in blocks %v: the test needs them only in the head", blocks)
	}

	tests := []struct {
		name string
		skip []string
		want int
	}{
		{"crash image with WAL", nil, len(in)},
		{"crash image without WAL", []string{"wal"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The copy is taken while s is open: no clean shutdown.
			crash := filepath.Join(t.TempDir(), "tsdb")
			copyDir(t, dir, crash, tt.skip...)
			c := openTestSamples(t, SamplesConfig{Dir: crash})
			got, err := c.Curve("a")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("recovered %d samples, want %d", len(got), tt.want)
			}
		})
	}
}

func TestSamplesRetention(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		wantOld   bool
	}{
		{"old block beyond retention is deleted", 24 * time.Hour, false},
		{"old block within retention is kept", DefaultRetention, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestSamples(t, SamplesConfig{Retention: tt.retention})
			// old and mid end up in blocks 5 days apart; new keeps mid's
			// range behind the head so that it can be persisted.
			for _, a := range []struct {
				id string
				at time.Time
			}{{"old", t0}, {"mid", t0.Add(5 * 24 * time.Hour)}, {"new", t0.Add(5*24*time.Hour + 5*time.Hour)}} {
				ss := []resource.Sample{sampleAt(a.at, 1, allDims), sampleAt(a.at.Add(time.Minute), 2, allDims)}
				if err := s.Append(a.id, "sig", ss...); err != nil {
					t.Fatalf("append %s: %v", a.id, err)
				}
			}
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				id   string
				want bool
			}{{"old", tt.wantOld}, {"mid", true}, {"new", true}} {
				got, err := s.Curve(c.id)
				if err != nil {
					t.Fatal(err)
				}
				if (len(got) > 0) != c.want {
					t.Errorf("task %s: %d samples, want present=%v", c.id, len(got), c.want)
				}
			}
			if n := len(blockDirs(t, s.dir())); n == 0 {
				t.Errorf("no block persisted: retention was not exercised")
			}
		})
	}
}

// TestSamplesStaleRefs appends to a task whose cached series references the
// head has dropped after compaction.
func TestSamplesStaleRefs(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	if err := s.Append("a", "sig", sampleAt(t0, 1, allDims)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("b", "sig", sampleAt(t0.Add(4*time.Hour), 1, allDims)); err != nil {
		t.Fatal(err)
	}
	stale := s.taskRefs("a", "sig").refs[colCPU].Load()
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if n := s.db.Head().NumSeries(); n != uint64(numColumns) {
		t.Fatalf("head has %d series after compaction, want %d (only b's)", n, numColumns)
	}
	later := sampleAt(t0.Add(4*time.Hour+time.Second), 2, allDims)
	if err := s.Append("a", "sig", later); err != nil {
		t.Fatal(err)
	}
	if fresh := s.taskRefs("a", "sig").refs[colCPU].Load(); fresh == stale {
		t.Errorf("cached ref %d was not replaced", stale)
	}
	got, err := s.Curve("a")
	if err != nil {
		t.Fatal(err)
	}
	want := storedAll([]resource.Sample{sampleAt(t0, 1, allDims), later})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Curve mismatch (-want +got):\n%s", diff)
	}
	// b was not disturbed by a's new series.
	if got, _ := s.Curve("b"); len(got) != 1 {
		t.Errorf("b has %d samples, want 1", len(got))
	}
	s.Forget("a")
	if err := s.Append("a", "sig", sampleAt(t0.Add(4*time.Hour+2*time.Second), 3, allDims)); err != nil {
		t.Errorf("Append after Forget: %v", err)
	}
}

func TestSamplesSecondOpenFails(t *testing.T) {
	s := openTestSamples(t, SamplesConfig{})
	_, err := OpenSamples(SamplesConfig{Dir: s.dir()})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenSamples = %v, want ErrLocked", err)
	}
	t.Logf("error: %v", err)
}

func TestSamplesConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     SamplesConfig
		wantErr error
		wantRet time.Duration
		wantOOO time.Duration
	}{
		{"defaults", SamplesConfig{Dir: "x"}, nil, DefaultRetention, DefaultOutOfOrderWindow},
		{"explicit", SamplesConfig{Dir: "x", Retention: time.Hour, OutOfOrderWindow: time.Minute}, nil, time.Hour, time.Minute},
		{"ooo disabled", SamplesConfig{Dir: "x", OutOfOrderWindow: -1}, nil, DefaultRetention, 0},
		{"no dir", SamplesConfig{}, ErrInvalid, 0, 0},
		{"negative retention", SamplesConfig{Dir: "x", Retention: -time.Hour}, ErrInvalid, 0, 0},
		{"sub-ms retention", SamplesConfig{Dir: "x", Retention: time.Microsecond}, ErrInvalid, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("validate = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if tt.cfg.Retention != tt.wantRet || tt.cfg.OutOfOrderWindow != tt.wantOOO || tt.cfg.Logger == nil {
				t.Errorf("validated config %+v", tt.cfg)
			}
		})
	}
}
