package predict

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func newTestHist(t testing.TB) *Histogram {
	h, err := NewHistogram(HistogramOptions{FirstBucket: 0.01, MaxValue: 1000, HalfLife: 10})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHistogramOptions(t *testing.T) {
	tests := []struct {
		name string
		o    HistogramOptions
		ok   bool
	}{
		{"vpa defaults", HistogramOptions{FirstBucket: 0.01, MaxValue: 1000}, true},
		{"zero first", HistogramOptions{MaxValue: 1}, false},
		{"max below first", HistogramOptions{FirstBucket: 1, MaxValue: 0.5}, false},
		{"ratio 1", HistogramOptions{FirstBucket: 1, MaxValue: 5, Ratio: 1}, false},
		{"negative half-life", HistogramOptions{FirstBucket: 1, MaxValue: 5, HalfLife: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHistogram(tt.o)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v is not ErrConfig", err)
			}
		})
	}
}

func TestHistogramBuckets(t *testing.T) {
	h := newTestHist(t)
	// VPA: bucket sizes grow by 5 % from the first.
	s0 := h.bucketStart(1) - h.bucketStart(0)
	s1 := h.bucketStart(2) - h.bucketStart(1)
	if math.Abs(s0-0.01) > 1e-12 || math.Abs(s1/s0-1.05) > 1e-9 {
		t.Fatalf("bucket sizes %v %v", s0, s1)
	}
	for _, v := range []float64{0, 0.005, 0.01, 0.5, 3.3, 999, 5000} {
		i := h.bucketOf(v)
		if v < 1000 && (v < h.bucketStart(i) || v >= h.bucketStart(i+1)) {
			t.Errorf("%v in bucket %d [%v, %v)", v, i, h.bucketStart(i), h.bucketStart(i+1))
		}
	}
}

// Property: percentiles are monotone in p and bracket the data.
func TestHistogramPercentileMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		h := newTestHist(t)
		n := 1 + rng.IntN(500)
		var lo, hi float64 = math.Inf(1), 0
		for i := range n {
			v := math.Exp(rng.NormFloat64() * 2)
			lo, hi = min(lo, v), max(hi, v)
			h.Add(v, 0.1+rng.Float64(), float64(i))
		}
		prev := 0.0
		for p := 0.0; p <= 1; p += 0.01 {
			q := h.Percentile(p)
			if q < prev {
				t.Fatalf("trial %d: p%v = %v < %v", trial, p, q, prev)
			}
			prev = q
		}
		if hi < 1000 && (h.Percentile(1) < hi || h.Percentile(1) > hi*1.06+0.011) {
			t.Fatalf("trial %d: p100 %v, max %v", trial, h.Percentile(1), hi)
		}
		if h.Percentile(0) > lo*1.06+0.011 {
			t.Fatalf("trial %d: p0 %v, min %v", trial, h.Percentile(0), lo)
		}
	}
}

// Property: a sample one half-life older weighs half as much.
func TestHistogramDecay(t *testing.T) {
	h := newTestHist(t)
	h.Add(1, 1, 0)   // old, weight 1 at t=0
	h.Add(10, 1, 10) // one half-life later: the old one counts half
	// weights: 1 → 0.5 relative; p50 needs 0.75 of total 1.5 → in the 10 bucket.
	if got := h.Percentile(0.5); got < 10 {
		t.Fatalf("p50 = %v, want the newer value's bucket", got)
	}
	if got := h.Percentile(0.3); got > 1.1 {
		t.Fatalf("p30 = %v, want the older value's bucket", got)
	}
	if w := h.TotalWeight(10); math.Abs(w-1.5) > 1e-9 {
		t.Fatalf("total weight at t=10 = %v, want 1.5", w)
	}
	// Far in the future the reference shifts without overflow.
	h.Add(5, 1, 1e6)
	if w := h.TotalWeight(1e6); math.IsInf(w, 0) || math.Abs(w-1) > 1e-6 {
		t.Fatalf("total weight after shift = %v, want ≈1", w)
	}
}

// Property: merging equals adding both sample sets to one histogram.
func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a, b, both := newTestHist(t), newTestHist(t), newTestHist(t)
	for i := range 300 {
		v, w, ts := rng.Float64()*50, rng.Float64(), float64(rng.IntN(100))
		if i%2 == 0 {
			a.Add(v, w, ts)
		} else {
			b.Add(v, w, ts)
		}
		both.Add(v, w, ts)
	}
	b.Add(1, 1, 2000) // shifts b's reference
	both.Add(1, 1, 2000)
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	for _, p := range []float64{0.1, 0.5, 0.9, 0.95, 0.99} {
		if x, y := a.Percentile(p), both.Percentile(p); x != y {
			t.Errorf("p%v: merged %v, direct %v", p, x, y)
		}
	}
	other, _ := NewHistogram(HistogramOptions{FirstBucket: 1, MaxValue: 10})
	if err := a.Merge(other); !errors.Is(err, ErrConfig) {
		t.Fatalf("merge with different options: %v", err)
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := newTestHist(t)
	if !h.Empty() || h.Percentile(0.9) != 0 {
		t.Fatal("new histogram not empty")
	}
	h.Add(-1, 1, 0)
	h.Add(math.NaN(), 1, 0)
	h.Add(1, 0, 0)
	if !h.Empty() {
		t.Fatal("invalid samples were counted")
	}
	h.Add(1, 1, 0)
	h.Reset()
	if !h.Empty() {
		t.Fatal("reset histogram not empty")
	}
}
