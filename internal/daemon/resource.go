package daemon

import (
	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
)

// Conversions from the resource vocabulary to the API's stable wire
// format (docs/api.md), in one place.

// apiDimKey is dimension d's key in api.NodeStatus.Dims: resource's name,
// but "iops" for IO, the name the API has always used.
func apiDimKey(d resource.Dim) string {
	if d == resource.IO {
		return "iops"
	}
	return d.String()
}

// pointOf is sample s as a point of GET /v1/tasks/{id}/curve. CPU goes out
// in percent of one core (cpu_pct): the API's stable unit, which clients
// (the CLI among them, in samplesFromAPI) read back. Unavailable
// dimensions are null, never zero.
func pointOf(s resource.Sample) api.Point {
	p := api.Point{Time: s.Time}
	if s.Avail.Has(resource.CPU) {
		p.CPUPct = ptr(resource.PctOfCores(s.CPU))
	}
	if s.Avail.Has(resource.Memory) {
		p.MemoryMB, p.RSSMB, p.PeakMB = ptr(s.MemoryMB), ptr(s.RSSMB), ptr(s.PeakMB)
	}
	if s.Avail.Has(resource.IO) {
		p.IOPS = ptr(s.IOPS)
	}
	if s.Avail.Has(resource.Net) {
		p.NetInMbps, p.NetOutMbps = ptr(s.NetInMbps), ptr(s.NetOutMbps)
	}
	return p
}
