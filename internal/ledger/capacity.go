package ledger

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Defaults for the dimensions Detect cannot measure. The node's disk and NIC
// do not say how much they can sustain, so the operator configures these;
// without configuration Detect assumes a modest SSD (10,000 IO ops/s, a
// figure cloud block volumes commonly guarantee) and a 1 Gbit/s NIC.
const (
	DefaultIOPS    = 10000
	DefaultNetMbps = 1000
)

// NodeConfig turns detected hardware into the capacity tasks may use.
type NodeConfig struct {
	// Reserve is kept back for the system (kernel, daemon, sshd):
	// subtracted from what is detected. Zero reserves nothing.
	Reserve resource.Vector
	// Cap bounds capacity per dimension (serve --cpu/--memory); a zero
	// dimension is not capped.
	Cap resource.Vector
}

// Capacity is detected − Reserve, capped by Cap. CPU and memory must come
// out positive; IO and network may be zero (nothing may reserve them).
func (n NodeConfig) Capacity(detected resource.Vector) (resource.Vector, error) {
	for _, v := range []struct {
		name string
		v    resource.Vector
	}{{"detected", detected}, {"reserve", n.Reserve}, {"cap", n.Cap}} {
		if err := validAmounts(v.v); err != nil {
			return resource.Vector{}, fmt.Errorf("node %s: %w", v.name, err)
		}
	}
	c := detected.Sub(n.Reserve)
	for d := range c {
		if n.Cap[d] > 0 {
			c[d] = min(c[d], n.Cap[d])
		}
		c[d] = max(c[d], 0)
	}
	if c[resource.CPU] <= 0 || c[resource.Memory] <= 0 {
		return resource.Vector{}, fmt.Errorf("node capacity %v after reserving %v: cpu and memory must be positive", c, n.Reserve)
	}
	return c, nil
}

// parseMeminfo returns MemTotal from /proc/meminfo content, in MiB.
func parseMeminfo(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
			return 0, fmt.Errorf("meminfo: malformed MemTotal line %q", sc.Text())
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo: MemTotal: %w", err)
		}
		if kb == 0 || kb > maxAmount*1024 {
			return 0, fmt.Errorf("meminfo: MemTotal %d kB is out of range", kb)
		}
		return float64(kb) / 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("meminfo: %w", err)
	}
	return 0, errors.New("meminfo: no MemTotal line")
}

// withIONetDefaults fills the configured-only dimensions.
func withIONetDefaults(iops, netMbps float64) (float64, float64, error) {
	if iops == 0 {
		iops = DefaultIOPS
	}
	if netMbps == 0 {
		netMbps = DefaultNetMbps
	}
	if !(iops > 0 && iops <= maxAmount) || !(netMbps > 0 && netMbps <= maxAmount) {
		return 0, 0, fmt.Errorf("iops %v or net %v Mbps is out of range", iops, netMbps)
	}
	return iops, netMbps, nil
}
