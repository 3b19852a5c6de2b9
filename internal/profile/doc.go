// Package profile samples what running tasks use: CPU, memory (working set,
// RSS, peak), block IO operations and network traffic, read from each task's
// cgroup files (kept open and re-read) and from eBPF cgroup_skb counters.
package profile
