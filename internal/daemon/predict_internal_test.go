package daemon

import (
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/resource"
)

func TestCurveOfDuration(t *testing.T) {
	whole := func(n int, step time.Duration) (p predict.Prediction) {
		for d := range resource.NumDims {
			c := predict.Curve{Step: step, P50: make([]float64, n), Upper: make([]float64, n)}
			for i := range n {
				c.P50[i], c.Upper[i] = float64(i+1), float64(2*(i+1))
			}
			p.Whole[d] = c
		}
		p.UpperQ = 0.95
		return p
	}
	tests := []struct {
		name      string
		buckets   int
		durUp     time.Duration
		wantTotal time.Duration
		wantSteps int
	}{
		{"cut in the first bucket", 1, 5 * time.Second, 5 * time.Second, 1},
		{"cut in the third", 4, 25 * time.Second, 25 * time.Second, 3},
		{"no upper duration: whole buckets", 3, 0, 30 * time.Second, 3},
		{"longer than the buckets: the buckets", 2, time.Minute, 20 * time.Second, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := whole(tt.buckets, 10*time.Second)
			p.DurationUpper = tt.durUp
			c := curveOf(p)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.Total() != tt.wantTotal || len(c.Steps) != tt.wantSteps || c.HiQ != 0.95 {
				t.Fatalf("total %v in %d steps (q %v), want %v in %d", c.Total(), len(c.Steps), c.HiQ, tt.wantTotal, tt.wantSteps)
			}
		})
	}
}

func TestLoadsAt(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newLoadRing(3)
	if got := r.loadsAt([]time.Time{t0}); got != nil {
		t.Fatalf("empty ring: %v", got)
	}
	for i := range 5 { // keeps the loads of t0+2s … t0+4s
		r.add(t0.Add(time.Duration(i)*time.Second), predict.Load{CPU: float64(i)})
	}
	ts := []time.Time{t0, t0.Add(2500 * time.Millisecond), t0.Add(4 * time.Second), t0.Add(time.Hour)}
	got := r.loadsAt(ts)
	want := []float64{2, 2, 4, 4} // before the oldest kept: the oldest
	for i := range ts {
		if got[i].CPU != want[i] {
			t.Fatalf("loads %v, want CPU %v", got, want)
		}
	}
}
