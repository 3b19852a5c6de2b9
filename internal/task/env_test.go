package task

import (
	"path"
	"slices"
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

// TestSignSurvivesCI: the variables CI systems, batch schedulers and
// terminals set per run leave the signature unchanged; the ones that can
// change the computation do not.
func TestSignSurvivesCI(t *testing.T) {
	base := []string{"HOME=/h", "LANG=C", "PATH=/usr/bin", "OMP_NUM_THREADS=4", "CI=true"}
	runs := [][]string{
		{"GITHUB_RUN_ID=1001", "GITHUB_RUN_NUMBER=7", "GITHUB_SHA=abc", "RUNNER_TEMP=/tmp/r1", "ACTIONS_RUNTIME_TOKEN=x1"},
		{"GITHUB_RUN_ID=1002", "GITHUB_RUN_NUMBER=8", "GITHUB_SHA=def", "RUNNER_TEMP=/tmp/r2", "ACTIONS_RUNTIME_TOKEN=x2"},
		{"CI_JOB_ID=55", "CI_PIPELINE_ID=9", "CI_COMMIT_SHA=1234"},
		{"BUILD_NUMBER=12", "BUILD_ID=12", "BUILD_TAG=jenkins-x-12", "WORKSPACE=/var/lib/jenkins/ws@2", "EXECUTOR_NUMBER=2"},
		{"BUILD_BUILDID=77", "SYSTEM_JOBID=q", "AGENT_NAME=a7"},
		{"CIRCLE_BUILD_NUM=3", "TRAVIS_JOB_ID=4", "BUILDKITE_BUILD_ID=5", "DRONE_BUILD_NUMBER=6"},
		{"SLURM_JOB_ID=4242", "SLURM_JOB_NODELIST=n[1-2]", "PBS_JOBID=1.srv", "LSB_JOBID=8"},
		{"TERM_SESSION_ID=w0t0p0:ab", "ITERM_SESSION_ID=x", "WT_SESSION=y", "HOSTNAME=4f2a9c", "TRACEPARENT=00-aa-bb-01"},
	}
	f := newFixture(t)
	s := f.signer(SignerConfig{})
	want := f.sign(s, Spec{Argv: []string{"tool"}, Env: base})
	for i, r := range runs {
		got := f.sign(s, Spec{Argv: []string{"tool"}, Env: append(slices.Clone(base), r...)})
		if got.Hash != want.Hash {
			t.Errorf("run %d (%q): signature changed; hashed %q", i, r, got.EnvKeys)
		}
	}
	for _, kv := range []string{"OMP_NUM_THREADS=8", "CI=false", "SLURM_CPUS_PER_TASK=4", "MY_SETTING=1"} {
		env := slices.Clone(base)
		got := f.sign(s, Spec{Argv: []string{"tool"}, Env: append(env, kv)})
		if got.Hash == want.Hash {
			t.Errorf("%s: signature unchanged, want a new one", kv)
		}
	}
}

func TestExplain(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		cfg  SignerConfig
		env  []string
		keys []string
		excl []EnvExcluded
	}{
		{"defaults", SignerConfig{}, []string{"HOME=/h", "GITHUB_RUN_ID=1", "TERM=xterm", "X=1"},
			[]string{"HOME", "X"},
			[]EnvExcluded{{"GITHUB_RUN_ID", "denied by GITHUB_*"}, {"TERM", "denied by TERM"}}},
		{"allow list", SignerConfig{EnvAllow: []string{"H*"}}, []string{"HOME=/h", "X=1"},
			[]string{"HOME"},
			[]EnvExcluded{{"X", "not allowed (no --env-allow pattern matches)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.signer(tt.cfg)
			x, err := s.Explain(Spec{Argv: []string{"tool"}, Env: tt.env, Dir: f.dir})
			if err != nil {
				t.Fatal(err)
			}
			if sig := f.sign(s, Spec{Argv: []string{"tool"}, Env: tt.env}); sig.Hash != x.Hash {
				t.Errorf("Explain hash %s, Sign %s", x.Hash, sig.Hash)
			}
			if !slices.Equal(x.EnvKeys, tt.keys) || !slices.Equal(x.EnvExcluded, tt.excl) || x.Version != SignatureVersion {
				t.Errorf("keys %q excluded %q version %d; want %q %q", x.EnvKeys, x.EnvExcluded, x.Version, tt.keys, tt.excl)
			}
		})
	}
}
