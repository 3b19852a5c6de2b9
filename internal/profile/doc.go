// Package profile samples what running tasks use: CPU, memory (working set,
// RSS, peak), block IO operations and network traffic, read from each task's
// cgroup files (kept open and re-read) and from eBPF cgroup_skb counters.
//
// It owns two things:
//
//   - Sampler: one per task. NewSampler opens the task's cgroup stat files
//     once (cgroup v2 where the files exist, v1 otherwise; see Sampler for
//     which file feeds which dimension) and Sample re-reads them with one
//     pread each, parsing without allocating. Rates (CPU, IO, network) are
//     deltas between consecutive samples, so the first Sample only primes
//     them. A dimension whose source is missing is left out of the
//     sample's Avail, never reported as zero.
//
//   - NetMonitor: one per daemon. OpenNetMonitor loads two cgroup_skb
//     programs (ingress, egress), written with cilium/ebpf's asm package,
//     and attaches them once to the cgroup v2 directory above all task
//     cgroups. They count bytes per task cgroup id in a hash map (read with
//     Counters, deleted with Forget) and police the tasks given a limit with
//     SetNetLimit, a lock-free token bucket per cgroup and direction.
//
// Samples are resource.Sample values, in resource's units: CPU in cores,
// memory in MiB (2^20 bytes, as task.Limits.MemoryMB), IO in operations
// per second, network in megabits (10^6 bits) per second per direction.
//
// On cgroup v1 hosts with Linux 6.10 or later the blkio counters stay at
// zero until blk-throttle is set up for a disk; EnableV1IOAccounting does
// that without limiting anything.
//
//	executor ──Target{V1 dirs, V2 dir, CgroupID}──► NewSampler
//	                                                     │
//	sampling loop ──Sample(now)──► Sampler ──pread──► cgroup files: CPU, memory, IO
//	                                  │
//	                                  └──lookup(CgroupID)──► NetMonitor maps
//	                                                              ▲ atomic add, policer
//	                     cgroup_skb ingress/egress programs ──────┘
//	                     (attached once at the v2 parent; run for every task socket)
package profile
