package predict

import (
	"fmt"
	"math"
)

// HistogramOptions shape a Histogram. They follow the Kubernetes VPA
// recommender (pkg/recommender/util: exponential buckets growing by 5 %,
// a first bucket of 0.01 cores for CPU and 1e7 bytes for memory, samples
// decayed with a 24 h half-life), measured in steps instead of wall time.
type HistogramOptions struct {
	FirstBucket float64 // size of the first bucket, in the dimension's units
	Ratio       float64 // growth of each next bucket; VPA: 1.05
	MaxValue    float64 // values above land in the last bucket
	HalfLife    float64 // in steps; VPA's 24 h = 288 five-minute steps
}

func (o *HistogramOptions) validate() error {
	if o.Ratio == 0 {
		o.Ratio = 1.05
	}
	if o.HalfLife == 0 {
		o.HalfLife = 288
	}
	switch {
	case !(o.FirstBucket > 0) || math.IsInf(o.FirstBucket, 0):
		return fmt.Errorf("histogram first bucket %v must be > 0: %w", o.FirstBucket, ErrConfig)
	case !(o.Ratio > 1) || o.Ratio > 10:
		return fmt.Errorf("histogram ratio %v must be in (1, 10]: %w", o.Ratio, ErrConfig)
	case !(o.MaxValue > o.FirstBucket) || math.IsInf(o.MaxValue, 0):
		return fmt.Errorf("histogram max %v must exceed first bucket %v: %w", o.MaxValue, o.FirstBucket, ErrConfig)
	case !(o.HalfLife > 0):
		return fmt.Errorf("histogram half-life %v must be > 0: %w", o.HalfLife, ErrConfig)
	}
	return nil
}

// Histogram is VPA's decaying histogram: bucket i covers
// [F·(r^i−1)/(r−1), F·(r^(i+1)−1)/(r−1)), so bucket sizes grow by r from
// F. A sample added at step t weighs w·2^((t−ref)/halfLife): later samples
// weigh more, which equals decaying the older ones, without touching every
// bucket per step. When the exponent grows large the weights are rescaled
// to a new reference (VPA's shiftReferenceTimestamp). Not safe for
// concurrent use.
type Histogram struct {
	o       HistogramOptions
	logR    float64
	weights []float64
	total   float64
	ref     float64 // reference step
	minB    int     // first and last non-empty bucket (min > max when empty)
	maxB    int
}

// histogramEpsilon is VPA's epsilon: total weight below it counts as empty.
const histogramEpsilon = 1e-4

// NewHistogram returns an empty histogram.
func NewHistogram(o HistogramOptions) (*Histogram, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	h := &Histogram{o: o, logR: math.Log(o.Ratio)}
	n := h.bucketOf(o.MaxValue) + 1
	h.weights = make([]float64, n)
	h.minB, h.maxB = n, -1
	return h, nil
}

// NumBuckets is the number of buckets.
func (h *Histogram) NumBuckets() int { return len(h.weights) }

func (h *Histogram) bucketOf(v float64) int {
	if v < h.o.FirstBucket {
		return 0
	}
	i := int(math.Log(v*(h.o.Ratio-1)/h.o.FirstBucket+1) / h.logR)
	if h.weights != nil && i >= len(h.weights) {
		return len(h.weights) - 1
	}
	return i
}

// bucketStart is the lower bound of bucket i.
func (h *Histogram) bucketStart(i int) float64 {
	if i == 0 {
		return 0
	}
	return h.o.FirstBucket * (math.Pow(h.o.Ratio, float64(i)) - 1) / (h.o.Ratio - 1)
}

// Add records value v with weight w at step t (steps may come in any
// order). Negative or non-finite values and weights are ignored.
func (h *Histogram) Add(v, w, t float64) {
	if !(v >= 0) || math.IsInf(v, 0) || !(w > 0) || math.IsInf(w, 0) || math.IsNaN(t) {
		return
	}
	// Keep the decay exponent small: VPA shifts its reference every
	// 100 half-lives; 2^100 stays far from float64 overflow.
	if (t-h.ref)/h.o.HalfLife > 100 {
		h.shift(t)
	}
	w *= math.Exp2((t - h.ref) / h.o.HalfLife)
	i := h.bucketOf(v)
	h.weights[i] += w
	h.total += w
	h.minB, h.maxB = min(h.minB, i), max(h.maxB, i)
}

func (h *Histogram) shift(newRef float64) {
	f := math.Exp2((h.ref - newRef) / h.o.HalfLife)
	h.total = 0
	for i := range h.weights {
		h.weights[i] *= f
		h.total += h.weights[i]
	}
	h.ref = newRef
}

// Empty reports whether the histogram holds (practically) no weight.
func (h *Histogram) Empty() bool { return h.maxB < 0 || h.total < histogramEpsilon }

// Percentile returns the upper bound of the bucket holding fraction p of
// the weight (VPA returns the bucket's end, a conservative estimate), and
// 0 for an empty histogram. It is monotone in p.
func (h *Histogram) Percentile(p float64) float64 {
	if h.maxB < 0 {
		return 0
	}
	p = min(max(p, 0), 1)
	threshold := p * h.total
	var sum float64
	i := h.minB
	for ; i < h.maxB; i++ {
		sum += h.weights[i]
		if sum >= threshold {
			break
		}
	}
	return h.bucketStart(i + 1)
}

// Merge adds other's weights into h. Both must have the same options.
func (h *Histogram) Merge(other *Histogram) error {
	if h.o != other.o {
		return fmt.Errorf("merge histograms with different options: %w", ErrConfig)
	}
	if other.maxB < 0 {
		return nil
	}
	f := 1.0
	if other.ref != h.ref {
		// Express other's weights in h's reference.
		f = math.Exp2((other.ref - h.ref) / h.o.HalfLife)
	}
	for i := other.minB; i <= other.maxB; i++ {
		w := other.weights[i] * f
		h.weights[i] += w
		h.total += w
	}
	h.minB, h.maxB = min(h.minB, other.minB), max(h.maxB, other.maxB)
	return nil
}

// Reset empties the histogram, keeping its buckets.
func (h *Histogram) Reset() {
	clear(h.weights)
	h.total, h.ref = 0, 0
	h.minB, h.maxB = len(h.weights), -1
}

// TotalWeight is the sum of weights, expressed at step t.
func (h *Histogram) TotalWeight(t float64) float64 {
	return h.total * math.Exp2((h.ref-t)/h.o.HalfLife)
}
