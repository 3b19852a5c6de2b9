package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/testuser"
)

// userEnv is a daemon serving a throwaway user through --socket-group.
type userEnv struct {
	*env
	user testuser.User
	cred *syscall.Credential
}

func newUserEnv(t *testing.T, args ...string) *userEnv {
	t.Helper()
	needDaemon(t)
	us := testuser.New(t, 1)
	g, gid := testuser.Group(t, us...)
	// Registered after the users: the daemon stops (and its tasks end)
	// before userdel runs.
	e := newEnv(t, append([]string{"--socket-group", g}, args...)...)
	e.start()
	return &userEnv{env: e, user: us[0], cred: us[0].CredentialIn(gid)}
}

// cliCtx is cli with a deadline: a client that hangs is killed and
// reported as such (code -1) instead of hanging the test.
func (e *env) cliCtx(ctx context.Context, cred *syscall.Credential, args ...string) (stdout, stderr string, code int) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", e.socket}, args...)...)
	cmd.Dir = "/tmp"
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var o, er capped
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ctx.Err() != nil {
		return o.String(), er.String(), -1
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run client: %v", err)
	}
	return o.String(), er.String(), code
}

// capped keeps the first MiB written to it and counts the rest, so a
// client streaming without end cannot exhaust the test's memory.
type capped struct {
	bytes.Buffer
	n int64
}

func (c *capped) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	if room := 1<<20 - c.Buffer.Len(); room > 0 {
		c.Buffer.Write(b[:min(room, len(b))])
	}
	return len(b), nil
}

// victim makes a root-owned 0644 file with known content in the test's
// directory.
func victim(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkVictim(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("victim: %v", err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 0 || sys.Gid != 0 || st.Mode() != mode {
		t.Errorf("victim %s is now %v uid %d gid %d; want %v root:root", p, st.Mode(), sys.Uid, sys.Gid, mode)
	}
	b, _ := os.ReadFile(p)
	if string(b) != content {
		t.Errorf("victim %s changed: %d bytes, starts %q", p, len(b), tail(string(b), 80))
	}
}

// TestLogSymlinkAttack: a task keeps re-creating stdout.log and stderr.log
// in its own log directory as symlinks to a root-owned file while it
// writes enough to rotate its logs many times (--log-max-bytes 4096). The
// root shim must never follow them: the victim stays root's and unchanged,
// and the task cannot even create names there (EACCES). With --log-keep
// -1 (rotation truncates in place) the old shim followed the symlink at
// every rotation; with old files kept, it did when the task won the race
// between the rename and the re-open.
func TestLogSymlinkAttack(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		files int // names left in the log directory
	}{
		{"keep none", []string{"--log-max-bytes", "4096", "--log-keep", "-1"}, 2},
		{"keep two", []string{"--log-max-bytes", "4096"}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { symlinkAttack(t, tt.args, tt.files) })
	}
}

func symlinkAttack(t *testing.T, args []string, files int) {
	e := newUserEnv(t, args...)
	const content = "root:x:0:0:root:/root:/bin/bash\n"
	v := victim(t, e.dir, "victim", content, 0o644)
	script := fmt.Sprintf(`d=%s/logs/$PRESCIENT_TASK_ID; v=%s
( while :; do ln -sfn "$v" "$d/stdout.log"; ln -sfn "$v" "$d/stderr.log"; done ) 2>/dev/null &
p=$!
i=0
while [ $i -lt 10000 ]; do
  echo 0123456789012345678901234567890123456789012345678901234567890123
  echo 0123456789012345678901234567890123456789012345678901234567890123 >&2
  i=$((i+1))
done
kill $p; wait $p 2>/dev/null
ln -s "$v" "$d/planted.log" 2>&1 | sed 's/^/ATTEMPT: /'
exit 0`, e.state, v)
	ctx := ctxT(t, 120*time.Second)
	out, errOut, code := e.cliCtx(ctx, e.cred, "submit", "--wait", "--cpu", "1", "--memory", "256M", "--", "sh", "-c", script)
	if code != 0 {
		t.Fatalf("submit as %s: exit %d: %s", e.user.Name, code, errOut)
	}
	checkVictim(t, v, content, 0o644)
	id := strings.Fields(out)[0]
	tk, err := e.client().Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The layout: a root-owned 0755 directory, the files the user's 0600.
	st, err := os.Lstat(tk.LogDir)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || st.Mode() != os.ModeDir|0o755 {
		t.Errorf("log dir %v uid %d, want a 0755 directory owned by root", st.Mode(), sys.Uid)
	}
	ents, _ := os.ReadDir(tk.LogDir)
	for _, en := range ents {
		st, err := os.Lstat(filepath.Join(tk.LogDir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || sys.Uid != e.user.UID {
			t.Errorf("%s: %v uid %d, want a regular 0600 file of uid %d", en.Name(), st.Mode(), sys.Uid, e.user.UID)
		}
	}
	if len(ents) != files {
		t.Errorf("log dir holds %d names, want %d", len(ents), files)
	}
	// The last attempt creates a name that does not exist, so the only
	// error it can meet is EACCES. (It used to be ln -sfn over
	// stdout.log: when the shim was rotating at that instant, stdout.log
	// was briefly absent, ln's lstat of it failed, and ln reported its
	// first error, EEXIST, instead — a flake, not a hole.)
	logs, _, _ := e.cliCtx(ctx, e.cred, "logs", "--stream", "stdout", id)
	if !strings.Contains(logs, "ATTEMPT: ") || !strings.Contains(logs, "Permission denied") {
		t.Errorf("the task's last attempt did not fail with EACCES; stdout ends %q", tail(logs, 300))
	}
}

// TestLogsPlantedFiles: a log directory left by an older daemon belongs to
// the task's user, who can put anything in it. `prescient logs` (which the
// daemon serves as root) must not read a root-only file through a symlink,
// must not block on a FIFO and must not stream a device; it answers at
// once with an error saying why, and the daemon stays up.
func TestLogsPlantedFiles(t *testing.T) {
	e := newUserEnv(t)
	const secret = "SECRET-shadow-line\n"
	v := victim(t, e.dir, "shadow", secret, 0o600)
	ctx := ctxT(t, 120*time.Second)
	out, errOut, code := e.cliCtx(ctx, e.cred, "submit", "--wait", "--", "sh", "-c", "echo hello; echo oops >&2")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errOut)
	}
	id := strings.Fields(out)[0]
	c := e.client()
	tk, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The old layout: the directory is the user's.
	if err := os.Chown(tk.LogDir, int(e.user.UID), int(e.user.GID)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		plant string // shell, run as the user in the log directory
		want  string // in the client's error
	}{
		{"symlink to a root-only file", `ln -sf ` + v + ` stdout.log`, "symbolic link"},
		{"symlink to /dev/zero", `ln -sf /dev/zero stdout.log`, "symbolic link"},
		{"fifo", `rm -f stdout.log && mkfifo stdout.log`, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plant := exec.Command("sh", "-c", "cd "+tk.LogDir+" && "+tt.plant)
			plant.SysProcAttr = &syscall.SysProcAttr{Credential: e.cred}
			if b, err := plant.CombinedOutput(); err != nil {
				t.Fatalf("plant as the user: %v: %s", err, b)
			}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			start := time.Now()
			out, errOut, code := e.cliCtx(cctx, e.cred, "logs", "--stream", "stdout", id)
			if code == -1 {
				t.Fatalf("prescient logs hung (killed after %v)", time.Since(start).Round(time.Millisecond))
			}
			if strings.Contains(out, "SECRET") || strings.Contains(errOut, "SECRET") {
				t.Fatalf("prescient logs printed the victim: %q", out)
			}
			if len(out) > 0 {
				t.Errorf("prescient logs printed %d bytes (%q…), want none", len(out), tail(out, 40))
			}
			if code == 0 || !strings.Contains(errOut, "forbidden") && !strings.Contains(errOut, "403") {
				t.Errorf("prescient logs: exit %d, stderr %q; want a refusal (403)", code, errOut)
			}
			t.Logf("answered in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
			if tt.want != "" && !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not say %q", errOut, tt.want)
			}
		})
	}
	// The other stream is still the task's own; the daemon answers.
	got, errOut, code := e.cliCtx(ctx, e.cred, "logs", "--stream", "stderr", id)
	if code != 0 || got != "oops\n" {
		t.Errorf("stderr stream: exit %d %q (%s), want oops", code, got, errOut)
	}
	if _, err := c.Node(ctx); err != nil {
		t.Errorf("daemon after the attacks: %v", err)
	}
}
