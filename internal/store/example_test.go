package store_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "prescient-state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	r := &task.Record{ID: store.NewID(), Signature: "ab12", State: task.Running, SubmittedAt: start}
	if err := st.Tasks.Put(r); err != nil {
		log.Fatal(err)
	}
	// Three samples 100 ms apart; the network was not measurable.
	for i := range 3 {
		s := resource.Sample{
			Time: start.Add(time.Duration(i) * 100 * time.Millisecond),
			CPU:  0.5 + float64(i)/100, MemoryMB: 256, RSSMB: 200, PeakMB: 256, IOPS: 10,
			Avail: resource.SetOf(resource.CPU, resource.Memory, resource.IO),
		}
		if err := st.Samples.Append(r.ID, r.Signature, s); err != nil {
			log.Fatal(err)
		}
	}

	running, err := st.Tasks.List(store.Filter{State: task.Running})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("running tasks:", len(running))
	curve, err := st.Samples.Curve(r.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range curve {
		fmt.Printf("%s cpu=%.2f cores mem=%.0fMB net available: %v\n",
			s.Time.Format("15:04:05.000"), s.CPU, s.MemoryMB, s.Avail.Has(resource.Net))
	}
	// Output:
	// running tasks: 1
	// 12:00:00.000 cpu=0.50 cores mem=256MB net available: false
	// 12:00:00.100 cpu=0.51 cores mem=256MB net available: false
	// 12:00:00.200 cpu=0.52 cores mem=256MB net available: false
}

func ExampleTasks_BySignature() {
	dir, err := os.MkdirTemp("", "prescient-tasks")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tasks, err := store.OpenTasks(dir + "/tasks.db")
	if err != nil {
		log.Fatal(err)
	}
	defer tasks.Close()

	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var batch []*task.Record
	for i, st := range []task.State{task.Succeeded, task.Failed, task.Running} {
		batch = append(batch, &task.Record{
			ID: fmt.Sprintf("run-%d", i), Signature: "ab12", State: st,
			SubmittedAt: t0.Add(time.Duration(i) * time.Minute),
		})
	}
	if err := tasks.PutBatch(batch); err != nil { // one transaction, one fsync
		log.Fatal(err)
	}
	recent, err := tasks.BySignature("ab12", 2)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recent {
		fmt.Println(r.ID, r.State)
	}
	// Output:
	// run-2 running
	// run-1 failed
}

func ExampleSamples_Runs() {
	dir, err := os.MkdirTemp("", "prescient-tsdb")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	samples, err := store.OpenSamples(store.SamplesConfig{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer samples.Close()

	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"first", "second"} {
		s := resource.Sample{Time: t0.Add(time.Duration(i) * time.Hour), MemoryMB: 100 * float64(i+1), Avail: resource.SetOf(resource.Memory)}
		if err := samples.Append(id, "ab12", s); err != nil {
			log.Fatal(err)
		}
	}
	runs, err := samples.Runs("ab12")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(runs), "runs; second used", runs["second"][0].MemoryMB, "MB")
	// Output: 2 runs; second used 200 MB
}
