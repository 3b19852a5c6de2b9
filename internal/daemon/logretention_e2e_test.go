package daemon_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

var droppedRE = regexp.MustCompile(`the first (\d+) bytes of stdout were dropped by rotation`)

// TestLogsReportRotationDrop: output beyond --log-max-bytes × (1 +
// --log-keep) is dropped oldest first, and `prescient logs` says how much.
func TestLogsReportRotationDrop(t *testing.T) {
	e := newUserEnv(t, "--log-max-bytes", "4096", "--log-keep", "1")
	ctx := ctxT(t, 60*time.Second)
	// 20,000 bytes: files of 4096, 4096, 4096, 4096, 3616; the last two kept.
	out, errOut, code := e.cliCtx(ctx, e.cred, "submit", "--wait", "--", "sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errOut)
	}
	id := strings.Fields(out)[0]
	logs, errOut, code := e.cliCtx(ctx, e.cred, "logs", id)
	if code != 0 {
		t.Fatalf("logs: exit %d: %s", code, errOut)
	}
	if len(logs) != 3616 {
		t.Errorf("logs printed %d bytes, want the current file's 3616", len(logs))
	}
	t.Logf("logs said: %s", strings.TrimSpace(errOut))
	m := droppedRE.FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("logs stderr %q does not report the drop", errOut)
	}
	if n, _ := strconv.Atoi(m[1]); n != 12288 {
		t.Errorf("reported %d bytes dropped, want 12288", n)
	}
	tk, err := e.client().Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tk.LogsDropped == nil || tk.LogsDropped.StdoutBytes != 12288 || tk.LogsDropped.StderrBytes != 0 {
		t.Errorf("task logs_dropped = %+v, want stdout 12288", tk.LogsDropped)
	}
}

// TestLogRetention: with --log-total-bytes, the logs of ended tasks are
// removed oldest first until the total fits; `prescient logs` says so.
func TestLogRetention(t *testing.T) {
	// Each task leaves 3 files of 16 KiB (stdout.log{,.1,.2}) = 48 KiB; the
	// cap holds two tasks' logs, not three.
	e := newUserEnv(t, "--log-max-bytes", "16384", "--log-total-bytes", "110000")
	ctx := ctxT(t, 60*time.Second)
	var ids []string
	for range 3 {
		out, errOut, code := e.cliCtx(ctx, e.cred, "submit", "--wait", "--", "sh", "-c", "head -c 49152 /dev/urandom")
		if code != 0 {
			t.Fatalf("submit: exit %d: %s", code, errOut)
		}
		ids = append(ids, strings.Fields(out)[0])
	}
	c := e.client()
	var tk *api.Task
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if tk, err = c.Get(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		// The removal is recorded first, then the directory goes.
		_, err = os.Stat(tk.LogDir)
		if tk.LogsDropped != nil && tk.LogsDropped.RemovedAt != nil && os.IsNotExist(err) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tk.LogsDropped == nil || tk.LogsDropped.RemovedAt == nil {
		t.Fatalf("oldest task's logs not recorded as removed: %+v", tk.LogsDropped)
	}
	if _, err := os.Stat(tk.LogDir); !os.IsNotExist(err) {
		t.Errorf("oldest task's log dir still there: %v", err)
	}
	for _, id := range ids[1:] {
		tk, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.LogsDropped != nil && tk.LogsDropped.RemovedAt != nil {
			t.Errorf("task %s's logs removed too", id)
		}
		if _, err := os.Stat(filepath.Join(tk.LogDir, "stdout.log")); err != nil {
			t.Errorf("task %s's log: %v", id, err)
		}
	}
	out, errOut, code := e.cliCtx(ctx, e.cred, "logs", ids[0])
	t.Logf("logs said (exit %d): %s", code, strings.TrimSpace(errOut))
	if code == 0 || out != "" || !strings.Contains(errOut, "were removed on") || !strings.Contains(errOut, "--log-total-bytes 110000") {
		t.Errorf("logs of the removed task: exit %d, stdout %d bytes, stderr %q", code, len(out), errOut)
	}
}
