package core

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// shaped is a one-container curve of 1 s steps: low everywhere but
// [from, to) seconds, where it holds peak bytes of memory.
func shaped(n, from, to int, low, peak float64) PodCurve {
	cc := ContainerCurve{Name: "c", Hold: make([]Usage, n), Upper: make([]Usage, n)}
	for i := range n {
		m := low
		if i >= from && i < to {
			m = peak
		}
		cc.Hold[i] = Usage{CPU: 0.1, Memory: m}
		cc.Upper[i] = cc.Hold[i]
	}
	return PodCurve{Step: time.Second, Containers: []ContainerCurve{cc}}
}

func mustPlan(t *testing.T, cfg CalendarConfig, c PodCurve) *Plan {
	t.Helper()
	p, err := cfg.NewPlan(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCalendarTimeAwarePacking(t *testing.T) {
	cfg := CalendarConfig{}
	node := Usage{CPU: 2, Memory: 1024 * mib}
	early := shaped(180, 0, 60, 50*mib, 800*mib)   // peak in the first minute
	late := shaped(180, 100, 160, 50*mib, 800*mib) // peak from 100 s on
	both := shaped(180, 0, 60, 50*mib, 800*mib)

	tests := []struct {
		name   string
		second PodCurve
		want   bool
	}{
		{"peaks apart share the node", late, true},
		{"peaks together do not", both, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := cfg.NewCalendar(node)
			if err != nil {
				t.Fatal(err)
			}
			if f, err := cal.Reserve("a", mustPlan(t, cfg, early), t0); err != nil || !f.OK {
				t.Fatalf("reserve a: %+v %v", f, err)
			}
			if err := cal.Commit("a", t0); err != nil {
				t.Fatal(err)
			}
			f, err := cal.Reserve("b", mustPlan(t, cfg, tc.second), t0.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if f.OK != tc.want {
				t.Fatalf("second pod fits = %v (%s), want %v", f.OK, f.Reason, tc.want)
			}
			if !tc.want {
				if !f.Collides || !strings.HasPrefix(f.Reason, CollidesReason) {
					t.Errorf("collision: want Collides, got %+v", f)
				}
				at, ok := cal.EarliestFit(mustPlan(t, cfg, tc.second), t0.Add(time.Second))
				if !ok || !at.After(t0.Add(time.Second)) {
					t.Errorf("collision: want a later time it would fit, got %v %v (%s)", at, ok, f.Reason)
				}
				if f := cal.Fits(mustPlan(t, cfg, tc.second), at); !f.OK {
					t.Errorf("at %v, the earliest fit: %+v", at.Sub(t0), f)
				}
			}
		})
	}
}

func TestCalendarFlatRefusesWhatCurvesAdmit(t *testing.T) {
	// Declared requests, held flat, refuse the second 800 MiB pod on 1 GiB.
	cfg := CalendarConfig{}
	cal, err := cfg.NewCalendar(Usage{CPU: 2, Memory: 1024 * mib})
	if err != nil {
		t.Fatal(err)
	}
	flat, err := cfg.FlatPlan(Usage{CPU: 0.1, Memory: 800 * mib})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := cal.Reserve("a", flat, t0); err != nil || !f.OK {
		t.Fatalf("reserve a: %+v %v", f, err)
	}
	if err := cal.Commit("a", t0); err != nil {
		t.Fatal(err)
	}
	if f := cal.Fits(flat, t0); f.OK {
		t.Fatal("a second flat 800 MiB fits on 1 GiB")
	}
}

func TestCalendarReleaseIdempotent(t *testing.T) {
	cfg := CalendarConfig{}
	cal, err := cfg.NewCalendar(Usage{CPU: 2, Memory: 1024 * mib})
	if err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, cfg, shaped(60, 0, 60, 800*mib, 800*mib))
	if f, err := cal.Reserve("a", p, t0); err != nil || !f.OK {
		t.Fatalf("reserve: %+v %v", f, err)
	}
	if _, err := cal.Reserve("a", p, t0); !errors.Is(err, ErrReserved) {
		t.Fatalf("second reserve: %v, want ErrReserved", err)
	}
	if f := cal.Fits(p, t0); f.OK {
		t.Fatal("reserved room counted free")
	}
	if !cal.Release("a") {
		t.Fatal("release: nothing held")
	}
	if cal.Release("a") {
		t.Fatal("second release released something")
	}
	if got := cal.Free(t0); got.Memory != 1024*mib {
		t.Fatalf("free after release %v, want all of it", got)
	}
	if f := cal.Fits(p, t0); !f.OK {
		t.Fatalf("after release: %s", f.Reason)
	}
	if err := cal.Commit("a", t0); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("commit after release: %v, want ErrNotReserved", err)
	}
}

func TestCalendarCurveRunsOutHeldFlat(t *testing.T) {
	cfg := CalendarConfig{}
	cal, err := cfg.NewCalendar(Usage{CPU: 2, Memory: 1024 * mib})
	if err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, cfg, shaped(30, 0, 30, 300*mib, 300*mib))
	if f, err := cal.Reserve("a", p, t0); err != nil || !f.OK {
		t.Fatalf("reserve: %+v %v", f, err)
	}
	if err := cal.Commit("a", t0); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(10 * time.Minute)
	v := cal.View(later)
	if len(v.Holds) != 1 || v.Holds[0].Kind != HoldFlat || v.Flat.Memory != 300*mib {
		t.Fatalf("after its curve: %+v, want held flat at 300 MiB", v)
	}
}

func TestPlanRejectsBadCurves(t *testing.T) {
	cfg := CalendarConfig{}
	bad := []PodCurve{
		{},
		{Step: time.Second},
		{Step: time.Second, Containers: []ContainerCurve{{Name: "c"}}},
		{Step: time.Second, Containers: []ContainerCurve{{Name: "c", Hold: []Usage{{Memory: -1}}, Upper: []Usage{{}}}}},
	}
	for i, c := range bad {
		if _, err := cfg.NewPlan(c); !errors.Is(err, ErrBadCurve) {
			t.Errorf("curve %d: %v, want ErrBadCurve", i, err)
		}
	}
}
