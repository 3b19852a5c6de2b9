// Package resource is Prescient's one vocabulary of resources: the
// dimensions it measures, predicts and reserves ([Dim], [Set]), their
// units, amounts of each ([Vector]), one measurement of one task
// ([Sample]) and the peak and mean of a run ([Summary], [Accumulator]).
//
// Units, the same in every package inside Prescient:
//
//	CPU     cores            0.5 = half of one core
//	Memory  MiB              2^20 bytes
//	IO      operations/s     block IO reads + writes
//	Net     megabits/s       both directions together in a Vector
//
// CPU is in cores everywhere. Prescient's stable external formats — the
// HTTP API's cpu_pct fields, the cpu_pct of stored task records and the
// CLI's JSON — count CPU in percent of one core (100 = one core); they
// convert with [PctOfCores] and [CoresOfPct] at the one place each format
// is written or read, and nowhere else.
//
// The package is a leaf: it imports nothing of Prescient's, so that every
// other package (including the eBPF profiler and the task model) can use
// it. Its values are plain data, safe to copy and to share read-only.
package resource
