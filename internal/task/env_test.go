package task

import (
	"path"
	"testing"
)

// TestEnvMatcherAgreesWithPathMatch checks the compiled pattern shapes
// against path.Match itself.
func TestEnvMatcherAgreesWithPathMatch(t *testing.T) {
	pats := append(DefaultEnvDeny(), "A?C", "[XY]Z*", `B\*`, "*_URL", "*")
	names := []string{"", "PWD", "PWDX", "TERM", "TERM_PROGRAM", "TERMINAL", "SSH_", "SSH_TTY", "SSH/X",
		"ABC", "AC", "XZ", "YZQ", "B*", "BX", "API_URL", "_", "__", "PRESCIENT_ID", "prescient_id", "a/b"}
	for _, p := range pats {
		m := compilePatterns([]string{p})
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := m.match(n); got != want {
				t.Errorf("pattern %q, name %q: match %v, path.Match %v", p, n, got, want)
			}
		}
	}
}

func FuzzEnvMatcher(f *testing.F) {
	f.Add("TERM_*", "TERM_PROGRAM")
	f.Add("A[b-d]*", "Abx")
	f.Add(`x\*`, "x*")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		want, err := path.Match(pattern, name)
		if err != nil || pattern == "" {
			return // rejected by SignerConfig.validate
		}
		if got := compilePatterns([]string{pattern}).match(name); got != want {
			t.Fatalf("pattern %q, name %q: match %v, path.Match %v", pattern, name, got, want)
		}
	})
}
