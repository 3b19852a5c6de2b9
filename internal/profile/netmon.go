package profile

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// netValue is one entry of the NetMonitor's counters map, as the eBPF
// programs lay it out: bytes passed and packets dropped by the policer, per
// direction. Every field is updated with an atomic add.
type netValue struct {
	RxBytes, TxBytes uint64
	RxDrops, TxDrops uint64
}

// netLimit is one entry of the NetMonitor's limits map. The policer is a
// token bucket run as GCRA ("virtual scheduling"): instead of a token
// count and a refill time it keeps, per direction, the theoretical arrival
// time (TAT) at which the bucket would be full again. A packet of cost c
// (its length times CostQ16 >> 16, in ns) at time now passes when
// max(TAT, now) + c - now <= TauNs and then moves TAT there. That is the
// same admission rule as a bucket of TauNs/ns-per-byte bytes refilled at
// the rate, but it is one 64-bit word per direction that a program can
// update with a single compare-and-exchange: no bpf_spin_lock (which needs
// map BTF we would have to hand-build without clang) and no lost updates
// between CPUs.
type netLimit struct {
	CostQ16 uint64 // ns per byte in 48.16 fixed point
	TauNs   uint64 // burst tolerance
	TatIn   uint64 // ingress TAT, bpf_ktime_get_ns clock; 0 = bucket full
	TatOut  uint64 // egress TAT
}

// Range of SetNetLimit rates, in megabits per second (each direction).
const (
	MinNetLimitMbps = 0.001
	MaxNetLimitMbps = 1e6
)

// Burst the policer allows, as the larger of a time at the limit rate and
// a byte count. The time matters most for TCP: a sender whose egress
// packet is refused keeps it queued and, once nothing is in flight, waits
// for its probe timer (200 ms minimum) before trying again; a bucket that
// can hold more than that wait keeps the average rate at the limit instead
// of a fraction of it. The byte floor keeps loopback's 64 KiB GSO packets
// passable at any rate.
const (
	netBurstTime  = 250 * time.Millisecond
	netBurstBytes = 256 << 10
)

// newNetLimit converts a rate in Mbit/s to the policer's entry.
func newNetLimit(mbps float64) (netLimit, error) {
	if math.IsNaN(mbps) || mbps < MinNetLimitMbps || mbps > MaxNetLimitMbps {
		return netLimit{}, fmt.Errorf("%v Mbit/s not in [%v, %v]: %w", mbps, MinNetLimitMbps, MaxNetLimitMbps, ErrBadLimit)
	}
	nsPerByte := 8e3 / mbps // 1e9 ns / (mbps * 1e6 / 8 bytes)
	cost := math.Round(nsPerByte * (1 << 16))
	tau := max(float64(netBurstTime), netBurstBytes*nsPerByte)
	return netLimit{CostQ16: uint64(max(cost, 1)), TauNs: uint64(math.Round(tau))}, nil
}

// OpenNode sets up what profiling needs once per host before tasks run:
// v1 block IO accounting for the disk behind dir (a v1 blkio cgroup counts
// IO only once blk-throttle is set up for the disk; v1Blkio is the blkio
// root, "" on v2) and the eBPF network monitor on the v2 root (v2Root, ""
// when there is no v2 hierarchy). What is unavailable is logged and left
// out: the returned monitor is nil without network profiling.
func OpenNode(v1Blkio, v2Root, dir string, log *slog.Logger) *NetMonitor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if v1Blkio != "" {
		if err := EnableV1IOAccounting(v1Blkio, dir); err != nil {
			log.Info("block IO accounting unavailable", "err", err)
		}
	}
	if v2Root == "" {
		return nil
	}
	m, err := OpenNetMonitor(v2Root, log)
	if err != nil {
		log.Info("network profiling unavailable", "err", err)
		return nil
	}
	return m
}
