package daemon

import "github.com/prescient-sched/prescient/internal/resource"

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
