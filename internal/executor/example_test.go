package executor_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/task"
)

// Run one task under hard limits, raise its memory limit while it runs,
// and collect how it ended. (Needs root, or a delegated cgroup.)
func Example() {
	ex, err := executor.New(executor.Config{}) // root cgroup "prescient" under our own
	if err != nil {
		log.Fatal(err) // e.g. executor.ErrDelegation, naming the file that is not writable
	}
	defer ex.Close()

	p, err := ex.Start(context.Background(), executor.StartOptions{
		ID:     "job-1",
		Argv:   []string{"sh", "-c", "echo working; sleep 1"},
		LogDir: os.TempDir() + "/job-1", // stdout.log, stderr.log
		Stdout: os.Stdout,               // also shown here
		Limits: task.Limits{CPUCores: 0.5, MemoryMB: 128, Pids: 32},
	})
	if err != nil {
		log.Fatal(err) // nothing is left behind
	}
	defer p.Close() // removes the cgroups; after the final stats are read

	fmt.Println("profile these:", p.Cgroups().V1["memory"], p.Cgroups().V2)
	if err := p.Update(task.Limits{CPUCores: 0.5, MemoryMB: 512, Pids: 32}); err != nil {
		log.Print(err)
	}
	x, err := p.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(x) // "exit 0"; an OOM kill reads "signal killed (OOM: 1 kill in the cgroup)"
}

// After a daemon restart, take over a task that is still running.
func ExampleExecutor_Adopt() {
	ex, err := executor.New(executor.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()
	p, err := ex.Adopt("job-1")
	if err != nil {
		log.Fatal(err) // executor.ErrNotFound if its cgroup is gone
	}
	defer p.Close()
	x, _ := p.Wait() // polls until the cgroup is empty
	fmt.Println(x.Unknown, x.OOMKilled)
}
