package resource

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestDim(t *testing.T) {
	tests := []struct {
		d          Dim
		name, unit string
	}{
		{CPU, "cpu", "cores"},
		{Memory, "memory", "MiB"},
		{IO, "io", "ops/s"},
		{Net, "net", "Mbps"},
		{NumDims, "Dim(4)", ""},
		{-1, "Dim(-1)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.d.Unit(); got != tt.unit {
				t.Errorf("Unit() = %q, want %q", got, tt.unit)
			}
		})
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name string
		s    Set
		has  []Dim
		str  string
	}{
		{name: "empty", s: 0, str: "none"},
		{name: "one", s: SetOf(IO), has: []Dim{IO}, str: "io"},
		{name: "with", s: SetOf(CPU).With(Net), has: []Dim{CPU, Net}, str: "cpu|net"},
		{name: "all", s: All, has: []Dim{CPU, Memory, IO, Net}, str: "cpu|memory|io|net"},
		{name: "out of range ignored", s: SetOf(NumDims, -1, Memory), has: []Dim{Memory}, str: "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for d := range NumDims {
				want := false
				for _, h := range tt.has {
					want = want || h == d
				}
				if got := tt.s.Has(d); got != want {
					t.Errorf("Has(%s) = %v, want %v", d, got, want)
				}
			}
			if tt.s.Has(NumDims) || tt.s.Has(-1) {
				t.Error("Has of an out-of-range dim is true")
			}
			if got := tt.s.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
	// The bit layout is that of the profiler's former Dims (CPU=1,
	// Memory=2, IO=4, Net=8), which tests and fixtures spell as numbers.
	if SetOf(CPU) != 1 || SetOf(Memory) != 2 || SetOf(IO) != 4 || SetOf(Net) != 8 || All != 15 {
		t.Errorf("bit layout changed: %b %b %b %b %b", SetOf(CPU), SetOf(Memory), SetOf(IO), SetOf(Net), All)
	}
}

func TestVector(t *testing.T) {
	v := Vector{1, 100, 10, 5}
	w := Vector{0.5, 200, 10, 1}
	tests := []struct {
		name      string
		got, want Vector
	}{
		{"add", v.Add(w), Vector{1.5, 300, 20, 6}},
		{"sub", v.Sub(w), Vector{0.5, -100, 0, 4}},
		{"max", v.Max(w), Vector{1, 200, 10, 5}},
		{"min", v.Min(w), Vector{0.5, 100, 10, 1}},
		{"finite", Vector{math.NaN(), math.Inf(1), -1, 3}.Finite(), Vector{0, 0, 0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if v != (Vector{1, 100, 10, 5}) {
		t.Errorf("operations changed their receiver: %v", v)
	}
	if !v.LessEq(v) || v.LessEq(w) || w.LessEq(v) || !(Vector{}).LessEq(v) {
		t.Error("LessEq wrong")
	}
	if got, want := (Vector{1.5, 300, 0, 0}).String(), "cpu=1.5 memory=300MB iops=0 net=0Mbps"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestVectorValidate(t *testing.T) {
	tests := []struct {
		name string
		v    Vector
		err  string // substring; "" = valid
	}{
		{name: "zero", v: Vector{}},
		{name: "at the limit", v: Vector{10, 10, 10, 10}},
		{name: "negative", v: Vector{0, -1, 0, 0}, err: "memory amount -1"},
		{name: "nan", v: Vector{math.NaN(), 0, 0, 0}, err: "cpu amount NaN"},
		{name: "inf", v: Vector{0, 0, math.Inf(1), 0}, err: "io amount +Inf"},
		{name: "over", v: Vector{0, 0, 0, 11}, err: "net amount 11 is out of range [0, 10]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Validate(10)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Validate = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	for _, cores := range []float64{0, 0.25, 1, 1.5, 64} {
		if got := CoresOfPct(PctOfCores(cores)); got != cores {
			t.Errorf("CoresOfPct(PctOfCores(%v)) = %v", cores, got)
		}
	}
	if PctOfCores(1) != 100 || CoresOfPct(50) != 0.5 {
		t.Error("100 % is not one core")
	}
}

func TestSampleValue(t *testing.T) {
	s := Sample{CPU: 0.5, MemoryMB: 100, RSSMB: 80, PeakMB: 120, IOPS: 7, NetInMbps: 1, NetOutMbps: 2, Avail: SetOf(CPU, Memory, Net)}
	want := map[Dim]float64{CPU: 0.5, Memory: 100, IO: 7, Net: 3}
	for d := range NumDims {
		if got := s.Value(d); got != want[d] {
			t.Errorf("Value(%s) = %v, want %v", d, got, want[d])
		}
	}
	if got := s.Value(NumDims); got != 0 {
		t.Errorf("Value(NumDims) = %v", got)
	}
	if got, want := s.Vector(), (Vector{0.5, 100, 0, 3}); got != want {
		t.Errorf("Vector() = %v, want %v (IO not available)", got, want)
	}
}

func TestSummarize(t *testing.T) {
	at := time.Unix(1e9, 0)
	tests := []struct {
		name string
		ss   []Sample
		want Summary
	}{
		{name: "none", want: Summary{}},
		{
			name: "peak and mean per dimension",
			ss: []Sample{
				{Time: at, CPU: 1, MemoryMB: 100, IOPS: 10, NetInMbps: 1, NetOutMbps: 1, Avail: All},
				{Time: at, CPU: 3, MemoryMB: 300, IOPS: 30, NetInMbps: 2, NetOutMbps: 2, Avail: All},
			},
			want: Summary{N: 2, Avail: All, Peak: Vector{3, 300, 30, 4}, Mean: Vector{2, 200, 20, 3}},
		},
		{
			name: "unavailable dimensions are skipped, not zero",
			ss: []Sample{
				{CPU: 99, MemoryMB: 100, Avail: SetOf(Memory)}, // a first sample: no rates yet
				{CPU: 2, MemoryMB: 300, Avail: SetOf(CPU, Memory)},
				{CPU: 4, MemoryMB: 200, Avail: SetOf(CPU, Memory)},
			},
			want: Summary{N: 3, Avail: SetOf(CPU, Memory), Peak: Vector{4, 300, 0, 0}, Mean: Vector{3, 200, 0, 0}},
		},
		{
			name: "NaN is skipped",
			ss: []Sample{
				{CPU: math.NaN(), Avail: SetOf(CPU)},
				{CPU: 0.5, Avail: SetOf(CPU)},
			},
			want: Summary{N: 2, Avail: SetOf(CPU), Peak: Vector{0.5}, Mean: Vector{0.5}},
		},
		{
			name: "nothing available",
			ss:   []Sample{{CPU: 1}, {CPU: 2}},
			want: Summary{N: 2},
		},
		{
			name: "peak is never below zero",
			ss:   []Sample{{IOPS: -2, Avail: SetOf(IO)}},
			want: Summary{N: 1, Avail: SetOf(IO), Mean: Vector{IO: -2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.ss); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
			var a Accumulator
			for i, s := range tt.ss {
				a.Add(s)
				if a.N() != i+1 {
					t.Fatalf("N() = %d after %d samples", a.N(), i+1)
				}
			}
			if got := a.Summary(); got != tt.want {
				t.Errorf("Accumulator = %+v, want %+v", got, tt.want)
			}
		})
	}
}
