package task

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxIndirections bounds env(1) unwrapping plus #! interpreters (the kernel
// allows 4 nested interpreters; env adds one level each).
const maxIndirections = 8

// arg is one command-line argument during resolution.
type arg struct {
	s      string
	script bool // the script file the kernel passes to a #! interpreter
}

// invocation is a command line resolved down to the program that runs.
type invocation struct {
	name    string   // argv[0] of the program that runs (after env and #! unwrapping)
	program string   // its absolute, symlink-free path
	args    []string // its arguments
	roles   []argRole
	script  string // absolute, symlink-free path of the script file, if any
	code    codeID
	env     envSet // the environment it runs with
}

// lookPath resolves a program name as execvp and exec.LookPath do: a name
// with a slash (or any name when search is false) is taken relative to dir;
// otherwise each absolute directory of pathList is tried in order. Empty and
// relative PATH entries are skipped, as exec.LookPath refuses them (ErrDot).
// The result is absolute and free of symlinks.
func lookPath(name, dir, pathList string, search bool) (string, error) {
	if name == "" {
		return "", &kindError{kind: ErrProgramNotFound, msg: `program "": empty name`}
	}
	if !search || strings.Contains(name, "/") {
		p := absIn(name, dir)
		fi, err := os.Stat(p)
		if err != nil {
			return "", newKindError(ErrProgramNotFound, "program", p, err)
		}
		if err := executable(p, fi); err != nil {
			return "", newKindError(ErrProgramNotFound, "program", p, err)
		}
		return realPath(p)
	}
	for _, d := range filepath.SplitList(pathList) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && executable(p, fi) == nil {
			return realPath(p)
		}
	}
	return "", &kindError{kind: ErrProgramNotFound, msg: fmt.Sprintf("program %q not found in PATH", name), cause: fs.ErrNotExist}
}

var (
	errIsDir         = errors.New("is a directory")
	errNotExecutable = fmt.Errorf("not executable: %w", fs.ErrPermission)
)

// executable checks that p (stat'ed as fi) is a regular file that the
// calling thread may execute: some execute bit set and, where the platform
// can tell (canExec), execute permission for the thread's effective ids —
// under cred.Do the user's, so a program the user may not run is refused
// as their shell would refuse it.
func executable(p string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m.IsDir():
		return errIsDir
	case !m.IsRegular():
		return errNotRegular
	case m.Perm()&0o111 == 0:
		return errNotExecutable
	}
	if err := canExec(p); err != nil {
		return &fs.PathError{Op: "access", Path: p, Err: err}
	}
	return nil
}

func realPath(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", newKindError(ErrProgramNotFound, "program", p, err)
	}
	return r, nil
}

// parseShebang reads a #! line the way Linux does: the interpreter is the
// first word after "#!", and everything after it up to the end of the line,
// trimmed of spaces and tabs, is one optional argument. ok is false when
// there is no #! line.
func parseShebang(head []byte) (interp, opt string, ok bool) {
	if len(head) < 2 || head[0] != '#' || head[1] != '!' {
		return "", "", false
	}
	line := string(head[2:])
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = strings.Trim(line, " \t")
	if line == "" {
		return "", "", false
	}
	interp, opt, _ = strings.Cut(line, " ")
	if i := strings.IndexByte(interp, '\t'); i >= 0 {
		interp, opt = interp[:i], interp[i+1:]+" "+opt
	}
	return interp, strings.Trim(opt, " \t"), true
}

// envOp is one change env(1) makes to the environment.
type envOp struct {
	clear bool
	unset string
	set   string // NAME=VALUE
}

// unwrapEnv reads env(1)'s options and NAME=VALUE assignments in args
// (env's argv without argv[0]) like GNU coreutils env, applies them to env,
// and returns the command env runs. ok is false when env runs no command or
// an option is not understood; env is then left alone and env itself is the
// program.
func unwrapEnv(args []arg, env envSet) (rest []arg, ok bool) {
	var ops []envOp
	args = append([]arg(nil), args...)
	i := 0
	// value returns the value of an option that takes one: the rest of the
	// word, or the next argument.
	value := func(attached string) (string, bool) {
		if attached != "" {
			return attached, true
		}
		i++
		if i >= len(args) {
			return "", false
		}
		return args[i].s, true
	}
	split := func(s string) {
		words := splitEnvString(s, env)
		tail := append([]arg(nil), args[i+1:]...)
		args = args[:i+1]
		for _, w := range words {
			args = append(args, arg{s: w})
		}
		args = append(args, tail...)
	}
options:
	for i < len(args) {
		a := args[i].s
		switch {
		case a == "--":
			i++
			break options
		case a == "-" || !strings.HasPrefix(a, "-"):
			break options
		case strings.HasPrefix(a, "--"):
			name, val, attached := strings.Cut(a, "=")
			switch name {
			case "--ignore-environment":
				ops = append(ops, envOp{clear: true})
			case "--null", "--debug", "--default-signal", "--ignore-signal", "--block-signal":
			case "--unset", "--chdir", "--split-string":
				if !attached {
					var ok bool
					if val, ok = value(""); !ok {
						return nil, false
					}
				}
				switch name {
				case "--unset":
					ops = append(ops, envOp{unset: val})
				case "--split-string":
					split(val)
				}
			default: // --help, --version, --list-signal-handling, unknown: no command runs
				return nil, false
			}
		default: // bundled short options
			for j := 1; j < len(a); j++ {
				switch c := a[j]; c {
				case 'i':
					ops = append(ops, envOp{clear: true})
				case '0', 'v':
				case 'u', 'C', 'S':
					v, ok := value(a[j+1:])
					if !ok {
						return nil, false
					}
					if c == 'u' {
						ops = append(ops, envOp{unset: v})
					} else if c == 'S' {
						split(v)
					}
					j = len(a)
				default:
					return nil, false
				}
			}
		}
		i++
	}
	if i < len(args) && args[i].s == "-" {
		ops = append(ops, envOp{clear: true})
		i++
	}
	for i < len(args) && strings.Contains(args[i].s, "=") {
		ops = append(ops, envOp{set: args[i].s})
		i++
	}
	if i >= len(args) {
		return nil, false
	}
	for _, op := range ops {
		switch {
		case op.clear:
			clear(env)
		case op.unset != "":
			delete(env, op.unset)
		case op.set != "":
			if k, v, _ := strings.Cut(op.set, "="); k != "" {
				env[k] = v
			}
		}
	}
	return args[i:], true
}

// splitEnvString splits the argument of env -S as GNU env does, for the
// common subset: words separated by spaces, tabs and newlines; '...' quotes
// literally (\\ and \' escaped); "..." quotes with backslash escapes;
// outside single quotes \t \n \r \f \v \\ \" \' \# \$ and \_ (a space;
// outside quotes a word break); \c ends the string; a word starting with #
// starts a comment; ${NAME} expands from env.
func splitEnvString(s string, env envSet) []string {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	const (
		plain = iota
		single
		double
	)
	state := plain
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case state == single && c == '\'':
			state = plain
		case state == single && c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '\''):
			i++
			cur.WriteByte(s[i])
		case state == single:
			cur.WriteByte(c)
		case state == double && c == '"':
			state = plain
		case state == plain && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'):
			flush()
		case state == plain && c == '#' && !inWord:
			return words
		case state == plain && c == '\'':
			state, inWord = single, true
		case state == plain && c == '"':
			state, inWord = double, true
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'c':
				flush()
				return words
			case '_':
				if state == plain {
					flush()
					continue
				}
				cur.WriteByte(' ')
			case 't':
				cur.WriteByte('\t')
			case 'n':
				cur.WriteByte('\n')
			case 'r':
				cur.WriteByte('\r')
			case 'f':
				cur.WriteByte('\f')
			case 'v':
				cur.WriteByte('\v')
			default:
				cur.WriteByte(e)
			}
			inWord = true
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				cur.WriteString(s[i:])
				inWord = true
				i = len(s)
				continue
			}
			cur.WriteString(env[s[i+2:i+2+end]])
			inWord = true
			i += 2 + end
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words
}

// resolve follows a command line to the program that runs: Argv[0] through
// PATH, env(1) unwrapped (its options and assignments applied to env), a #!
// line followed to its interpreter with the script marked, up to
// maxIndirections times. Then, for an interpreter, it finds the script,
// inline program text or module in the arguments and hashes the script.
func (s *Signer) resolve(argv []string, dir string, env envSet, b *budget) (*invocation, error) {
	args := make([]arg, len(argv))
	for i, a := range argv {
		args[i] = arg{s: a}
	}
	pathList, search := s.cfg.PATH, true
	var (
		prog string
		d    fileDigest
	)
	for depth := 0; ; depth++ {
		if depth == maxIndirections {
			return nil, specErrorf("argv %q: more than %d levels of env and #! indirection", argv[0], maxIndirections)
		}
		var err error
		if prog, err = lookPath(args[0].s, dir, pathList, search); err != nil {
			return nil, err
		}
		if filepath.Base(args[0].s) == "env" || filepath.Base(prog) == "env" {
			if rest, ok := unwrapEnv(args[1:], env); ok {
				args, pathList, search = rest, s.taskPATH(env), true
				continue
			}
		}
		if d, err = s.programDigest(prog, b); err != nil {
			return nil, err
		}
		interp, opt, ok := parseShebang(d.head)
		if !ok {
			break
		}
		next := []arg{{s: interp}}
		if opt != "" {
			next = append(next, arg{s: opt})
		}
		next = append(next, arg{s: prog, script: true})
		args, search = append(next, args[1:]...), false
	}

	inv := &invocation{name: args[0].s, program: prog, env: env}
	inv.code.program = d.sum
	inv.args = make([]string, len(args)-1)
	inv.roles = make([]argRole, len(args)-1)
	for i, a := range args[1:] {
		inv.args[i] = a.s
		if a.script && inv.script == "" {
			if err := s.hashScript(inv, a.s, b); err != nil {
				return nil, err
			}
			inv.roles[i] = argRole{kind: kindFile}
		}
	}
	if inv.script != "" {
		return inv, nil
	}
	fam := familyOf(filepath.Base(inv.name))
	if fam == nil {
		fam = familyOf(filepath.Base(prog))
	}
	if fam == nil {
		return inv, nil
	}
	pl := fam.parse(inv.args)
	inv.roles = pl.roles
	inv.code.inline = pl.inline
	inv.code.module = pl.module
	if pl.cand < 0 {
		return inv, nil
	}
	path, ok, err := s.findScript(pl.candVal, dir, pl.search, env)
	if err != nil {
		return nil, err
	}
	switch {
	case pl.classCand && !(ok && strings.HasSuffix(pl.candVal, ".java")):
		inv.roles[pl.cand] = argRole{kind: kindModule, prefix: pl.roles[pl.cand].prefix}
		inv.code.module = pl.candVal
	case ok:
		if err := s.hashScript(inv, path, b); err != nil {
			return nil, err
		}
		inv.roles[pl.cand] = argRole{kind: kindFile, prefix: pl.roles[pl.cand].prefix}
	default:
		inv.roles[pl.cand] = argRole{} // not a file: an ordinary argument
	}
	return inv, nil
}

// taskPATH is the PATH programs started by the task (env, perl -S) search:
// the task's own, else the Signer's.
func (s *Signer) taskPATH(env envSet) string {
	if p, ok := env["PATH"]; ok {
		return p
	}
	return s.cfg.PATH
}

// programDigest hashes an executable. One that may be run but not read
// (mode 0711 and not root) cannot be hashed; it is identified by its path,
// size and mtime instead, which is the best available, and logged.
func (s *Signer) programDigest(prog string, b *budget) (fileDigest, error) {
	d, err := s.cache.digest("program", prog, b)
	if err == nil {
		return d, nil
	}
	var le *LimitError
	if errors.As(err, &le) {
		return fileDigest{}, err
	}
	if errors.Is(err, fs.ErrPermission) {
		fi, serr := os.Stat(prog)
		if serr == nil {
			s.log.Warn("program is not readable; identifying it by path, size and mtime", "program", prog)
			e := newEncoder()
			e.str("prescient-unreadable/v1")
			e.str(prog)
			e.u64(uint64(fi.Size()))
			e.u64(uint64(fi.ModTime().UnixNano()))
			return fileDigest{sum: e.sum()}, nil
		}
	}
	return fileDigest{}, newKindError(ErrProgramNotFound, "program", prog, err)
}

// findScript decides whether an interpreter's operand names a script file:
// an existing regular file relative to dir or, with perl/ruby -S and no
// slash, in the task's PATH. A missing file (or a directory) is not a script
// — the operand stays an ordinary argument; any other stat error is.
func (s *Signer) findScript(name, dir string, search bool, env envSet) (string, bool, error) {
	if name == "" {
		return "", false, nil
	}
	var cands []string
	if search && !strings.Contains(name, "/") {
		for _, d := range filepath.SplitList(s.taskPATH(env)) {
			if d != "" && filepath.IsAbs(d) {
				cands = append(cands, filepath.Join(d, name))
			}
		}
	}
	cands = append(cands, absIn(name, dir))
	for _, p := range cands {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode().IsRegular():
			r, err := filepath.EvalSymlinks(p)
			if err != nil {
				return "", false, newKindError(ErrScript, "script", p, err)
			}
			return r, true, nil
		case err == nil, errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			continue
		default:
			return "", false, newKindError(ErrScript, "script", p, err)
		}
	}
	return "", false, nil
}

func (s *Signer) hashScript(inv *invocation, path string, b *budget) error {
	d, err := s.cache.digest("script", path, b)
	var le *LimitError
	if errors.As(err, &le) {
		return err
	}
	if err != nil {
		return newKindError(ErrScript, "script", path, err)
	}
	inv.script = path
	inv.code.script = d.sum[:]
	return nil
}
