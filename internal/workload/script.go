package workload

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Phase is one stretch of constant demand.
type Phase struct {
	Dur      time.Duration
	CPU      float64 // cores busy (0.5 = half of one core)
	MemoryMB float64 // resident MiB held during the phase
	IOPS     float64 // O_DIRECT 4 KiB operations per second (reads and writes alternate)
	NetMbps  float64 // megabits per second sent to the loopback peer
}

// Script is a sequence of phases.
type Script []Phase

// Duration is the script's total length.
func (s Script) Duration() time.Duration {
	var d time.Duration
	for _, p := range s {
		d += p.Dur
	}
	return d
}

// Limits on a script, so a typo cannot ask for a terabyte.
const (
	maxPhases  = 1000
	maxCPU     = 256
	maxMemMB   = 1 << 20
	maxIOPS    = 1e6
	maxNetMbps = 1e5
	maxPhase   = 24 * time.Hour
)

// ErrScript is wrapped by every script parse error.
var ErrScript = errors.New("workload script")

// ParseScript reads phases separated by ";", each "DURATION:key=value,...",
// with keys cpu (cores), mem (MiB of the process's anonymous resident memory),
// iops, net (Mbps). Example:
//
//	2s:cpu=0.5,mem=300;3s:iops=200,net=40
func ParseScript(s string) (Script, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrScript)
	}
	parts := strings.Split(s, ";")
	if len(parts) > maxPhases {
		return nil, fmt.Errorf("%w: %d phases, at most %d", ErrScript, len(parts), maxPhases)
	}
	out := make(Script, 0, len(parts))
	for i, part := range parts {
		p, err := parsePhase(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%w: phase %d %q: %v", ErrScript, i+1, part, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePhase(s string) (Phase, error) {
	durS, rest, _ := strings.Cut(s, ":")
	d, err := time.ParseDuration(strings.TrimSpace(durS))
	if err != nil {
		return Phase{}, fmt.Errorf("duration: %v", err)
	}
	if d <= 0 || d > maxPhase {
		return Phase{}, fmt.Errorf("duration %v out of range (0, %v]", d, maxPhase)
	}
	p := Phase{Dur: d}
	if strings.TrimSpace(rest) == "" {
		return p, nil
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Phase{}, fmt.Errorf("%q is not key=value", kv)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return Phase{}, fmt.Errorf("%s=%q is not a non-negative number", k, v)
		}
		var max float64
		switch strings.TrimSpace(k) {
		case "cpu":
			p.CPU, max = f, maxCPU
		case "mem":
			p.MemoryMB, max = f, maxMemMB
		case "iops":
			p.IOPS, max = f, maxIOPS
		case "net":
			p.NetMbps, max = f, maxNetMbps
		default:
			return Phase{}, fmt.Errorf("unknown key %q (want cpu, mem, iops, net)", k)
		}
		if f > max {
			return Phase{}, fmt.Errorf("%s=%v above the maximum %v", k, f, max)
		}
	}
	return p, nil
}

// String renders the script in the syntax ParseScript reads.
func (s Script) String() string {
	var b strings.Builder
	for i, p := range s {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, "%v:cpu=%g,mem=%g,iops=%g,net=%g", p.Dur, p.CPU, p.MemoryMB, p.IOPS, p.NetMbps)
	}
	return b.String()
}
