package task

import (
	"path"
	"slices"
	"strings"
)

// DefaultEnvDeny returns the variable-name patterns that SignerConfig uses
// when EnvDeny is nil: variables that describe the user's terminal, login
// session or service manager rather than the computation, and that change
// between otherwise identical runs. It returns a new slice on every call,
// so callers may append their own patterns to it.
//
// CI systems and batch schedulers set variables that number or name one
// build, job or pipeline run (GITHUB_RUN_ID, CI_JOB_ID, BUILD_NUMBER,
// SLURM_JOB_ID, …) and per-run paths and tokens: with them every build
// would be a new signature. Whole prefixes are denied where a CI system
// puts only its own bookkeeping under one (GITHUB_*, CI_*, CIRCLE_*, …);
// where a prefix is shared with settings that can change the computation
// (SLURM_CPUS_*, BUILD_* of Azure and Jenkins), only the per-run names are.
// CI itself ("true" on every CI system) is kept: constant, and some tools
// behave differently under it.
//
// Kept on purpose (not denied): HOME (programs read per-user configuration
// and packages from it, e.g. Python's ~/.local site-packages), PATH (it
// chooses the programs a script runs), LANG/LC_* (they change sorting and
// parsing), TZ, TMPDIR and every application variable. USER and LOGNAME are
// denied: they name the submitter, which is constant for one user's tasks
// and splits identical work between users.
func DefaultEnvDeny() []string {
	return []string{
		// Shell state.
		"PWD", "OLDPWD", "SHLVL", "_",
		"PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND",
		"HISTFILE", "HISTFILESIZE", "HISTSIZE", "HISTCONTROL", "HISTIGNORE", "HISTTIMEFORMAT",
		"COLUMNS", "LINES",
		// Terminal and display.
		"TERM", "TERM_*", "COLORTERM", "LS_COLORS", "DISPLAY", "WAYLAND_*", "WINDOWID",
		"TMUX", "TMUX_PANE", "STY", "WINDOW", "VTE_VERSION",
		// Login session and identity.
		"SSH_*", "XDG_SESSION_*", "XDG_RUNTIME_DIR", "XDG_SEAT", "XDG_VTNR",
		"DBUS_SESSION_BUS_ADDRESS", "MAIL", "USER", "LOGNAME", "SUDO_*",
		// Service manager.
		"INVOCATION_ID", "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "MANAGERPID",
		"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
		"HOSTNAME", // a container's is random per run
		// Terminal emulators and desktop sessions.
		"TERM_SESSION_ID", "ITERM_SESSION_ID", "ITERM_PROFILE", "KONSOLE_*", "GNOME_TERMINAL_*",
		"WT_SESSION", "WT_PROFILE_ID", "TERMINAL_EMULATOR", "ALACRITTY_*", "KITTY_*", "WEZTERM_*",
		"VSCODE_*", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "SECURITYSESSIONID", "SHELL_SESSION_ID",
		"SESSION_MANAGER", "DESKTOP_STARTUP_ID", "XAUTHORITY", "GPG_AGENT_INFO", "KRB5CCNAME",
		"GIO_LAUNCHED_DESKTOP_FILE*", "XDG_ACTIVATION_TOKEN", "DBUS_*",
		// Tracing context (W3C, OpenTelemetry): one id per request or run.
		"TRACEPARENT", "TRACESTATE",
		// CI systems: GitHub Actions, GitLab (and Woodpecker's CI_*),
		// CircleCI, Travis, Buildkite, Drone, Bitbucket, AppVeyor,
		// Semaphore, TeamCity, AWS CodeBuild, Jenkins, Azure Pipelines.
		"GITHUB_*", "RUNNER_*", "ACTIONS_*",
		"CI_*", "GITLAB_*",
		"CIRCLE_*", "CIRCLECI",
		"TRAVIS_*",
		"BUILDKITE_*", "BUILDKITE",
		"DRONE_*",
		"BITBUCKET_*",
		"APPVEYOR_*",
		"SEMAPHORE_*",
		"TEAMCITY_*",
		"CODEBUILD_*",
		"JENKINS_*", "HUDSON_*", "BUILD_NUMBER", "BUILD_ID", "BUILD_TAG", "BUILD_URL", "BUILD_DISPLAY_NAME",
		"JOB_URL", "JOB_DISPLAY_URL", "RUN_DISPLAY_URL", "RUN_ARTIFACTS_DISPLAY_URL", "RUN_CHANGES_DISPLAY_URL",
		"RUN_TESTS_DISPLAY_URL", "EXECUTOR_NUMBER", "NODE_NAME", "NODE_LABELS", "WORKSPACE", "WORKSPACE_TMP",
		"GIT_COMMIT", "GIT_PREVIOUS_COMMIT", "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
		"BUILD_BUILDID", "BUILD_BUILDNUMBER", "BUILD_BUILDURI", "BUILD_SOURCEVERSION", "BUILD_SOURCEVERSIONMESSAGE",
		"BUILD_REQUESTEDFOR*", "BUILD_QUEUEDBY*", "BUILD_ARTIFACTSTAGINGDIRECTORY", "BUILD_BINARIESDIRECTORY",
		"BUILD_STAGINGDIRECTORY", "BUILD_SOURCESDIRECTORY", "BUILD_REPOSITORY_LOCALPATH",
		"SYSTEM_JOBID", "SYSTEM_JOBATTEMPT", "SYSTEM_STAGEATTEMPT", "SYSTEM_PHASEATTEMPT", "SYSTEM_TIMELINEID",
		"SYSTEM_PLANID", "SYSTEM_ACCESSTOKEN", "SYSTEM_DEFAULTWORKINGDIRECTORY", "SYSTEM_ARTIFACTSDIRECTORY",
		"AGENT_ID", "AGENT_NAME", "AGENT_MACHINENAME", "AGENT_JOBNAME", "AGENT_BUILDDIRECTORY", "AGENT_TEMPDIRECTORY",
		"AGENT_WORKFOLDER", "AGENT_HOMEDIRECTORY",
		// Batch schedulers: one job, step, array index or host list per run.
		"SLURM_JOB_ID", "SLURM_JOBID", "SLURM_ARRAY_JOB_ID", "SLURM_STEP_ID", "SLURM_STEPID", "SLURM_TASK_PID",
		"SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_TOPOLOGY_ADDR",
		"SLURM_JOB_START_TIME", "SLURM_JOB_END_TIME", "SLURM_SUBMIT_HOST", "SLURMD_NODENAME",
		"PBS_JOBID", "PBS_JOBNAME", "PBS_NODEFILE", "PBS_O_*", "PBS_TASKNUM", "PBS_VNODENUM",
		"LSB_JOBID", "LSB_BATCH_JID", "LSB_JOBINDEX", "LSB_HOSTS", "LSB_MCPU_HOSTS", "LSB_JOBFILENAME",
		"JOB_ID", "SGE_TASK_ID", "PE_HOSTFILE",
		// Our own.
		"PRESCIENT_*",
	}
}

// envSet is a task's environment as the program will see it: one value per
// name, the last one winning as in os/exec.
type envSet map[string]string

// parseEnv reads Spec.Env. Entries must be KEY=VALUE with a non-empty KEY.
func parseEnv(entries []string) (envSet, error) {
	env := make(envSet, len(entries))
	for _, kv := range entries {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, specErrorf("env entry %q: want KEY=VALUE", kv)
		}
		env[k] = v
	}
	return env, nil
}

// envMatcher decides which variables enter a signature. Patterns are split
// by shape when the Signer is built — exact names into a set, NAME* into
// prefixes, the rest kept for path.Match — because matching ~45 default
// patterns against every variable with path.Match was a quarter of Sign's
// time.
type envMatcher struct {
	allowAll bool // no allow patterns: every name is allowed
	allow    patternSet
	deny     patternSet
}

type patternSet struct {
	exact    map[string]bool
	prefixes []string
	globs    []string // validated by SignerConfig.validate: path.Match cannot fail
}

func newEnvMatcher(allow, deny []string) envMatcher {
	return envMatcher{allowAll: len(allow) == 0, allow: compilePatterns(allow), deny: compilePatterns(deny)}
}

func compilePatterns(pats []string) patternSet {
	ps := patternSet{exact: map[string]bool{}}
	for _, p := range pats {
		body, star := strings.CutSuffix(p, "*")
		switch {
		case !strings.ContainsAny(p, `*?[\`):
			ps.exact[p] = true
		case star && !strings.ContainsAny(body, `*?[\`):
			ps.prefixes = append(ps.prefixes, body)
		default:
			ps.globs = append(ps.globs, p)
		}
	}
	return ps
}

func (ps patternSet) match(name string) bool {
	if ps.exact[name] {
		return true
	}
	for _, p := range ps.prefixes {
		// path.Match's * does not match '/', and neither does a prefix.
		if strings.HasPrefix(name, p) && !strings.Contains(name[len(p):], "/") {
			return true
		}
	}
	for _, p := range ps.globs {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// match reports whether the variable name may enter a signature. Deny wins
// over allow.
func (m envMatcher) match(name string) bool {
	if m.deny.match(name) {
		return false
	}
	return m.allowAll || m.allow.match(name)
}

// why says why the variable name does not enter a signature: the deny
// pattern that matched it, or that no allow pattern did; "" when it does
// enter.
func (m envMatcher) why(name string, allow, deny []string) string {
	if m.deny.match(name) {
		for _, p := range deny {
			if compilePatterns([]string{p}).match(name) {
				return "denied by " + p
			}
		}
		return "denied"
	}
	if !m.allowAll && !m.allow.match(name) {
		return "not allowed (no --env-allow pattern matches)"
	}
	return ""
}

// envPair is one variable in a signature.
type envPair struct{ key, value string }

// filter returns the variables of env that pass m, sorted by name.
func (m envMatcher) filter(env envSet) []envPair {
	out := make([]envPair, 0, len(env))
	for k, v := range env {
		if m.match(k) {
			out = append(out, envPair{k, v})
		}
	}
	slices.SortFunc(out, func(a, b envPair) int { return strings.Compare(a.key, b.key) })
	return out
}
