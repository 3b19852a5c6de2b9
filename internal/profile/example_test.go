package profile_test

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
)

// A Sampler on a task's cgroup v2 directory. The directory here is a fake
// with two files, so that the example runs anywhere; the executor passes
// the real ones.
func ExampleNewSampler() {
	dir, err := os.MkdirTemp("", "cgroup")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("cpu.stat", "usage_usec 0\n")
	write("memory.current", "0\n")

	s, err := profile.NewSampler(profile.Target{V2: dir}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	t0 := time.Now()
	first := s.Sample(t0) // primes the CPU counter
	fmt.Println("first sample has CPU:", first.Avail.Has(resource.CPU))

	write("cpu.stat", "usage_usec 750000\n") // 0.75 s of CPU ...
	got := s.Sample(t0.Add(time.Second))     // ... in one second
	fmt.Printf("CPU %.2f cores\n", got.CPU)
	// No memory.stat: the working set cannot be computed, so memory is
	// unavailable rather than zero.
	fmt.Println("memory available:", got.Avail.Has(resource.Memory))
	// Output:
	// first sample has CPU: false
	// CPU 0.75 cores
	// memory available: false
}

// One NetMonitor for the daemon, attached to the parent of all task
// cgroups; each task's Sampler shares it.
func ExampleOpenNetMonitor() {
	nm, err := profile.OpenNetMonitor("/sys/fs/cgroup/unified/prescient", slog.Default())
	if err != nil {
		log.Printf("no network dimension: %v", err)
		return
	}
	defer nm.Close()

	task := profile.Target{
		V2:       "/sys/fs/cgroup/unified/prescient/task-1",
		CgroupID: 12345, // inode of V2
	}
	if err := nm.SetNetLimit(task.CgroupID, 100); err != nil { // --net-mbps 100
		log.Print(err)
	}
	s, err := profile.NewSampler(task, nm)
	if err != nil {
		log.Print(err)
		return
	}
	defer s.Close()
	_ = s.Sample(time.Now())
	// ... one Sample per second until the task ends, then:
	if err := nm.Forget(task.CgroupID); err != nil {
		log.Print(err)
	}
}
