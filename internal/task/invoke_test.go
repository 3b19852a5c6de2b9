package task

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestInterpreterCommandLines checks how each interpreter family's command
// line is read: which argument is the script, the inline program or the
// module, and what the canonical argument vector becomes.
func TestInterpreterCommandLines(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		wantArgv []string
		kind     string
		script   string   // relative to the fixture, for kind "file"
		inline   []string // for kind "inline"
		module   string
	}{
		// python
		{"python script", []string{"python3", "-u", "job.py", "x"}, []string{"python3", "-u", "<script>", "x"}, kindFile, "job.py", nil, ""},
		{"python -c", []string{"python3", "-c", "print(1)", "a"}, []string{"python3", "-c", "<inline>", "a"}, kindInline, "", []string{"print(1)"}, ""},
		{"python -c attached", []string{"python3", "-cprint(1)"}, []string{"python3", "-c<inline>"}, kindInline, "", []string{"print(1)"}, ""},
		{"python bundled -uc", []string{"python3", "-uc", "print(1)", "job.py"}, []string{"python3", "-uc", "<inline>", "job.py"}, kindInline, "", []string{"print(1)"}, ""},
		{"python -c ends options", []string{"python3", "-c", "pass", "-m", "json"}, []string{"python3", "-c", "<inline>", "-m", "json"}, kindInline, "", []string{"pass"}, ""},
		{"python -m", []string{"python3", "-m", "http.server", "8000"}, []string{"python3", "-m", "<module>", "8000"}, kindModule, "", nil, "http.server"},
		{"python -m attached", []string{"python3", "-mjson.tool", "job.py"}, []string{"python3", "-m<module>", "job.py"}, kindModule, "", nil, "json.tool"},
		{"python -W value", []string{"python3", "-W", "ignore", "job.py"}, []string{"python3", "-W", "ignore", "<script>"}, kindFile, "job.py", nil, ""},
		{"python -X value", []string{"python3", "-X", "importtime", "job.py"}, []string{"python3", "-X", "importtime", "<script>"}, kindFile, "job.py", nil, ""},
		{"python stdin", []string{"python3", "-", "job.py"}, []string{"python3", "-", "job.py"}, kindNone, "", nil, ""},
		{"python missing script", []string{"python3", "nope.py"}, []string{"python3", "nope.py"}, kindNone, "", nil, ""},
		{"python directory operand", []string{"python3", "bin"}, []string{"python3", "bin"}, kindNone, "", nil, ""},
		{"python after --", []string{"python3", "--", "job.py"}, []string{"python3", "--", "<script>"}, kindFile, "job.py", nil, ""},
		{"python versioned name", []string{"python3.12", "job.py"}, []string{"python3.12", "<script>"}, kindFile, "job.py", nil, ""},
		// shells
		{"sh script", []string{"sh", "run.sh", "x"}, []string{"sh", "<script>", "x"}, kindFile, "run.sh", nil, ""},
		{"sh -c", []string{"sh", "-c", "echo hi", "name", "job.py"}, []string{"sh", "-c", "<inline>", "name", "job.py"}, kindInline, "", []string{"echo hi"}, ""},
		{"sh -ec", []string{"sh", "-ec", "echo hi"}, []string{"sh", "-ec", "<inline>"}, kindInline, "", []string{"echo hi"}, ""},
		{"bash -c after options", []string{"bash", "-c", "-e", "echo hi"}, []string{"bash", "-c", "-e", "<inline>"}, kindInline, "", []string{"echo hi"}, ""},
		{"bash -euo pipefail", []string{"bash", "-euo", "pipefail", "run.sh", "x"}, []string{"bash", "-euo", "pipefail", "<script>", "x"}, kindFile, "run.sh", nil, ""},
		{"bash +o", []string{"bash", "+o", "posix", "run.sh"}, []string{"bash", "+o", "posix", "<script>"}, kindFile, "run.sh", nil, ""},
		{"bash --rcfile", []string{"bash", "--rcfile", "run.sh", "-i"}, []string{"bash", "--rcfile", "run.sh", "-i"}, kindNone, "", nil, ""},
		{"sh -s", []string{"sh", "-s", "run.sh"}, []string{"sh", "-s", "run.sh"}, kindNone, "", nil, ""},
		{"sh - ends options", []string{"sh", "-", "run.sh"}, []string{"sh", "-", "<script>"}, kindFile, "run.sh", nil, ""},
		// perl
		{"perl -ne", []string{"perl", "-ne", "print", "job.py"}, []string{"perl", "-ne", "<inline>", "job.py"}, kindInline, "", []string{"print"}, ""},
		{"perl -e twice", []string{"perl", "-e", "a;", "-e", "b;"}, []string{"perl", "-e", "<inline>", "-e", "<inline>"}, kindInline, "", []string{"a;", "b;"}, ""},
		{"perl -I separate", []string{"perl", "-I", "lib", "job.pl"}, []string{"perl", "-I", "lib", "<script>"}, kindFile, "job.pl", nil, ""},
		{"perl -i.bak -pe", []string{"perl", "-i.bEk", "-pe", "s/a/b/", "f"}, []string{"perl", "-i.bEk", "-pe", "<inline>", "f"}, kindInline, "", []string{"s/a/b/"}, ""},
		{"perl -M", []string{"perl", "-MList::Util=sum", "job.pl"}, []string{"perl", "-MList::Util=sum", "<script>"}, kindFile, "job.pl", nil, ""},
		{"perl -S searches PATH", []string{"perl", "-S", "helper.pl"}, []string{"perl", "-S", "<script>"}, kindFile, "bin/helper.pl", nil, ""},
		// ruby, node, php, Rscript
		{"ruby -e", []string{"ruby", "-e", "puts 1"}, []string{"ruby", "-e", "<inline>"}, kindInline, "", []string{"puts 1"}, ""},
		{"ruby -r", []string{"ruby", "-r", "json", "job.rb"}, []string{"ruby", "-r", "json", "<script>"}, kindFile, "job.rb", nil, ""},
		{"node --require", []string{"node", "--require", "./setup.js", "app.js"}, []string{"node", "--require", "./setup.js", "<script>"}, kindFile, "app.js", nil, ""},
		{"node -e", []string{"node", "-e", "1", "app.js"}, []string{"node", "-e", "<inline>", "app.js"}, kindInline, "", []string{"1"}, ""},
		{"node --eval=", []string{"node", "--eval=1"}, []string{"node", "--eval=<inline>"}, kindInline, "", []string{"1"}, ""},
		{"php -f", []string{"php", "-f", "job.php", "--", "x"}, []string{"php", "-f", "<script>", "--", "x"}, kindFile, "job.php", nil, ""},
		{"php -r", []string{"php", "-r", "echo 1;"}, []string{"php", "-r", "<inline>"}, kindInline, "", []string{"echo 1;"}, ""},
		{"php -d", []string{"php", "-d", "memory_limit=1G", "job.php"}, []string{"php", "-d", "memory_limit=1G", "<script>"}, kindFile, "job.php", nil, ""},
		{"Rscript -e", []string{"Rscript", "-e", "1+1"}, []string{"Rscript", "-e", "<inline>"}, kindInline, "", []string{"1+1"}, ""},
		{"Rscript file", []string{"Rscript", "--vanilla", "job.R"}, []string{"Rscript", "--vanilla", "<script>"}, kindFile, "job.R", nil, ""},
		// java
		{"java -jar", []string{"java", "-Xmx1g", "-jar", "app.jar", "x"}, []string{"java", "-Xmx1g", "-jar", "<script>", "x"}, kindFile, "app.jar", nil, ""},
		{"java main class", []string{"java", "-cp", "lib", "com.example.Main", "x"}, []string{"java", "-cp", "lib", "<module>", "x"}, kindModule, "", nil, "com.example.Main"},
		{"java source file", []string{"java", "Main.java"}, []string{"java", "<script>"}, kindFile, "Main.java", nil, ""},
		{"java -m", []string{"java", "-m", "mod/cls", "x"}, []string{"java", "-m", "<module>", "x"}, kindModule, "", nil, "mod/cls"},
		// not interpreters, and families found through the resolved name
		{"not an interpreter", []string{"tool", "job.py"}, []string{"tool", "job.py"}, kindNone, "", nil, ""},
		{"family by resolved name", []string{"py", "job.py"}, []string{"py", "<script>"}, kindFile, "job.py", nil, ""},
		// env
		{"env", []string{"env", "python3", "job.py"}, []string{"python3", "<script>"}, kindFile, "job.py", nil, ""},
		{"env -S", []string{"env", "-S", "python3 -u", "job.py"}, []string{"python3", "-u", "<script>"}, kindFile, "job.py", nil, ""},
		{"env -- options", []string{"env", "-u", "X", "-C", "/", "--", "python3", "job.py"}, []string{"python3", "<script>"}, kindFile, "job.py", nil, ""},
		{"env env", []string{"env", "A=1", "env", "B=2", "sh", "-c", "x"}, []string{"sh", "-c", "<inline>"}, kindInline, "", []string{"x"}, ""},
		{"env alone", []string{"env"}, []string{"env"}, kindNone, "", nil, ""},
		{"env --version", []string{"env", "--version"}, []string{"env", "--version"}, kindNone, "", nil, ""},
		{"env unknown option", []string{"env", "-Z", "python3"}, []string{"env", "-Z", "python3"}, kindNone, "", nil, ""},
	}
	f := newFixture(t)
	for _, rel := range []string{"job.pl", "job.rb", "app.js", "setup.js", "job.php", "job.R", "app.jar", "Main.java", "bin/helper.pl"} {
		f.write(rel, "// "+rel+"\n")
	}
	must(t, os.Symlink("python3.12", f.path("bin/py")))
	s := f.signer(SignerConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Argv: tt.argv, Dir: f.dir, Env: []string{"PATH=" + f.bin}}
			sig := f.sign(s, spec)
			if !slices.Equal(sig.Argv, tt.wantArgv) {
				t.Errorf("Argv = %q, want %q", sig.Argv, tt.wantArgv)
			}
			if sig.ScriptKind != tt.kind {
				t.Errorf("ScriptKind = %q, want %q", sig.ScriptKind, tt.kind)
			}
			wantScript := ""
			if tt.script != "" {
				wantScript = f.path(tt.script)
			}
			if sig.Script != wantScript {
				t.Errorf("Script = %q, want %q", sig.Script, wantScript)
			}
			// The inline text and module are hashed into Code.
			inv, err := s.resolve(tt.argv, f.dir, envSet{"PATH": f.bin}, s.newBudget())
			must(t, err)
			if !slices.Equal(inv.code.inline, tt.inline) || inv.code.module != tt.module {
				t.Errorf("inline %q module %q, want %q %q", inv.code.inline, inv.code.module, tt.inline, tt.module)
			}
		})
	}
}

func TestEnvUnwrapEnvironment(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{EnvDeny: []string{}})
	base := []string{"PATH=" + f.bin, "A=1", "B=2"}
	tests := []struct {
		name string
		argv []string
		want []string
	}{
		{"no env", []string{"tool"}, []string{"A", "B", "PATH"}},
		{"assignments", []string{"env", "C=3", "A=", "tool"}, []string{"A", "B", "C", "PATH"}},
		{"unset", []string{"env", "-u", "A", "--unset=B", "tool"}, []string{"PATH"}},
		{"unset bundled", []string{"env", "-uA", "tool"}, []string{"B", "PATH"}},
		{"ignore environment", []string{"env", "-i", "PATH=" + f.bin, "Z=1", "tool"}, []string{"PATH", "Z"}},
		{"lone dash", []string{"env", "-", "PATH=" + f.bin, "tool"}, []string{"PATH"}},
		{"-S with assignment", []string{"env", "-S", "Q=1 tool"}, []string{"A", "B", "PATH", "Q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := f.sign(s, Spec{Argv: tt.argv, Env: base})
			if !slices.Equal(sig.EnvKeys, tt.want) {
				t.Errorf("EnvKeys = %q, want %q", sig.EnvKeys, tt.want)
			}
			if sig.Program != filepath.Join(f.bin, "tool") {
				t.Errorf("Program = %q", sig.Program)
			}
		})
	}
	// The value set through env enters the hash.
	one := f.sign(s, Spec{Argv: []string{"env", "C=1", "tool"}, Env: base})
	two := f.sign(s, Spec{Argv: []string{"env", "C=2", "tool"}, Env: base})
	direct := f.sign(s, Spec{Argv: []string{"tool"}, Env: append(base, "C=1")})
	if one.Hash == two.Hash || one.Hash != direct.Hash {
		t.Errorf("env C=1 %s, env C=2 %s, C=1 in Spec.Env %s: want 1st = 3rd ≠ 2nd", one.Hash, two.Hash, direct.Hash)
	}
}

func TestParseShebang(t *testing.T) {
	tests := []struct {
		head        string
		interp, opt string
		ok          bool
	}{
		{"#!/bin/sh\necho", "/bin/sh", "", true},
		{"#! /usr/bin/env  python3 -u \nx", "/usr/bin/env", "python3 -u", true},
		{"#!/bin/bash\t-e\n", "/bin/bash", "-e", true},
		{"#!/usr/bin/env -S python3 -X dev\n", "/usr/bin/env", "-S python3 -X dev", true},
		{"#!/no/newline", "/no/newline", "", true},
		{"#!/bin/sh\r\n", "/bin/sh\r", "", true}, // as Linux: "bad interpreter"
		{"#!\n", "", "", false},
		{"#!   \n", "", "", false},
		{"#", "", "", false},
		{"\x7fELF", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		interp, opt, ok := parseShebang([]byte(tt.head))
		if interp != tt.interp || opt != tt.opt || ok != tt.ok {
			t.Errorf("parseShebang(%q) = %q, %q, %v; want %q, %q, %v", tt.head, interp, opt, ok, tt.interp, tt.opt, tt.ok)
		}
	}
}

func TestSplitEnvString(t *testing.T) {
	env := envSet{"HOME": "/home/ana", "EMPTY": ""}
	tests := []struct {
		in   string
		want []string
	}{
		{"python3 -u", []string{"python3", "-u"}},
		{"  a \t b\nc ", []string{"a", "b", "c"}},
		{`'a b' "c d"`, []string{"a b", "c d"}},
		{`'it\'s' "say \"hi\""`, []string{"it's", `say "hi"`}},
		{`a\_b "c\_d"`, []string{"a", "b", "c d"}},
		{`a\tb`, []string{"a\tb"}},
		{`x ${HOME}/bin ${EMPTY}y`, []string{"x", "/home/ana/bin", "y"}},
		{`a #comment b`, []string{"a"}},
		{`a#b`, []string{"a#b"}},
		{`a \c b`, []string{"a"}},
		{`''`, []string{""}},
		{`${UNCLOSED`, []string{"${UNCLOSED"}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := splitEnvString(tt.in, env); !slices.Equal(got, tt.want) {
			t.Errorf("splitEnvString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
