package resource_test

import (
	"fmt"

	"github.com/prescient-sched/prescient/internal/resource"
)

func Example() {
	ss := []resource.Sample{
		{MemoryMB: 100, Avail: resource.SetOf(resource.Memory)}, // first sample: no rates yet
		{CPU: 0.5, MemoryMB: 300, Avail: resource.SetOf(resource.CPU, resource.Memory)},
		{CPU: 1.5, MemoryMB: 200, Avail: resource.SetOf(resource.CPU, resource.Memory)},
	}
	sum := resource.Summarize(ss)
	fmt.Println("samples:", sum.N, "available:", sum.Avail)
	for d := range resource.NumDims {
		if sum.Avail.Has(d) {
			fmt.Printf("%s peak %g %s, mean %g %s\n", d, sum.Peak[d], d.Unit(), sum.Mean[d], d.Unit())
		}
	}
	fmt.Println("cpu_pct on the wire:", resource.PctOfCores(sum.Peak[resource.CPU]))
	// Output:
	// samples: 3 available: cpu|memory
	// cpu peak 1.5 cores, mean 1 cores
	// memory peak 300 MiB, mean 200 MiB
	// cpu_pct on the wire: 150
}
