package task

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated examples in docs/signature.md")

const signatureDoc = "../../docs/signature.md"

// docExamples are the worked examples of docs/signature.md, signed over
// testdata/example. Their hashes depend only on the bytes of those files
// and on this package's definition, so they are the same on every machine.
var docExamples = []struct {
	name string
	spec Spec
}{
	{"basic", Spec{
		Argv:   []string{"./bin/tool", "--in=data/day1.csv", "-n", "3"},
		Inputs: []string{"data/day1.csv"},
		Env:    []string{"HOME=/home/ana", "LANG=C.UTF-8", "TERM=xterm-256color", "PWD=/home/ana/work", "SHLVL=2"},
	}},
	{"other-day", Spec{
		Argv:   []string{"./bin/tool", "--in=data/day2.csv", "-n", "3"},
		Inputs: []string{"data/day2.csv"},
		Env:    []string{"HOME=/home/ana", "LANG=C.UTF-8", "TERM=screen", "PWD=/tmp", "SHLVL=1"},
	}},
	{"year", Spec{
		Argv:   []string{"./bin/tool", "--in=data/year.csv", "-n", "3"},
		Inputs: []string{"data/year.csv"},
		Env:    []string{"HOME=/home/ana", "LANG=C.UTF-8", "TERM=xterm-256color", "PWD=/home/ana/work", "SHLVL=2"},
	}},
	{"lang", Spec{
		Argv:   []string{"./bin/tool", "--in=data/day1.csv", "-n", "3"},
		Inputs: []string{"data/day1.csv"},
		Env:    []string{"HOME=/home/ana", "LANG=de_DE.UTF-8", "TERM=xterm-256color", "PWD=/home/ana/work", "SHLVL=2"},
	}},
	{"python", Spec{
		Argv:   []string{"./bin/python3", "-u", "job.py", "data/day1.csv"},
		Inputs: []string{"data/day1.csv"},
		Env:    []string{"HOME=/home/ana", "PYTHONHASHSEED=0"},
	}},
	{"directory", Spec{
		Argv:   []string{"./bin/tool", "--parts", "data/parts"},
		Inputs: []string{"data/parts"},
	}},
}

// TestDocExamples keeps the generated blocks of docs/signature.md true, and
// checks the claims the document makes about them. Regenerate with
//
//	go test ./internal/task -run TestDocExamples -update
func TestDocExamples(t *testing.T) {
	s, err := NewSigner(SignerConfig{PATH: "/nonexistent"})
	must(t, err)
	dir, err := filepath.Abs("testdata/example")
	must(t, err)
	sigs := map[string]Signature{}
	blocks := map[string]string{}
	for _, ex := range docExamples {
		spec := ex.spec
		spec.Dir = dir
		sig, err := s.Sign(spec)
		if err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		env, _ := parseEnv(spec.Env)
		inv, err := s.resolve(spec.Argv, dir, env, s.newBudget())
		must(t, err)
		sigs[ex.name] = sig
		blocks[ex.name] = renderExample(spec, sig, inv)
	}

	// The document's claims.
	claims := []struct {
		a, b string
		same bool
	}{
		{"basic", "other-day", true}, {"basic", "year", false}, {"basic", "lang", false},
	}
	for _, c := range claims {
		if (sigs[c.a].Hash == sigs[c.b].Hash) != c.same {
			t.Errorf("%s vs %s: same = %v, the document says %v", c.a, c.b, !c.same, c.same)
		}
	}
	if sigs["basic"].Code != sigs["year"].Code || sigs["basic"].Code == sigs["python"].Code {
		t.Error("Code: want basic = year ≠ python")
	}

	doc, err := os.ReadFile(signatureDoc)
	must(t, err)
	text := string(doc)
	re := regexp.MustCompile("(?s)(<!-- example ([a-z-]+) -->\n)(.*?)(<!-- /example -->)")
	seen := map[string]bool{}
	var mismatch []string
	out := re.ReplaceAllStringFunc(text, func(m string) string {
		sub := re.FindStringSubmatch(m)
		name := sub[2]
		seen[name] = true
		want, ok := blocks[name]
		if !ok {
			t.Errorf("docs/signature.md has an example %q that the test does not define", name)
			return m
		}
		if sub[3] != want {
			mismatch = append(mismatch, name)
		}
		return sub[1] + want + sub[4]
	})
	for _, ex := range docExamples {
		if !seen[ex.name] {
			t.Errorf("docs/signature.md lacks <!-- example %s --> … <!-- /example -->", ex.name)
		}
	}
	if *update {
		must(t, os.WriteFile(signatureDoc, []byte(out), 0o644))
		return
	}
	if len(mismatch) > 0 {
		t.Errorf("docs/signature.md examples %q are stale; run: go test ./internal/task -run TestDocExamples -update", mismatch)
	}
}

func renderExample(spec Spec, sig Signature, inv *invocation) string {
	var b strings.Builder
	b.WriteString("```text\n")
	fmt.Fprintf(&b, "Spec.Argv    %s\n", strings.Join(spec.Argv, " "))
	fmt.Fprintf(&b, "Spec.Inputs  %s\n", strings.Join(spec.Inputs, " "))
	if len(spec.Env) > 0 {
		fmt.Fprintf(&b, "Spec.Env     %s\n", strings.Join(spec.Env, " "))
	}
	fmt.Fprintf(&b, "\nprogram      sha256 %s  (%s)\n", hex.EncodeToString(inv.code.program[:]), relExample(sig.Program))
	if sig.Script != "" {
		fmt.Fprintf(&b, "script       sha256 %s  (%s)\n", hex.EncodeToString(inv.code.script), relExample(sig.Script))
	}
	fmt.Fprintf(&b, "Code         %s\n", sig.Code)
	fmt.Fprintf(&b, "Argv         %s\n", strings.Join(sig.Argv, " "))
	for i, in := range sig.Inputs {
		label := ""
		if i == 0 {
			label = "Inputs"
		}
		files := ""
		if in.Files > 0 {
			files = fmt.Sprintf(", %d files (2^%d)", in.Files, filesBucket(in))
		}
		fmt.Fprintf(&b, "%-12s %s, 2^%d (%d bytes%s)\n", label, in.Type, in.Bucket, in.Size, files)
	}
	keys := strings.Join(sig.EnvKeys, " ")
	if keys == "" {
		keys = "(none)"
	}
	fmt.Fprintf(&b, "EnvKeys      %s\n", keys)
	fmt.Fprintf(&b, "Hash         %s\n", sig.Hash)
	b.WriteString("```\n")
	return b.String()
}

func relExample(p string) string {
	if i := strings.Index(p, "testdata/example/"); i >= 0 {
		return p[i+len("testdata/example/"):]
	}
	return p
}
