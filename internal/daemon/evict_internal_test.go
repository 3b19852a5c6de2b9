package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/prescient-sched/prescient/internal/task"
)

// TestEvictedMarkSurvivesRestart: the run directory says a SIGKILL was an
// eviction, so the end a restarted daemon reads from it (readEnd, and the
// leftover Inspect finds) is an eviction, which the scheduler requeues,
// not the task's own end by a signal, which would fail it. Measured in
// TestSoak on a clean clone: a task evicted just before the daemon was
// killed ended failed, "signal", and never ran.
func TestEvictedMarkSurvivesRestart(t *testing.T) {
	rt := &shimRunner{stateDir: t.TempDir()}
	dir := rt.runDir("t1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(shimExit{Started: true, Code: -1, Signal: "killed"})
	if err := os.WriteFile(filepath.Join(dir, runExitFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if e := readEnd(dir); e.Evicted || e.Outcome().Kind != task.KindSignal {
		t.Fatalf("unmarked: %+v (%+v); want the task's own end by a signal", e, e.Outcome())
	}
	// What Evict does before it kills.
	if err := rt.markEvicted("t1"); err != nil {
		t.Fatal(err)
	}
	e := readEnd(dir)
	if !e.Evicted {
		t.Fatalf("marked: %+v; want evicted", e)
	}
	if o := outcome(Run{End: e}); !o.Evicted || o.Cancelled || o.OOMKilled {
		t.Fatalf("scheduler outcome %+v; want evicted", o)
	}
	// A task that exited by itself before the kill reached it ended as
	// it ended: it is not run again (measured: a quick task that had
	// exited 0 was requeued as evicted and ran twice).
	b, _ = json.Marshal(shimExit{Started: true, Code: 0})
	if err := os.WriteFile(filepath.Join(dir, runExitFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if e := readEnd(dir); e.Evicted || e.Outcome().State != task.Succeeded {
		t.Fatalf("exited 0 with the mark: %+v; want its own success", e)
	}
}
