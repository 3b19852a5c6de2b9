// Package workload is a test workload that follows a scripted resource
// curve — CPU fraction, resident memory, block IO operations per second and
// network throughput to a loopback peer it starts itself — so tests and
// benchmarks can check measured curves against known ones. It is reached
// through the hidden "prescient workload" command.
package workload
