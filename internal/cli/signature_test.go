package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prescient-sched/prescient/internal/task"
)

func TestSignatureCmd(t *testing.T) {
	t.Setenv("GITHUB_RUN_ID", "17")
	t.Setenv("PRESCIENT_SIG_TEST", "1")
	tests := []struct {
		name     string
		args     []string
		excluded map[string]string // name → reason
		hashed   []string
	}{
		{"defaults", []string{"signature", "--json", "--", "sh", "-c", "true"},
			map[string]string{"GITHUB_RUN_ID": "denied by GITHUB_*", "PRESCIENT_SIG_TEST": "denied by PRESCIENT_*"}, nil},
		{"no defaults, own deny", []string{"signature", "--json", "--no-default-env-deny", "--env-deny", "GITHUB_RUN_*", "--", "sh", "-c", "true"},
			map[string]string{"GITHUB_RUN_ID": "denied by GITHUB_RUN_*"}, []string{"PRESCIENT_SIG_TEST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var x task.Explanation
			if err := json.Unmarshal(out.Bytes(), &x); err != nil {
				t.Fatal(err)
			}
			if len(x.Hash) != 64 || x.Version != task.SignatureVersion || !strings.HasSuffix(x.Program, "sh") {
				t.Fatalf("explanation %+v", x)
			}
			got := map[string]string{}
			for _, e := range x.EnvExcluded {
				got[e.Name] = e.Reason
			}
			for k, v := range tt.excluded {
				if got[k] != v {
					t.Errorf("%s left out for %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tt.hashed {
				if !strings.Contains(strings.Join(x.EnvKeys, " "), k) {
					t.Errorf("%s not hashed: %q", k, x.EnvKeys)
				}
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run([]string{"signature", "--", "sh", "-c", "true"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "denied by GITHUB_*") {
		t.Fatalf("exit %d, text:\n%s%s", code, out.String(), errb.String())
	}
	if code := run([]string{"signature", "--", "no-such-program-xyz"}, &out, &errb); code != exitNotFound {
		t.Fatalf("unknown program: exit %d, want %d", code, exitNotFound)
	}
}
