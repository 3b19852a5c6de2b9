//go:build linux

package executor

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/task"
)

// python is the interpreter the OOM tests use to hold memory; Debian's.
const python = "/usr/bin/python3"

// TestRealOOMChildOfShell: the kernel kills a shell's child for memory; the
// shell prints "Killed" and exits 137 on its own. The run is OOM-killed
// although its main process exited normally.
func TestRealOOMChildOfShell(t *testing.T) { modes(t, testOOMChildOfShell) }

func testOOMChildOfShell(t *testing.T, e *Executor) {
	needPython(t)
	// "; exit $?" keeps bash from exec'ing the child in its own place.
	o := StartOptions{
		ID:     "oom-child",
		Argv:   []string{"bash", "-c", python + ` -c 'b = b"x" * (200 << 20)'; exit $?`},
		Env:    []string{"PATH=/usr/bin:/bin"},
		Limits: task.Limits{MemoryMB: 64},
		LogDir: t.TempDir(),
	}
	p := start(t, e, o)
	x := waitWithin(t, p, 30*time.Second)
	if !x.OOMKilled || x.OOMKills < 1 || x.Killed {
		t.Errorf("exit = %v (OOMKilled %v, Killed %v), want OOMKilled with OOMKills >= 1, not Killed", x, x.OOMKilled, x.Killed)
	}
	// With memory.oom.group (v2 memory controller) bash is killed with its
	// child; without it bash goes on and exits 137 itself.
	if e.v2Ctrl["memory"] {
		if x.Signal != syscall.SIGKILL {
			t.Errorf("exit = %v, want the whole task killed (memory.oom.group)", x)
		}
	} else if x.Code != 137 || x.Signal != 0 {
		t.Errorf("exit = %v, want bash itself to exit 137 after its child's SIGKILL", x)
	}
	if errOut := readLog(t, o.LogDir, "stderr.log"); !strings.Contains(errOut, "Killed") {
		t.Logf("bash stderr: %q (no \"Killed\")", errOut)
	}
}

// TestRealOOMInPipeline: a pipeline stage is killed for memory while the
// shell, reporting its last stage, exits 0. The run is OOM-killed.
func TestRealOOMInPipeline(t *testing.T) { modes(t, testOOMInPipeline) }

func testOOMInPipeline(t *testing.T, e *Executor) {
	needPython(t)
	o := StartOptions{
		ID: "oom-pipe",
		Argv: []string{"bash", "-c",
			`head -c 300M /dev/zero | ` + python + ` -c 'import sys; d = sys.stdin.buffer.read()' | cat > /dev/null`},
		Env:    []string{"PATH=/usr/bin:/bin"},
		Limits: task.Limits{MemoryMB: 64},
		LogDir: t.TempDir(),
	}
	p := start(t, e, o)
	x := waitWithin(t, p, 30*time.Second)
	if !x.OOMKilled || x.OOMKills < 1 || x.Killed {
		t.Errorf("exit = %v (OOMKilled %v, Killed %v), want OOMKilled with OOMKills >= 1, not Killed", x, x.OOMKilled, x.Killed)
	}
	// With memory.oom.group (v2 memory controller) the whole pipeline is
	// killed; without it bash reports its last stage, cat, which exits 0.
	if e.v2Ctrl["memory"] {
		if x.Signal != syscall.SIGKILL {
			t.Errorf("exit = %v, want the whole task killed (memory.oom.group)", x)
		}
	} else if x.Code != 0 {
		t.Errorf("exit = %v, want bash to exit 0 (the case a success used to hide)", x)
	}
	t.Logf("pipeline: %v", x)
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("the OOM tests hold memory with %s: %v", python, err)
	}
}
