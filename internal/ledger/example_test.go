package ledger_test

import (
	"fmt"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

func Example() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := ledger.New(ledger.Config{
		Capacity:  resource.Vector{resource.CPU: 2, resource.Memory: 1024, resource.IO: 1000, resource.Net: 100},
		SlotWidth: time.Second,
		Horizon:   time.Hour,
		Start:     start,
	}, nil)
	if err != nil {
		panic(err)
	}
	// A predicted curve: 1 core and 600 MB (p50; 700 MB at p95) for 30 s.
	c := ledger.Flat(30*time.Second, resource.Vector{resource.CPU: 1, resource.Memory: 600}, resource.Vector{resource.CPU: 1, resource.Memory: 700})
	for _, id := range []string{"a", "b"} {
		_, fit, err := l.SoftReserve(id, c, start, time.Minute)
		if err != nil {
			panic(err)
		}
		fmt.Println(id, fit.OK, fit.Start.Sub(start))
	}
	big := ledger.Flat(time.Second, resource.Vector{resource.Memory: 2048}, resource.Vector{resource.Memory: 2048})
	_, fit, _ := l.SoftReserve("c", big, start, 0)
	fmt.Println("c", fit.OK, fit.Reason)

	// "a" is due: commit it at its hard limits, then it ends.
	if err := l.Commit("a", start, l.HardLimits(c, 0, 10*time.Second)); err != nil {
		panic(err)
	}
	fmt.Println(l.Snapshot(start).Committed)
	l.Release("a")
	l.Release("a") // idempotent
	fmt.Println(l.Commit("a", start, task.Limits{}))
	// Output:
	// a true 0s
	// b true 30s
	// c false exceeds capacity
	// cpu=1.1 memory=770MB iops=0 net=0Mbps
	// commit: reservation "a": ledger: reservation released
}
