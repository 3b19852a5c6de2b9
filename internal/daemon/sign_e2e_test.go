package daemon_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/testuser"
)

// secretSize is the size of user A's secret file: distinctive, so that
// finding it in a reply or in the daemon's log means it leaked.
const secretSize = 7351

// TestSignWithCallersRights reproduces the attacks of issue 12, item 3:
// user B, through the daemon, tries to learn about user A's files — their
// size, whether a name exists in A's 0700 directory, whether a guess
// matches A's secret script, the total size of a directory B cannot list —
// and to make the daemon walk a huge tree. The daemon signs with B's
// rights, so each attempt gets the reply B's own shell would give.
func TestSignWithCallersRights(t *testing.T) {
	needDaemon(t)
	users := testuser.New(t, 2)
	a, b := users[0], users[1]
	group, gid := testuser.Group(t, a, b)
	credA, credB := a.CredentialIn(gid), b.CredentialIn(gid)
	e := newEnv(t, "--socket-group", group, "--sign-max-entries", "1000")
	e.start()

	// A's files, in a directory everyone may search.
	root, err := os.MkdirTemp("", "sign-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	must(t, os.Chmod(root, 0o755))
	home := filepath.Join(root, "a")
	private := filepath.Join(home, "private")
	must(t, os.MkdirAll(private, 0o700))
	must(t, os.Chmod(home, 0o755))
	secret := filepath.Join(home, "secret.csv")
	must(t, os.WriteFile(secret, []byte(strings.Repeat("x", secretSize)), 0o600))
	script := filepath.Join(home, "pin.sh")
	must(t, os.WriteFile(script, []byte("echo pin 4711 >/dev/null\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(private, "exists.csv"), []byte("a,b\n1,2\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(private, "prog"), []byte("#!/bin/sh\ntrue\n"), 0o755))
	for _, p := range []string{home, private, secret, script, filepath.Join(private, "exists.csv"), filepath.Join(private, "prog")} {
		must(t, os.Chown(p, int(a.UID), int(a.GID)))
	}
	// A tree over the entry budget, readable by all.
	huge := filepath.Join(root, "huge")
	must(t, os.Mkdir(huge, 0o755))
	for i := range 1500 {
		must(t, os.WriteFile(filepath.Join(huge, "f"+strconv.Itoa(i)), nil, 0o644))
	}

	// refused submits as B and checks the reply names no size.
	refused := func(t *testing.T, want string, args ...string) string {
		t.Helper()
		out, errOut, code := e.cli(credB, append([]string{"submit", "--json"}, args...)...)
		if code == 0 {
			t.Fatalf("B's submit %q was accepted: %s", args, out)
		}
		t.Logf("B's submit %q: exit %d: %s", args, code, strings.TrimSpace(errOut))
		if !strings.Contains(errOut, want) {
			t.Errorf("B's submit %q: stderr %q, want it to say %q", args, errOut, want)
		}
		if strings.Contains(out+errOut, strconv.Itoa(secretSize)) {
			t.Errorf("B's submit %q: reply tells the secret's size: %s%s", args, out, errOut)
		}
		return errOut
	}

	t.Run("size of another user's 0600 file", func(t *testing.T) {
		refused(t, "permission denied", "--input", secret, "--", "true")
	})
	t.Run("existence of a name in a 0700 directory", func(t *testing.T) {
		for _, what := range []struct{ flag, exists, missing string }{
			{"--input", filepath.Join(private, "exists.csv"), filepath.Join(private, "missing.csv")},
			{"program", filepath.Join(private, "prog"), filepath.Join(private, "nosuchprog")},
		} {
			args := func(p string) []string {
				if what.flag == "program" {
					return []string{"--", p}
				}
				return []string{what.flag, p, "--", "true"}
			}
			_, errE, codeE := e.cli(credB, append([]string{"submit", "--json"}, args(what.exists)...)...)
			_, errM, codeM := e.cli(credB, append([]string{"submit", "--json"}, args(what.missing)...)...)
			if codeE == 0 || codeE != codeM || strings.ReplaceAll(errE, what.exists, "P") != strings.ReplaceAll(errM, what.missing, "P") {
				t.Errorf("%s: existing name: exit %d %q; missing name: exit %d %q; want one refusal for both",
					what.flag, codeE, errE, codeM, errM)
			}
			t.Logf("B: %s: exit %d: %s", what.flag, codeE, strings.TrimSpace(errE))
			if !strings.Contains(errE, "permission denied") {
				t.Errorf("%s: %q, want permission denied", what.flag, errE)
			}
		}
	})
	t.Run("guess of a secret script through the warm cache", func(t *testing.T) {
		out, errOut, code := e.cli(credA, "submit", "--json", "--wait", "--", "sh", script)
		if code != 0 {
			t.Fatalf("A's own script: exit %d: %s", code, errOut)
		}
		var mine api.Task
		if err := json.Unmarshal([]byte(out), &mine); err != nil || mine.Signature == "" {
			t.Fatalf("A's task: %v: %s", err, out)
		}
		errB := refused(t, "permission denied", "--", "sh", script)
		if strings.Contains(errB, mine.Signature) {
			t.Errorf("B got A's signature")
		}
	})
	t.Run("total size of a directory B cannot list", func(t *testing.T) {
		refused(t, "permission denied", "--input", private, "--", "true")
	})
	t.Run("a tree over the entry budget", func(t *testing.T) {
		errOut := refused(t, "more than 1000 entries", "--input", huge, "--", "true")
		if !strings.Contains(errOut, "sign_max_entries") || !strings.Contains(errOut, "name the files the task reads") {
			t.Errorf("stderr %q: want the limit's name and what to do", errOut)
		}
	})
	t.Run("the daemon's log tells no size", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(e.dir, "daemon.log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), strconv.Itoa(secretSize)) {
			t.Errorf("the daemon's log names the secret's size:\n%s", b)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
