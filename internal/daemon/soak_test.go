package daemon_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// soakSize is the soak's scale: a short version in `make test`, the full
// one (500 tasks, 100 kills) with PRESCIENT_SOAK=full (`make soak`).
func soakSize() (tasks, kills int) {
	if os.Getenv("PRESCIENT_SOAK") == "full" {
		return 500, 100
	}
	return 40, 4
}

// TestSoak submits tasks of mixed shapes — quick and slower successes,
// failures, shell-wrapped tasks whose child the kernel OOM-kills and that
// need a larger limit, tasks that need more memory than the node has —
// while the daemon is killed with SIGKILL at random moments and restarted.
// Every task whose submit was answered must end exactly once in a
// recorded state: no succeeded task runs twice, every OOM-killed task is
// retried larger until it succeeds or no larger limit fits the node (then
// failed, saying so), and nothing is left behind.
func TestSoak(t *testing.T) {
	needDaemon(t)
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("the soak holds memory with %s: %v", py, err)
	}
	n, kills := soakSize()
	e := newEnv(t, "--memory", "800M", "--max-running", "16")
	marker := filepath.Join(e.dir, "marker")
	if f, err := os.OpenFile(marker, os.O_CREATE|os.O_WRONLY, 0o666); err == nil {
		f.Close()
	}
	rng := rand.New(rand.NewPCG(7, 11))
	type shape struct {
		name string
		req  func(i int) api.SubmitRequest
		want string // final state
	}
	mark := "echo $PRESCIENT_TASK_ID >> " + marker
	shapes := []shape{
		{"quick", func(int) api.SubmitRequest { return spec("sh", "-c", mark+"; sleep 0.0"+fmt.Sprint(rng.IntN(9))) }, api.StateSucceeded},
		{"slower", func(int) api.SubmitRequest {
			return spec("sh", "-c", fmt.Sprintf("sleep %d.%d; %s", rng.IntN(2), rng.IntN(10), mark))
		}, api.StateSucceeded},
		{"fails", func(int) api.SubmitRequest { return spec("sh", "-c", "exit 3") }, api.StateFailed},
		// Declares 64 MB, takes 200 MB at once behind a shell: OOM-killed,
		// then retried larger until it fits; the marker only on success.
		{"oom-then-fits", func(int) api.SubmitRequest {
			r := spec("bash", "-c", py+` -c 'b = b"x" * (200 << 20)' && `+mark)
			r.Requests = &api.Limits{CPUCores: 0.1, MemoryMB: 64}
			return r
		}, api.StateSucceeded},
		// Needs more than the node's 800 MB: failed for good, saying so.
		{"too-big", func(int) api.SubmitRequest {
			r := spec("bash", "-c", py+` -c 'b = b"x" * (1000 << 20)' && `+mark)
			r.Requests = &api.Limits{CPUCores: 0.1, MemoryMB: 256}
			return r
		}, api.StateFailed},
	}
	weights := []int{40, 30, 10, 15, 5}
	pick := func() int {
		x := rng.IntN(100)
		for i, w := range weights {
			if x < w {
				return i
			}
			x -= w
		}
		return 0
	}
	kind := map[string]int{}
	var ids []string
	ctx := ctxT(t, time.Duration(5+n/20)*time.Minute)
	began := time.Now()
	submitted := 0
	for k := 0; k < kills || submitted < n; k++ {
		e.start()
		c := api.NewUnixClient(e.socket)
		window := time.Duration(300+rng.IntN(2700)) * time.Millisecond
		deadline := time.Now().Add(window)
		for time.Now().Before(deadline) && submitted < n {
			s := pick()
			if submitted < len(shapes) {
				s = submitted // every shape at least once
			}
			tk, err := c.Submit(ctx, shapes[s].req(submitted))
			if err != nil {
				t.Fatalf("submit to a live daemon: %v", err)
			}
			kind[tk.ID] = s
			ids = append(ids, tk.ID)
			submitted++
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		}
		if submitted >= n {
			time.Sleep(time.Until(deadline))
		}
		c.Close()
		if k < kills {
			e.kill9()
		}
	}
	if e.cmd == nil {
		e.start()
	}
	t.Logf("submitted %d tasks through %d kills in %v", len(ids), kills, time.Since(began).Round(time.Second))
	c := e.client()
	counts := map[string]int{}
	for _, id := range ids {
		tk, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatalf("wait %s: %v", id, err)
		}
		sh := shapes[kind[id]]
		counts[sh.name+" "+tk.State]++
		if tk.State != sh.want {
			t.Errorf("%s task %s: %s (%s: %s), want %s", sh.name, id, tk.State, tk.ErrorCode, tk.Error, sh.want)
			continue
		}
		switch sh.name {
		case "oom-then-fits":
			// Retried larger each time until it fitted.
			var sizes []float64
			for _, a := range tk.Allocations {
				if a.Reason == "oom_retry" {
					sizes = append(sizes, a.Held.MemoryMB)
				}
			}
			if !slices.IsSorted(sizes) {
				t.Errorf("oom-then-fits task %s: retries not growing: %v", id, sizes)
			}
		case "too-big":
			if !tk.OOMKilled || !strings.Contains(tk.Error, "node's memory") {
				t.Errorf("too-big task %s: oom_killed %v, error %q; want the OOM kill and that the node cannot hold it", id, tk.OOMKilled, tk.Error)
			}
		}
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, l := range strings.Fields(string(b)) {
		runs[l]++
	}
	for _, id := range ids {
		want := 0
		if shapes[kind[id]].want == api.StateSucceeded {
			want = 1
		}
		if runs[id] != want {
			t.Errorf("%s task %s ran to its end %d times, want %d", shapes[kind[id]].name, id, runs[id], want)
		}
	}
	t.Logf("%d tasks, %d kills, all ended in %v: %v", len(ids), kills, time.Since(began).Round(time.Second), counts)
	// Nothing held, nothing left behind.
	deadline := time.Now().Add(10 * time.Second)
	for {
		nd, err := c.Node(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if nd.Running == 0 && nd.Queued == 0 && nd.Used.CPUCores == 0 && nd.Used.MemoryMB == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node after the soak: %+v", nd)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.state, "run")); len(ents) != 0 {
		t.Errorf("%d run directories left", len(ents))
	}
}
