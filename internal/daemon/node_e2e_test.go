package daemon_test

import (
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/daemon"
	"github.com/prescient-sched/prescient/internal/store"
)

// TestNodeLoad: the daemon samples the whole node every tick, shows the
// last sample in the node status and stores the node's series beside the
// tasks', with which a finished run is read back as history.
func TestNodeLoad(t *testing.T) {
	needDaemon(t)
	e := newEnv(t, "--interval", "200ms", "--train-every", "-1s")
	e.start()
	c := e.client()
	ctx := ctxT(t, 60*time.Second)
	for {
		n, err := c.Node(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l := n.Load; l != nil && l.CPU != nil && l.Memory != nil {
			if l.CPU.Cores < 1 || l.CPU.BusyCores < 0 || l.CPU.BusyCores > l.CPU.Cores+1e-6 || l.Memory.AvailableMB <= 0 || l.Memory.AvailableMB > l.Memory.TotalMB {
				t.Fatalf("node load %+v cpu %+v memory %+v", l, l.CPU, l.Memory)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no node load in the status")
		case <-time.After(100 * time.Millisecond):
		}
	}
	tk, err := c.Submit(ctx, spec(bin, "workload", "--quiet", "1s:cpu=0.2,mem=20"))
	if err != nil {
		t.Fatal(err)
	}
	if final, err := c.Wait(ctx, tk.ID); err != nil || final.State != "succeeded" {
		t.Fatalf("task: %+v, %v", final, err)
	}
	e.stop()
	st, err := store.Open(e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ns, err := st.Samples.Node(time.Now().Add(-time.Hour), time.Now())
	if err != nil || len(ns) < 3 {
		t.Fatalf("%d node samples stored, %v", len(ns), err)
	}
	runs, err := daemon.History(st, 0, 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("history: %d runs, %v", len(runs), err)
	}
	r := runs[0]
	if len(r.Load) != len(r.Samples) || r.Load[len(r.Load)-1].Cores < 1 {
		t.Fatalf("run has %d samples, %d loads (%+v)", len(r.Samples), len(r.Load), r.Load)
	}
}
