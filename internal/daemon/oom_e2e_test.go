package daemon_test

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// TestOOMInsideShellRetried: shell-wrapped tasks declaring 64 MB whose
// child the kernel kills for memory — bash exits 137 on its own, or a
// pipeline exits 0 — are recognised as OOM-killed and requeued by the
// predictive scheduler (an oom_retry allocation), and each ends either
// succeeded after a retry or failed with the OOM reason; never succeeded
// on the killed run, never an ordinary failure.
func TestOOMInsideShellRetried(t *testing.T) {
	needDaemon(t)
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("the test holds memory with %s: %v", py, err)
	}
	// A node of 400 MB: the gigabyte each task takes at once does not fit,
	// so each is OOM-killed, retried larger (to the node's 400 MB) and then
	// failed with the reason — the OOM kill is recognised inside a shell.
	e := newEnv(t, "--memory", "400M")
	e.start()
	c := e.client()
	ctx := ctxT(t, 90*time.Second)
	var wg sync.WaitGroup
	for _, tc := range []struct {
		name, script string
	}{
		// Each takes a gigabyte at once (a memset at GB/s): faster than the
		// monitor can follow (it raises a limit at most 1.5× per sample).
		{"child", py + ` -c 'b = b"x" * (1 << 30)'; exit $?`},
		{"pipeline", `head -c 1M /dev/zero | ` + py + ` -c 'import sys; sys.stdin.buffer.read(); b = b"x" * (1 << 30)' | cat > /dev/null`},
	} {
		req := spec("bash", "-c", tc.script)
		req.Requests = &api.Limits{MemoryMB: 64} // submit --memory 64M: what it says it needs
		tk, err := c.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			final, err := c.Wait(ctx, tk.ID)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				return
			}
			var retries []string
			for _, a := range final.Allocations {
				if a.Reason == "oom_retry" {
					retries = append(retries, a.Detail)
				}
			}
			t.Logf("%s: %s, oom_killed %v, retries %d, error %q; allocations %v; oom_retry %q",
				tc.name, final.State, final.OOMKilled, final.Retries, final.Error, reasons(final.Allocations), retries)
			// Retried larger, unless its first kill was already at all the
			// node holds (the limit may have been raised there live).
			if (len(retries) == 0 || final.Retries < 1) && !strings.Contains(final.Error, "OOM-killed at a 400 MB limit") {
				t.Errorf("%s: never requeued for its OOM kill (retries %d, allocations %v)", tc.name, final.Retries, reasons(final.Allocations))
			}
			switch final.State {
			case api.StateSucceeded:
				if final.OOMKilled {
					t.Errorf("%s: succeeded but oom_killed", tc.name)
				}
			case api.StateFailed:
				if !final.OOMKilled || !strings.HasPrefix(final.Error, "killed for memory: ") || !strings.Contains(final.Error, "node's memory") {
					t.Errorf("%s: failed with oom_killed %v, error %q; want the OOM kill and its reason", tc.name, final.OOMKilled, final.Error)
				}
			default:
				t.Errorf("%s: ended %s", tc.name, final.State)
			}
		}()
	}
	wg.Wait()
}
