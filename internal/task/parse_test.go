package task

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"1024", 1024, nil},
		{"0", 0, nil},
		{"100B", 100, nil},
		{"512k", 512 << 10, nil},
		{"512K", 512 << 10, nil},
		{"512KiB", 512 << 10, nil},
		{"512kb", 512 << 10, nil},
		{"300M", 300 << 20, nil},
		{"300Mi", 300 << 20, nil},
		{"300 MB", 300 << 20, nil},
		{"1.5GiB", 3 << 29, nil},
		{"1.5g", 3 << 29, nil},
		{".5T", 1 << 39, nil},
		{"2.P", 2 << 50, nil},
		{"7E", 7 << 60, nil},
		{"0.5", 1, nil},  // rounds half up
		{"0.49", 0, nil}, // to the nearest byte
		{"1.1K", 1126, nil},
		{" 64M ", 64 << 20, nil},
		{"9223372036854775807", math.MaxInt64, nil},
		{"9223372036854775808", 0, ErrRange},
		{"8E", 0, ErrRange},
		{"-1", 0, ErrRange},
		{"-1M", 0, ErrRange},
		{"", 0, ErrSyntax},
		{"   ", 0, ErrSyntax},
		{"M", 0, ErrSyntax},
		{"5i", 0, ErrSyntax},
		{"5iB", 0, ErrSyntax},
		{"1e3", 0, ErrSyntax},
		{"NaN", 0, ErrSyntax},
		{"Inf", 0, ErrSyntax},
		{"0x10", 0, ErrSyntax},
		{"1_000", 0, ErrSyntax},
		{"+5", 0, ErrSyntax},
		{"5 M B", 0, ErrSyntax},
		{"5  M", 0, ErrSyntax},
		{"5X", 0, ErrSyntax},
		{"1.2.3", 0, ErrSyntax},
		{"12345678901234567890123456789012345678901234567890123456789012345", 0, ErrSyntax}, // too long
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  error
	}{
		{"0.25", 0.25, nil},
		{"250m", 0.25, nil},
		{"2", 2, nil},
		{"1.", 1, nil},
		{".5", 0.5, nil},
		{"1500m", 1.5, nil},
		{"1000000000000", 1e12, nil},
		{"1000000000001", 0, ErrRange},
		{"0", 0, ErrRange},
		{"0m", 0, ErrRange},
		{"-1", 0, ErrRange},
		{"", 0, ErrSyntax},
		{"250M", 0, ErrSyntax}, // only a lower-case m: M would read as mega
		{"NaN", 0, ErrSyntax},
		{"inf", 0, ErrSyntax},
		{"1e2", 0, ErrSyntax},
		{"2 cores", 0, ErrSyntax},
		{"0x1p-2", 0, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := ParseCPU(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseCPU(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  error
	}{
		{"500", 500, nil},
		{"12.5", 12.5, nil},
		{"0.001", 0.001, nil},
		{"0", 0, ErrRange},
		{"-3", 0, ErrRange},
		{"1e13", 0, ErrSyntax},
		{"2000000000000", 0, ErrRange},
		{"100m", 0, ErrSyntax},
		{"", 0, ErrSyntax},
		{"Inf", 0, ErrSyntax},
		{"NaN", 0, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1024", "300M", "1.5GiB", "512k", "0.5", "8E", "-1", "1e3", " 5 kb", "NaN", ".", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 || !(errors.Is(err, ErrSyntax) || errors.Is(err, ErrRange)) {
				t.Fatalf("ParseSize(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, n)
		}
		// Round trip: the byte count parses back to itself.
		if m, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || m != n {
			t.Fatalf("ParseSize(%q) = %d, but %d parses to %d, %v", s, n, n, m, err)
		}
	})
}

func FuzzParseCPU(f *testing.F) {
	for _, s := range []string{"0.25", "250m", "2", "0", "-1", "NaN", "Inf", "1e400", "1000000000000.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFloat(t, "ParseCPU", s, ParseCPU)
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"500", "12.5", "0", "-3", "NaN", "+Inf", "1e13", "99999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFloat(t, "ParseRate", s, ParseRate)
	})
}

func checkFloat(t *testing.T, name, s string, parse func(string) (float64, error)) {
	v, err := parse(s)
	if err != nil {
		if v != 0 || !(errors.Is(err, ErrSyntax) || errors.Is(err, ErrRange)) {
			t.Fatalf("%s(%q) = %v, %v", name, s, v, err)
		}
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 || v > maxParsedFloat {
		t.Fatalf("%s(%q) = %v, want a positive finite value ≤ %g", name, s, v, maxParsedFloat)
	}
}
