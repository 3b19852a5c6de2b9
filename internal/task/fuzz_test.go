package task

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// FuzzSign signs random command lines and environments against a fixture
// with stand-in interpreters, env and #! scripts: Sign must not panic, must
// fail only with this package's errors, and must be deterministic.
func FuzzSign(f *testing.F) {
	fx := newFixture(f)
	fx.exe("shebang.py", "#!"+fx.bin+"/env -S python3 -u\nprint(1)\n")
	fx.exe("loop", "#!"+fx.path("loop")+"\n")
	fx.write("d/x.csv", "a,b\n1,2\n")
	s := fx.signer(SignerConfig{})
	seeds := []struct{ argv, env string }{
		{"tool\x00--in=a.csv\x00-n\x003", "HOME=/h\x00TERM=x"},
		{"python3\x00-uc\x00print(1)\x00a.csv", "PATH=" + fx.bin},
		{"env\x00-i\x00PATH=" + fx.bin + "\x00-S\x00python3 -m json.tool\x00a.csv", ""},
		{"env\x00-S\x00'a b' \"c\\\"\" ${HOME} \\c x\x00tool", "HOME=/h"},
		{"./shebang.py\x00d", "PATH=" + fx.bin},
		{"./loop", ""},
		{"sh\x00-euo\x00pipefail\x00-c", ""},
		{"java\x00-cp\x00x\x00-jar", ""},
		{"perl\x00-S\x00-e", "PATH="},
		{"bash\x00+O\x00--rcfile", "=bad"},
		{"", ""},
	}
	for i, sd := range seeds {
		f.Add(sd.argv, sd.env, uint8(i))
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	inputs := []string{"a.csv", "b.csv", "d", "job.py"}
	f.Fuzz(func(t *testing.T, argv, env string, in uint8) {
		spec := Spec{Argv: strings.Split(argv, "\x00"), Dir: fx.dir}
		if argv == "" {
			spec.Argv = nil
		}
		if env != "" {
			spec.Env = strings.Split(env, "\x00")
		}
		for i, p := range inputs {
			if in&(1<<i) != 0 {
				spec.Inputs = append(spec.Inputs, p)
			}
		}
		sig, err := s.Sign(spec)
		if err != nil {
			for _, kind := range []error{ErrSpec, ErrProgramNotFound, ErrScript, ErrInput} {
				if errors.Is(err, kind) {
					return
				}
			}
			t.Fatalf("Sign(%q, %q): error of no kind: %v", spec.Argv, spec.Env, err)
		}
		if !hex64.MatchString(sig.Hash) || !hex64.MatchString(sig.Code) {
			t.Fatalf("Sign(%q): hash %q code %q", spec.Argv, sig.Hash, sig.Code)
		}
		again, err := s.Sign(spec)
		if err != nil || again.Hash != sig.Hash {
			t.Fatalf("Sign(%q) not deterministic: %s then %s, %v", spec.Argv, sig.Hash, again.Hash, err)
		}
	})
}

// FuzzSniffType types random file heads: no panic, and a type name that fits
// in a placeholder.
func FuzzSniffType(f *testing.F) {
	for _, s := range []string{"", "a,b\n1,2\n", "{\"a\":1}\n{\"a\":2}\n", "\x1f\x8b\x08\x00", "PAR1", "PK\x03\x04", "\"a\nb", "\xef\xbb\xbf{"} {
		f.Add("x.csv.gz", []byte(s), int64(len(s)))
	}
	typeRE := regexp.MustCompile(`^[a-z0-9][a-z0-9.+_-]*$`)
	f.Fuzz(func(t *testing.T, name string, head []byte, size int64) {
		if size < int64(len(head)) {
			size = int64(len(head))
		}
		typ := sniffType(name, head, size)
		if !typeRE.MatchString(typ) || strings.Count(typ, "+") > 1 {
			t.Fatalf("sniffType(%q, %q, %d) = %q", name, head, size, typ)
		}
	})
}

// FuzzParseShebang reads random #! lines: the interpreter is never empty
// when ok, and holds no space, tab or newline.
func FuzzParseShebang(f *testing.F) {
	for _, s := range []string{"#!/bin/sh\n", "#! /usr/bin/env -S a b\n", "#!\t/x\ty\n", "#!", "#!\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		interp, opt, ok := parseShebang(head)
		if ok && (interp == "" || strings.ContainsAny(interp, " \t\n")) {
			t.Fatalf("parseShebang(%q) = %q, %q", head, interp, opt)
		}
		if strings.Contains(opt, "\n") {
			t.Fatalf("parseShebang(%q): option %q spans lines", head, opt)
		}
	})
}

// FuzzSplitEnvString splits random env -S strings: no panic, and words
// without quoting or escapes come back as strings.Fields would give them.
func FuzzSplitEnvString(f *testing.F) {
	for _, s := range []string{"python3 -u", `'a b' "c\"d" \_ \c`, "${HOME}x ${", "#c", `\`} {
		f.Add(s)
	}
	env := envSet{"HOME": "/h"}
	f.Fuzz(func(t *testing.T, s string) {
		words := splitEnvString(s, env)
		if !strings.ContainsAny(s, "'\"\\#$") && strings.IndexFunc(s, func(r rune) bool { return r == '\v' || r == '\f' || r == '\r' }) < 0 {
			if want := strings.Fields(s); !equalStrings(words, want) {
				t.Fatalf("splitEnvString(%q) = %q, want %q", s, words, want)
			}
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
