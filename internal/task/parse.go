package task

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// maxParsedFloat bounds ParseCPU and ParseRate, as Limits.Validate does.
const maxParsedFloat = 1e12

// maxParseLen bounds the length of a value to parse: no real value is
// longer, and it keeps big.Rat arithmetic on hostile input cheap.
const maxParseLen = 64

var (
	sizeRE    = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+) ?([kKmMgGtTpPeE]?)([iI]?)([bB]?)$`)
	decimalRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m?)$`)
)

// ParseSize parses a size in bytes: a decimal number with an optional unit
// K, M, G, T, P or E, each optionally followed by "i" and/or "B", case
// insensitive, with at most one space before the unit. Units are binary
// (K = Ki = KiB = 1024 bytes), as memory is: "300M" is 300 MiB, "1.5GiB"
// 1.5 GiB, "512k" 512 KiB. A plain number, or one with only "B", is in
// bytes: "1024" is 1 KiB. Fractions round to the nearest byte. Negative
// values, NaN, Inf, exponents and sizes above math.MaxInt64 are errors
// wrapping ErrSyntax or ErrRange.
func ParseSize(s string) (int64, error) {
	t, err := preparse("size", s)
	if err != nil {
		return 0, err
	}
	m := sizeRE.FindStringSubmatch(t)
	if m == nil || (m[2] == "" && m[3] != "") {
		return 0, fmt.Errorf("parse size %q: want a number with an optional unit K, M, G, T, P or E (binary; optional i and B): %w", s, ErrSyntax)
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("parse size %q: %w", s, ErrSyntax)
	}
	var shift uint // K = 2^10, M = 2^20, …
	if m[2] != "" {
		shift = 10 * uint(1+strings.IndexByte("kmgtpe", strings.ToLower(m[2])[0]))
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift)))
	// Round half up: floor(r + 1/2).
	r.Add(r, big.NewRat(1, 2))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("parse size %q: larger than %d bytes: %w", s, int64(math.MaxInt64), ErrRange)
	}
	return n.Int64(), nil
}

// ParseCPU parses a CPU amount in cores: a positive decimal number ("0.25",
// "2") or millicores with a lower-case "m" ("250m" = 0.25). Zero, negative
// values, NaN, Inf, exponents and values above 1e12 are errors wrapping
// ErrSyntax or ErrRange.
func ParseCPU(s string) (float64, error) {
	t, err := preparse("cpu", s)
	if err != nil {
		return 0, err
	}
	m := decimalRE.FindStringSubmatch(t)
	if m == nil {
		return 0, fmt.Errorf(`parse cpu %q: want cores ("0.5", "2") or millicores ("500m"): %w`, s, ErrSyntax)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("parse cpu %q: %w", s, ErrRange)
	}
	if m[2] == "m" {
		v /= 1000
	}
	return checkPositive("cpu", s, v)
}

// ParseRate parses a positive rate — IO operations per second, network
// megabits per second — written as a plain decimal number ("500",
// "12.5"). Zero, negative values, NaN, Inf, exponents and values above
// 1e12 are errors wrapping ErrSyntax or ErrRange.
func ParseRate(s string) (float64, error) {
	t, err := preparse("rate", s)
	if err != nil {
		return 0, err
	}
	m := decimalRE.FindStringSubmatch(t)
	if m == nil || m[2] != "" {
		return 0, fmt.Errorf("parse rate %q: want a positive decimal number: %w", s, ErrSyntax)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("parse rate %q: %w", s, ErrRange)
	}
	return checkPositive("rate", s, v)
}

// preparse trims s and rejects the empty, the overlong and the negative.
func preparse(what, s string) (string, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return "", fmt.Errorf("parse %s %q: empty: %w", what, s, ErrSyntax)
	case len(t) > maxParseLen:
		return "", fmt.Errorf("parse %s: longer than %d bytes: %w", what, maxParseLen, ErrSyntax)
	case t[0] == '-':
		return "", fmt.Errorf("parse %s %q: negative: %w", what, s, ErrRange)
	}
	return t, nil
}

func checkPositive(what, s string, v float64) (float64, error) {
	switch {
	case v <= 0:
		return 0, fmt.Errorf("parse %s %q: must be positive (omit it for no limit): %w", what, s, ErrRange)
	case v > maxParsedFloat || math.IsInf(v, 0) || math.IsNaN(v):
		return 0, fmt.Errorf("parse %s %q: larger than %g: %w", what, s, maxParsedFloat, ErrRange)
	}
	return v, nil
}
