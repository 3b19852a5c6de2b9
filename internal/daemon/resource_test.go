package daemon

import (
	"testing"

	"github.com/prescient-sched/prescient/internal/resource"
)

func TestAPIDimKey(t *testing.T) {
	// The keys of GET /v1/node's dims, as docs/api.md lists them.
	want := map[resource.Dim]string{resource.CPU: "cpu", resource.Memory: "memory", resource.IO: "iops", resource.Net: "net"}
	for d := range resource.NumDims {
		if got := apiDimKey(d); got != want[d] {
			t.Errorf("apiDimKey(%d) = %q, want %q", d, got, want[d])
		}
	}
}
