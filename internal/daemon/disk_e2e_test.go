package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// TestStateDirFull runs the daemon on a small tmpfs and fills it: submits
// are refused with 507 and a message naming the directory, nothing already
// accepted is lost (every task ends recorded, none runs twice), and once
// space is freed the daemon serves as before.
func TestStateDirFull(t *testing.T) {
	needDaemon(t)
	e := newEnv(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m,mode=0755", "tmpfs", e.dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		e.stop()
		_ = exec.Command("umount", "-l", e.dir).Run()
	})
	marker := filepath.Join("/tmp", "prescient-full-"+filepath.Base(e.dir))
	t.Cleanup(func() { os.Remove(marker) })
	e.start()
	c := e.client()
	ctx := ctxT(t, 120*time.Second)

	// Tasks accepted before the disk fills, some still running when it does.
	var ids []string
	for i := range 12 {
		sleep := "0.1"
		if i%3 == 0 {
			sleep = "3"
		}
		tk, err := c.Submit(ctx, spec("sh", "-c", "echo $PRESCIENT_TASK_ID >> "+marker+"; echo some output; sleep "+sleep))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	// Fill what is left of the file system (again before each try: the
	// store may find room in pages it freed).
	filler := filepath.Join(e.dir, "filler")
	fill := func() {
		f, err := os.OpenFile(filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
		if f == nil {
			return
		}
		defer f.Close()
		buf := make([]byte, 64<<10)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				return
			}
		}
	}

	// A submit now is refused, saying why and where; one that still
	// found room is accepted and must end like the others.
	var refused *api.Error
	for range 50 {
		fill()
		tk, err := c.Submit(ctx, spec("true"))
		if errors.As(err, &refused) {
			break
		}
		if err != nil {
			t.Fatalf("submit on a full disk: %v", err)
		}
		ids = append(ids, tk.ID)
	}
	if refused == nil || refused.Status != http.StatusInsufficientStorage || refused.Code != api.CodeNoSpace || !strings.Contains(refused.Message, e.state) {
		t.Fatalf("submit on a full disk: %+v, want 507 no_space naming %s", refused, e.state)
	}
	cliRefused := false
	for range 50 {
		fill()
		out, errOut, code := e.cli(nil, "submit", "--", "true")
		if code == 0 {
			ids = append(ids, strings.TrimSpace(out))
			continue
		}
		if !strings.Contains(errOut, e.state) || !strings.Contains(errOut, "full") {
			t.Fatalf("CLI submit on a full disk: exit %d, %q; want the state directory named full", code, errOut)
		}
		cliRefused = true
		break
	}
	if !cliRefused {
		t.Error("the CLI's submits were never refused on a full disk")
	}

	// Space comes back: everything accepted ends, recorded, and new work runs.
	time.Sleep(2 * time.Second)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		tk, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatalf("wait %s: %v", id, err)
		}
		if tk.State != api.StateSucceeded {
			t.Errorf("task %s: %s (%s)", id, tk.State, tk.Error)
		}
	}
	b, _ := os.ReadFile(marker)
	runs := map[string]int{}
	for _, l := range strings.Fields(string(b)) {
		runs[l]++
	}
	for _, id := range ids[:12] {
		if runs[id] != 1 {
			t.Errorf("task %s ran %d times, want once", id, runs[id])
		}
	}
	tk, err := c.Submit(context.Background(), spec("true"))
	if err != nil {
		t.Fatalf("submit after space came back: %v", err)
	}
	if final, err := c.Wait(ctx, tk.ID); err != nil || final.State != api.StateSucceeded {
		t.Fatalf("task after space came back: %+v %v", final, err)
	}
}
