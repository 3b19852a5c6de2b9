package profile

import "errors"

// Sentinel errors of this package; test for them with errors.Is.
var (
	// ErrNoSource is returned by NewSampler when the target offers nothing
	// to measure: none of its cgroup stat files exist and there is no
	// network monitor.
	ErrNoSource = errors.New("profile: nothing to measure in target")
	// ErrNotSupported is returned where this platform or kernel lacks what a
	// feature needs (cgroups, eBPF cgroup_skb programs).
	ErrNotSupported = errors.New("profile: not supported on this platform")
	// ErrClosed is returned by a NetMonitor after Close.
	ErrClosed = errors.New("profile: network monitor closed")
	// ErrBadLimit is returned by SetNetLimit for a rate that is not a
	// finite number in [MinNetLimitMbps, MaxNetLimitMbps].
	ErrBadLimit = errors.New("profile: network limit out of range")
)
