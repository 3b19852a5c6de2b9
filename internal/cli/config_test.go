package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// runCLI runs the command line in-process and returns its outputs.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e strings.Builder
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// TestConfigRoundTrip: --print-config prints every serve flag; what it
// prints, read back with --config, prints the same; the command line
// overrides the file.
func TestConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	first, errOut, code := runCLI(t, "serve", "--state-dir", state, "--max-running", "7", "--interval", "500ms",
		"--memory", "2G", "--policy", "fit", "--socket-group", "", "--env-deny", "CI_*", "--env-deny", "X", "--print-config")
	if code != 0 {
		t.Fatalf("print-config: exit %d: %s", code, errOut)
	}
	// Every serve flag, its own and inherited, is a setting.
	root := newRootCmd(&globals{stdout: &strings.Builder{}, stderr: &strings.Builder{}})
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(f *pflag.Flag) {
		if f.Hidden || f.Name == "config" || f.Name == "print-config" || f.Name == "help" || f.Name == "local" {
			return
		}
		if !strings.Contains(first, "\n"+f.Name+": ") {
			t.Errorf("--print-config lacks %q:\n%s", f.Name, first)
		}
	}
	serve.Flags().VisitAll(check)
	root.PersistentFlags().VisitAll(check)
	for _, want := range []string{"max-running: 7\n", "interval: 500ms\n", "memory: 2G\n", "policy: fit\n", `socket-group: ""` + "\n", "state-dir: " + state + "\n", "env-deny: [CI_*, X]\n", "env-allow: []\n"} {
		if !strings.Contains(first, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, first)
		}
	}

	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	second, errOut, code := runCLI(t, "serve", "--config", path, "--print-config")
	if code != 0 {
		t.Fatalf("--config: exit %d: %s", code, errOut)
	}
	if second != first {
		t.Errorf("round trip differs:\n--- first\n%s\n--- second\n%s", first, second)
	}

	over, _, code := runCLI(t, "serve", "--config", path, "--max-running", "9", "--print-config")
	if code != 0 || !strings.Contains(over, "max-running: 9\n") || !strings.Contains(over, "interval: 500ms\n") {
		t.Errorf("the command line must override the file (exit %d):\n%s", code, over)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown key", "max-runing: 3\n", `unknown setting "max-runing"`},
		{"bad value", "max-running: many\n", "max-running"},
		{"not a mapping", "- a\n- b\n", "want a mapping"},
		{"list value", "policy: [fit]\n", "want a single value"},
		{"nested list", "env-deny: [[a]]\n", "want a list of single values"},
		{"twice", "policy: fit\npolicy: predict\n", "set twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := runCLI(t, "serve", "--config", path, "--print-config")
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitUsage, tc.want)
			}
		})
	}
	// An empty file changes nothing.
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "serve", "--config", path, "--print-config"); code != 0 {
		t.Errorf("empty config: exit %d: %s", code, errOut)
	}
}
