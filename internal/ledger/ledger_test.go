package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

func newTest(t *testing.T, cfg Config) *Ledger {
	t.Helper()
	if cfg.Capacity == (resource.Vector{}) {
		cfg.Capacity = resource.Vector{resource.CPU: 4, resource.Memory: 1000, resource.IO: 100, resource.Net: 100}
	}
	if cfg.SlotWidth == 0 {
		cfg.SlotWidth = time.Second
	}
	if cfg.Horizon == 0 {
		cfg.Horizon = time.Minute
	}
	if cfg.Start.IsZero() {
		cfg.Start = t0
	}
	l, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCurveValidate(t *testing.T) {
	ok := Step{Dur: time.Second, P50: resource.Vector{resource.CPU: 1}, PHi: resource.Vector{resource.CPU: 2}}
	tests := []struct {
		name string
		c    Curve
		want string // substring of the error; "" = valid
	}{
		{"valid", Curve{Steps: []Step{ok}}, ""},
		{"valid hiq", Curve{HiQ: 0.99, Steps: []Step{ok, ok}}, ""},
		{"empty", Curve{}, "no steps"},
		{"zero duration", Curve{Steps: []Step{{P50: resource.Vector{resource.CPU: 1}, PHi: resource.Vector{resource.CPU: 1}}}}, "not positive"},
		{"negative amount", Curve{Steps: []Step{{Dur: 1, P50: resource.Vector{resource.Memory: -1}}}}, "out of range"},
		{"nan", Curve{Steps: []Step{{Dur: 1, PHi: resource.Vector{resource.IO: nanf()}}}}, "out of range"},
		{"phi below p50", Curve{Steps: []Step{{Dur: 1, P50: resource.Vector{resource.CPU: 2}, PHi: resource.Vector{resource.CPU: 1}}}}, "below p50"},
		{"hiq 0.5", Curve{HiQ: 0.5, Steps: []Step{ok}}, "quantile"},
		{"hiq 1", Curve{HiQ: 1, Steps: []Step{ok}}, "quantile"},
		{"too many steps", Curve{Steps: make([]Step, MaxSteps+1)}, "more than"},
		{"overflow", Curve{Steps: []Step{{Dur: 1 << 62}, {Dur: 1 << 62}}}, "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func nanf() float64 { z := 0.0; return z / z }

func TestStepAt(t *testing.T) {
	s := Step{Dur: 1, P50: resource.Vector{resource.CPU: 1, resource.Memory: 100}, PHi: resource.Vector{resource.CPU: 3, resource.Memory: 100}}
	tests := []struct {
		name string
		q    float64
		want resource.Vector
	}{
		{"median", 0.5, s.P50},
		{"below median", 0.1, s.P50},
		{"hi", 0.9, s.PHi},
		{"above hi", 0.99, s.PHi},
		{"between", 0.7, resource.Vector{resource.CPU: 2, resource.Memory: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.At(tt.q, 0.9); got != tt.want && got.Sub(tt.want).Max(tt.want.Sub(got)).LessEq(resource.Vector{1e-9, 1e-9, 1e-9, 1e-9}) == false {
				t.Fatalf("At(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestCurveHard(t *testing.T) {
	c := Curve{Steps: []Step{
		{Dur: 10 * time.Second, PHi: resource.Vector{resource.Memory: 100, resource.CPU: 2}},
		{Dur: 10 * time.Second, PHi: resource.Vector{resource.Memory: 400, resource.CPU: 1}},
		{Dur: 10 * time.Second, PHi: resource.Vector{resource.Memory: 200, resource.CPU: 1}},
	}}
	h := resource.Vector{resource.CPU: 0, resource.Memory: 0.5}
	tests := []struct {
		name            string
		elapsed, window time.Duration
		want            resource.Vector
	}{
		{"first window", 0, 5 * time.Second, resource.Vector{resource.CPU: 2, resource.Memory: 150}},
		{"window reaching step 2", 5 * time.Second, 10 * time.Second, resource.Vector{resource.CPU: 2, resource.Memory: 600}},
		{"rest of curve", 15 * time.Second, 0, resource.Vector{resource.CPU: 1, resource.Memory: 600}},
		{"last step", 25 * time.Second, time.Second, resource.Vector{resource.CPU: 1, resource.Memory: 300}},
		{"outlived the curve", time.Minute, time.Second, resource.Vector{resource.CPU: 1, resource.Memory: 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Hard(tt.elapsed, tt.window, h); got != tt.want {
				t.Fatalf("Hard(%v, %v) = %v, want %v", tt.elapsed, tt.window, got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := resource.Vector{resource.CPU: 1, resource.Memory: 1}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no cpu", Config{Capacity: resource.Vector{resource.Memory: 1}}},
		{"negative", Config{Capacity: resource.Vector{resource.CPU: 1, resource.Memory: 1, resource.IO: -1}}},
		{"tiny slot", Config{Capacity: good, SlotWidth: time.Microsecond}},
		{"horizon below slot", Config{Capacity: good, SlotWidth: time.Second, Horizon: time.Millisecond}},
		{"horizon too long", Config{Capacity: good, SlotWidth: time.Millisecond, Horizon: 24 * time.Hour}},
		{"quantile", Config{Capacity: good, SoftQuantile: 1}},
		{"headroom", Config{Capacity: good, Headroom: resource.Vector{resource.CPU: -0.1}}},
		{"ttl", Config{Capacity: good, DefaultTTL: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, nil); err == nil {
				t.Fatalf("New(%+v) accepted a bad config", tt.cfg)
			}
		})
	}
	l, err := New(Config{Capacity: good}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := l.Config(); c.SlotWidth != DefaultSlotWidth || c.Horizon != DefaultHorizon || c.Headroom != DefaultHeadroom || c.SoftQuantile != 0.5 {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

// TestPeaksDontOverlap is the golden scenario, asserted directly.
func TestPeaksDontOverlap(t *testing.T) {
	l := newTest(t, Config{})
	early := Curve{Steps: []Step{{Dur: 10 * time.Second, P50: resource.Vector{resource.Memory: 800}, PHi: resource.Vector{resource.Memory: 900}}, {Dur: 20 * time.Second, P50: resource.Vector{resource.Memory: 100}, PHi: resource.Vector{resource.Memory: 150}}}}
	late := Curve{Steps: []Step{{Dur: 20 * time.Second, P50: resource.Vector{resource.Memory: 100}, PHi: resource.Vector{resource.Memory: 150}}, {Dur: 10 * time.Second, P50: resource.Vector{resource.Memory: 800}, PHi: resource.Vector{resource.Memory: 900}}}}
	for _, c := range []struct {
		id string
		c  Curve
	}{{"early", early}, {"late", late}} {
		_, fit, err := l.SoftReserve(c.id, c.c, t0, 0)
		if err != nil || !fit.OK || !fit.Start.Equal(t0) {
			t.Fatalf("%s: %v, %v; want a fit at the start", c.id, fit, err)
		}
	}
	if p := l.Snapshot(t0).SoftPeak[resource.Memory]; p != 900 {
		t.Fatalf("soft peak memory %v, want 900 (800 + 100), not the 1600 of the peaks' sum", p)
	}
	// Sized at PHi (q=0.95 ≥ HiQ), the peaks (900 + 150) no longer fit
	// beside each other: the second task moves.
	l2 := newTest(t, Config{SoftQuantile: 0.95})
	l2.SoftReserve("early", early, t0, 0)
	_, fit, _ := l2.SoftReserve("late", late, t0, 0)
	if !fit.OK || !fit.Start.After(t0) {
		t.Fatalf("at PHi: %v, want a later start", fit)
	}
}

func TestReleaseContracts(t *testing.T) {
	l := newTest(t, Config{})
	c := Flat(10*time.Second, resource.Vector{resource.CPU: 1}, resource.Vector{resource.CPU: 2})
	if l.Release("nothing") {
		t.Fatal("release without reserve released something")
	}
	if _, err := l.Get("nothing"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Get(unknown) = %v, want ErrUnknown", err)
	}
	if _, _, err := l.SoftReserve("a", c, t0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.SoftReserve("a", c, t0, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("second reserve of a: %v, want ErrExists", err)
	}
	if err := l.Adjust("a", t0, task.Limits{CPUCores: 1}); !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("adjust soft: %v, want ErrNotCommitted", err)
	}
	gen := l.Generation()
	for i, want := range []bool{true, false, false} {
		if got := l.Release("a"); got != want {
			t.Fatalf("release #%d = %v, want %v", i+1, got, want)
		}
	}
	if l.Generation() != gen+1 {
		t.Fatalf("generation %d after one release from %d", l.Generation(), gen)
	}
	select {
	case <-l.Notify():
	default:
		t.Fatal("release did not notify")
	}
	for name, err := range map[string]error{
		"commit": l.Commit("a", t0, task.Limits{CPUCores: 1}),
		"adjust": l.Adjust("a", t0, task.Limits{CPUCores: 1}),
		"resize": func() error { _, _, err := l.Resize("a", c); return err }(),
	} {
		if !errors.Is(err, ErrReleased) || errors.Is(err, ErrExpired) {
			t.Fatalf("%s after release: %v, want ErrReleased", name, err)
		}
	}
	if f := l.Free(t0); f != l.Capacity() {
		t.Fatalf("free after release %v, want all of %v", f, l.Capacity())
	}
}

func TestResizeThatDoesNotFitKeepsTheReservation(t *testing.T) {
	l := newTest(t, Config{})
	r, _, err := l.SoftReserve("a", Flat(10*time.Second, resource.Vector{resource.CPU: 1}, resource.Vector{resource.CPU: 1}), t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, fit, err := l.Resize("a", Flat(10*time.Second, resource.Vector{resource.CPU: 5}, resource.Vector{resource.CPU: 5}))
	if err != nil || fit.OK || fit.Reason != ReasonCapacity || fit.Dim != resource.CPU {
		t.Fatalf("resize beyond capacity: %+v, %v", fit, err)
	}
	if got != r || l.Snapshot(t0).SoftNow[resource.CPU] != 1 {
		t.Fatalf("reservation changed to %+v (was %+v)", got, r)
	}
	if err := l.Commit("a", t0, task.Limits{CPUCores: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Resize("a", Flat(time.Second, resource.Vector{}, resource.Vector{})); !errors.Is(err, ErrCommitted) {
		t.Fatalf("resize hard: %v, want ErrCommitted", err)
	}
	if err := l.Commit("a", t0, task.Limits{CPUCores: 1}); !errors.Is(err, ErrCommitted) {
		t.Fatalf("second commit: %v, want ErrCommitted", err)
	}
}

func TestTombstonesAreBounded(t *testing.T) {
	l := newTest(t, Config{Tombstones: 2})
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := l.SoftReserve(id, Flat(time.Second, resource.Vector{resource.CPU: 1}, resource.Vector{resource.CPU: 1}), t0, 0); err != nil {
			t.Fatal(err)
		}
		l.Release(id)
	}
	if _, err := l.Get("a"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("oldest tombstone: %v, want ErrUnknown (forgotten)", err)
	}
	for _, id := range []string{"b", "c"} {
		if _, err := l.Get(id); !errors.Is(err, ErrReleased) {
			t.Fatalf("%s: %v, want ErrReleased", id, err)
		}
	}
}

func TestHardLimits(t *testing.T) {
	l := newTest(t, Config{Headroom: resource.Vector{resource.Memory: 0.2}})
	c := Curve{Steps: []Step{{Dur: time.Minute, P50: resource.Vector{resource.CPU: 1, resource.Memory: 100}, PHi: resource.Vector{resource.CPU: 1.5, resource.Memory: 500}}}}
	got := l.HardLimits(c, 0, time.Minute)
	if got.CPUCores != 1.5 || got.MemoryMB != 600 {
		t.Fatalf("HardLimits = %+v, want cpu 1.5 memory 600", got)
	}
}

// mem is a curve of memory steps (MB), one per duration, with PHi = P50.
func mem(steps ...any) Curve {
	var c Curve
	for i := 0; i < len(steps); i += 2 {
		v := resource.Vector{resource.Memory: steps[i+1].(float64)}
		c.Steps = append(c.Steps, Step{Dur: steps[i].(time.Duration), P50: v, PHi: v})
	}
	return c
}

// TestCommitPlanLeavesRoomAfterPeak: a running task that peaks early holds
// the rest of its curve in the calendar, not its peak until it ends, so a
// task that peaks late fits beside it at once; held flat (Commit), it
// waits. Its limits are covered where they were set, and a task running
// past its plan is held flat again.
func TestCommitPlanLeavesRoomAfterPeak(t *testing.T) {
	early := mem(3*time.Second, 800.0, 5*time.Second, 40.0)
	late := mem(5*time.Second, 40.0, 3*time.Second, 800.0)
	for _, planned := range []bool{false, true} {
		l := newTest(t, Config{})
		if _, fit, err := l.SoftReserve("a", early, t0, 0); err != nil || !fit.OK {
			t.Fatalf("reserve a: %v %v", fit, err)
		}
		lim := task.Limits{MemoryMB: 880}
		var err error
		if planned {
			err = l.CommitPlan("a", t0, lim, early)
		} else {
			err = l.Commit("a", t0, lim)
		}
		if err != nil {
			t.Fatal(err)
		}
		fit, err := l.EarliestFit(late, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !planned {
			if fit.OK || fit.Reason != ReasonCommitted {
				t.Fatalf("beside a flat hold: %v, want %v", fit, ReasonCommitted)
			}
			continue
		}
		if !fit.OK || !fit.Start.Equal(t0) {
			t.Fatalf("beside a planned allocation: %v, want a fit at once", fit)
		}
		// The limits (880) are covered in the first slot, the plan after.
		if f := l.Free(t0)[resource.Memory]; f != 120 {
			t.Fatalf("free at commit %v, want 120 (1000 − the 880 held)", f)
		}
		if f := l.Free(t0.Add(4 * time.Second))[resource.Memory]; f != 960 {
			t.Fatalf("free after the peak %v, want 960 (1000 − 40 planned)", f)
		}
		// Lowered after the peak: the cover moves with the limits.
		if err := l.Adjust("a", t0.Add(3500*time.Millisecond), task.Limits{MemoryMB: 90}); err != nil {
			t.Fatal(err)
		}
		if f := l.Free(t0.Add(3500 * time.Millisecond))[resource.Memory]; f != 910 {
			t.Fatalf("free after the lowering %v, want 910", f)
		}
		if s := l.Snapshot(t0.Add(3500 * time.Millisecond)); s.Committed[resource.Memory] != 90 || s.SoftNow[resource.Memory] != 0 {
			t.Fatalf("snapshot: committed %v soft %v, want 90 and 0", s.Committed, s.SoftNow)
		}
		// Past its plan (8 s) it is held flat: nothing fits beside it
		// that needs more than 1000 − 90.
		l.Snapshot(t0.Add(9 * time.Second))
		fit, _ = l.EarliestFit(mem(time.Second, 950.0), t0.Add(9*time.Second))
		if fit.OK || fit.Reason != ReasonCommitted {
			t.Fatalf("beside a task past its plan: %v, want %v", fit, ReasonCommitted)
		}
		if !l.Release("a") {
			t.Fatal("release")
		}
		if s := l.Snapshot(t0.Add(9 * time.Second)); s.Committed != (resource.Vector{}) || s.Free[resource.Memory] != 1000 {
			t.Fatalf("after release: %+v", s)
		}
	}
}

// TestReplanFreesTheRestOfAStep: a running task's plan replaced from now
// (its current step lowered, as the scheduler does once the step's work is
// done) frees the calendar at once, except the slot at now, which still
// holds its limits; a task that would have waited for the step's end fits
// after that slot. Replan refuses a soft reservation and a flat hold.
func TestReplanFreesTheRestOfAStep(t *testing.T) {
	l := newTest(t, Config{})
	plan := mem(10*time.Second, 600.0, 10*time.Second, 40.0)
	if _, fit, err := l.SoftReserve("a", plan, t0, 0); err != nil || !fit.OK {
		t.Fatalf("reserve a: %v %v", fit, err)
	}
	if err := l.CommitPlan("a", t0, task.Limits{MemoryMB: 600}, plan); err != nil {
		t.Fatal(err)
	}
	next := mem(5*time.Second, 700.0)
	at := t0.Add(4 * time.Second)
	if fit, err := l.EarliestFit(next, at); err != nil || !fit.OK || !fit.Start.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("before the replan: %v %v, want a fit at the step's end (+10s)", fit, err)
	}
	if err := l.Adjust("a", at, task.Limits{MemoryMB: 100}); err != nil {
		t.Fatal(err)
	}
	gen := l.Generation()
	if err := l.Replan("a", at, mem(6*time.Second, 50.0, 10*time.Second, 40.0)); err != nil {
		t.Fatal(err)
	}
	if l.Generation() == gen {
		t.Fatal("replan did not move the generation: the queue would not be planned anew")
	}
	fit, err := l.EarliestFit(next, at)
	if err != nil || !fit.OK || !fit.Start.Equal(at) {
		t.Fatalf("after the replan: %v %v, want a fit at once (+4s)", fit, err)
	}
	if f := l.Free(at.Add(2 * time.Second))[resource.Memory]; f != 950 {
		t.Fatalf("free 2 s after the replan %v, want 950 (1000 − 50 planned)", f)
	}
	if f := l.Free(t0.Add(12 * time.Second))[resource.Memory]; f != 960 {
		t.Fatalf("free in the plan's second step %v, want 960", f)
	}
	if err := l.Replan("nobody", at, plan); err == nil {
		t.Fatal("replan of an unknown id: no error")
	}
	if _, fit, err := l.SoftReserve("b", next, t0.Add(30*time.Second), 0); err != nil || !fit.OK {
		t.Fatalf("reserve b: %v %v", fit, err)
	}
	if err := l.Replan("b", at, next); !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("replan of a soft reservation: %v, want ErrNotCommitted", err)
	}
	if _, fit, err := l.SoftReserve("c", mem(time.Second, 10.0), at, 0); err != nil || !fit.OK {
		t.Fatalf("reserve c: %v %v", fit, err)
	}
	if err := l.Commit("c", at, task.Limits{MemoryMB: 10}); err != nil {
		t.Fatal(err)
	}
	if err := l.Replan("c", at, next); !errors.Is(err, ErrUnplanned) {
		t.Fatalf("replan of a flat hold: %v, want ErrUnplanned", err)
	}
}

// TestFitsAtShape: the filter's question, "does it fit started now?", on
// a node where it fits, where it collides and fits later, where the
// horizon ends first, and over capacity.
func TestFitsAtShape(t *testing.T) {
	l := newTest(t, Config{}) // 1000 memory, 60 s horizon (newTest)
	early := mem(10*time.Second, 800.0, 20*time.Second, 100.0)
	if _, fit, err := l.SoftReserve("early", early, t0, 0); err != nil || !fit.OK {
		t.Fatal(fit, err)
	}
	shape := func(c Curve) *Shape {
		s, err := NewShape(c, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		name   string
		c      Curve
		at     time.Time
		ok     bool
		reason Reason
	}{
		{"beside the peak", mem(10*time.Second, 150.0, 10*time.Second, 800.0), t0, true, ReasonNone},
		{"over the peak", mem(10*time.Second, 300.0), t0, false, ReasonBusy},
		{"over the peak, later", mem(10*time.Second, 300.0), t0.Add(10 * time.Second), true, ReasonNone},
		{"in the tail", mem(30*time.Second, 950.0), t0.Add(5 * time.Second), false, ReasonBusy},
		{"after it", mem(30*time.Second, 950.0), t0.Add(30 * time.Second), true, ReasonNone},
		{"past the horizon", mem(50*time.Second, 10.0), t0.Add(30 * time.Second), false, ReasonHorizon},
		{"over capacity", mem(time.Second, 1001.0), t0, false, ReasonCapacity},
	} {
		f, err := l.FitsAtShape(shape(c.c), c.at)
		if err != nil {
			t.Fatal(err)
		}
		if f.OK != c.ok || f.Reason != c.reason || (f.OK && !f.Start.Equal(c.at)) {
			t.Errorf("%s: %+v, want ok=%v reason %v", c.name, f, c.ok, c.reason)
		}
		// The full search agrees on whether it starts there.
		e, _ := l.EarliestFitShape(shape(c.c), c.at)
		if e.OK && e.Start.Equal(c.at) != f.OK {
			t.Errorf("%s: EarliestFitShape %v, FitsAtShape %v", c.name, e, f)
		}
	}
}
