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
