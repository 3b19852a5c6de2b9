package task

import (
	"regexp"
	"strings"
)

// optKind is what an interpreter option does to the command line.
type optKind uint8

const (
	optFlag     optKind = iota // no value; nothing to do
	optValue                   // takes a value that is not code (a directory, a setting)
	optInline                  // takes program text (python -c, perl -e)
	optModule                  // takes a module or class name (python -m, java -m)
	optScript                  // takes the script file (php -f, java -jar)
	optStdin                   // flag: the program comes from standard input (sh -s)
	optCommand                 // flag: the first operand is program text (sh -c)
	optSearch                  // flag: look the script up in PATH (perl -S, ruby -S)
	optAttached                // takes the rest of its word, never the next argument (perl -i.bak, -MList::Util)
)

// family is how one kind of interpreter reads its command line. The rules
// are documented in docs/signature.md; they cover the options that take a
// separate value (so the value is not mistaken for the script) and the
// options that name the code, not every option of every version.
type family struct {
	name      string
	re        *regexp.Regexp // matches the program's base name
	bundling  bool           // single-letter options bundle: -uc CODE, -lne CODE, -ec CODE
	plus      bool           // options may start with '+' (shells: +o name)
	dashEnds  bool           // a lone "-" ends the options (shells); else it means stdin
	opts      map[string]optKind
	stops     map[string]bool // options after which the rest of the line belongs to the program
	mainClass bool            // java: the first operand is a class name, or a .java source file
}

var families = []*family{
	{
		name: "shell", re: regexp.MustCompile(`^(ba|da|z|k|mk|a|rba|ya)?sh[0-9.]*$`),
		bundling: true, plus: true, dashEnds: true,
		opts: map[string]optKind{
			"-c": optCommand, "-s": optStdin,
			"-o": optValue, "+o": optValue, "-O": optValue, "+O": optValue,
			"--rcfile": optValue, "--init-file": optValue,
		},
	},
	{
		name: "python", re: regexp.MustCompile(`^(python|pypy)([0-9]+(\.[0-9]+)*)?t?$`),
		bundling: true,
		opts: map[string]optKind{
			"-c": optInline, "-m": optModule, "-W": optValue, "-X": optValue,
			"--check-hash-based-pycs": optValue,
		},
		stops: map[string]bool{"-c": true, "-m": true},
	},
	{
		name: "node", re: regexp.MustCompile(`^(node|nodejs)[0-9]*$`),
		opts: map[string]optKind{
			"-e": optInline, "--eval": optInline, "-p": optInline, "--print": optInline,
			"-r": optValue, "--require": optValue, "--import": optValue, "--loader": optValue,
			"--experimental-loader": optValue, "-C": optValue, "--conditions": optValue,
			"--env-file": optValue, "--title": optValue, "--input-type": optValue,
		},
	},
	{
		name: "perl", re: regexp.MustCompile(`^perl[0-9.]*$`),
		bundling: true,
		opts: map[string]optKind{
			"-e": optInline, "-E": optInline, "-I": optValue, "-S": optSearch,
			"-i": optAttached, "-0": optAttached, "-l": optAttached, "-x": optAttached,
			"-C": optAttached, "-d": optAttached, "-D": optAttached, "-M": optAttached,
			"-m": optAttached, "-F": optAttached, "-V": optAttached,
		},
	},
	{
		name: "ruby", re: regexp.MustCompile(`^ruby[0-9.]*$`),
		bundling: true,
		opts: map[string]optKind{
			"-e": optInline, "-I": optValue, "-r": optValue, "-C": optValue, "-E": optValue,
			"--encoding": optValue, "-S": optSearch,
			"-0": optAttached, "-i": optAttached, "-x": optAttached, "-F": optAttached,
			"-K": optAttached, "-T": optAttached, "-W": optAttached,
		},
	},
	{
		name: "php", re: regexp.MustCompile(`^php[0-9.]*(-cli)?$`),
		bundling: true,
		opts: map[string]optKind{
			"-r": optInline, "-B": optInline, "-R": optInline, "-E": optInline,
			"-f": optScript, "-F": optScript,
			"-c": optValue, "-d": optValue, "-z": optValue, "-t": optValue, "-S": optValue,
		},
	},
	{
		name: "rscript", re: regexp.MustCompile(`^Rscript$`),
		opts: map[string]optKind{"-e": optInline},
	},
	{
		name: "java", re: regexp.MustCompile(`^java$`),
		opts: map[string]optKind{
			"-jar": optScript, "-m": optModule, "--module": optModule,
			"-cp": optValue, "-classpath": optValue, "--class-path": optValue,
			"-p": optValue, "--module-path": optValue, "--upgrade-module-path": optValue,
			"--add-modules": optValue, "--add-opens": optValue, "--add-exports": optValue,
			"--add-reads": optValue, "--patch-module": optValue, "--limit-modules": optValue,
			"--enable-native-access": optValue, "--source": optValue,
			"-d": optValue, "--describe-module": optValue,
		},
		stops:     map[string]bool{"-jar": true, "-m": true, "--module": true},
		mainClass: true,
	},
}

// familyOf returns the interpreter family of a program base name, or nil.
func familyOf(base string) *family {
	for _, f := range families {
		if f.re.MatchString(base) {
			return f
		}
	}
	return nil
}

// argRole says how an argument enters the canonical argument vector.
type argRole struct {
	kind   string // kindNone: literal (or an input placeholder); else <script>, <inline>, <module>
	prefix string // an attached option kept before the placeholder: "-c" in "-cprint(1)"
}

// parsedLine is what family.parse finds in an interpreter's arguments
// (argv without argv[0]).
type parsedLine struct {
	roles  []argRole
	inline []string // program text, in order
	module string
	// cand is the index of the argument that names the script, if any (an
	// operand, or the value of php -f / java -jar); candVal is its value
	// without an attached option. The caller decides whether it is an
	// existing file.
	cand    int
	candVal string
	search  bool // perl/ruby -S
	// classCand: java's first operand — a main class, or a .java file.
	classCand bool
}

// parse reads args (argv[1:]) by the family's rules.
func (f *family) parse(args []string) parsedLine {
	p := parsedLine{roles: make([]argRole, len(args)), cand: -1}
	command, haveCode, stdin := false, false, false

	// value records the value of a value-taking option; it reports whether
	// option processing stops here.
	value := func(opt string, k optKind, idx int, prefix, val string) bool {
		switch k {
		case optInline:
			p.roles[idx] = argRole{kindInline, prefix}
			p.inline = append(p.inline, val)
			haveCode = true
		case optModule:
			p.roles[idx] = argRole{kindModule, prefix}
			p.module = val
			haveCode = true
		case optScript:
			p.cand, p.candVal = idx, val
			p.roles[idx].prefix = prefix
			haveCode = true
		}
		return f.stops[opt]
	}
	flag := func(k optKind) {
		switch k {
		case optStdin:
			stdin = true
		case optCommand:
			command = true
		case optSearch:
			p.search = true
		}
	}
	takesValue := func(k optKind) bool {
		return k == optValue || k == optInline || k == optModule || k == optScript
	}

	i := 0
scan:
	for i < len(args) {
		a := args[i]
		switch {
		case a == "--":
			i++
			break scan
		case a == "-":
			if f.dashEnds {
				i++
			} else {
				stdin = true
			}
			break scan
		case len(a) < 2 || (a[0] != '-' && !(f.plus && a[0] == '+')):
			break scan // the first operand
		}
		if strings.HasPrefix(a, "--") || !f.bundling {
			name, val, attached := a, "", false
			if strings.HasPrefix(a, "--") {
				name, val, attached = strings.Cut(a, "=")
			}
			k := f.opts[name]
			if !takesValue(k) {
				flag(k)
				i++
				continue
			}
			idx, prefix := i, name+"="
			if !attached {
				i++
				if i >= len(args) {
					break scan
				}
				idx, prefix, val = i, "", args[i]
			}
			i++
			if value(name, k, idx, prefix, val) {
				break scan
			}
			continue
		}
		// Bundled single-letter options: the first one that takes a value
		// takes the rest of the word, or else the next argument.
		stop := false
		for j := 1; j < len(a); j++ {
			opt := a[:1] + a[j:j+1]
			k := f.opts[opt]
			if k == optAttached {
				break
			}
			if !takesValue(k) {
				flag(k)
				continue
			}
			if j+1 < len(a) {
				stop = value(opt, k, i, a[:j+1], a[j+1:])
			} else {
				i++
				if i >= len(args) {
					break scan
				}
				stop = value(opt, k, i, "", args[i])
			}
			break
		}
		i++
		if stop {
			break scan
		}
	}
	if i >= len(args) || stdin {
		return p
	}
	switch {
	case command:
		p.roles[i] = argRole{kind: kindInline}
		p.inline = append(p.inline, args[i])
	case haveCode:
		// The remaining operands are the program's arguments.
	default:
		p.cand, p.candVal = i, args[i]
		p.classCand = f.mainClass
	}
	return p
}
