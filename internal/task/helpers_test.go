package task

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fixture is a scratch tree for signing: dir holds scripts and data, bin
// holds stand-in programs and is the Signer's PATH. The stand-ins are not
// real programs (only their bytes and names matter to a Signer), so the
// tests do not depend on what is installed.
type fixture struct {
	t   testing.TB
	dir string
	bin string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, bin: filepath.Join(dir, "bin")}
	for _, name := range []string{"tool", "python3", "python3.12", "sh", "bash", "node", "perl", "ruby", "php", "Rscript", "java", "env"} {
		f.exe("bin/"+name, "stand-in for "+name+"\n")
	}
	f.write("job.py", "print('hello')\n")
	f.write("run.sh", "echo hello\n")
	f.write("a.csv", csvOf(45, 1))
	f.write("b.csv", csvOf(60, 2)) // same bucket (2^10) as a.csv
	f.write("big.csv", csvOf(140, 3))
	return f
}

// csvOf is a CSV of n rows, deterministic in seed, 15–17 bytes a row.
func csvOf(n, seed int) string {
	s := "id,value\n"
	for i := range n {
		s += string(rune('a'+(i+seed)%26)) + "," + time.Duration((i+1)*seed*7919).String() + "\n"
	}
	return s
}

// write writes content to rel under the fixture and returns its path.
func (f *fixture) write(rel, content string) string {
	f.t.Helper()
	return f.writeMode(rel, content, 0o644)
}

// exe writes an executable file.
func (f *fixture) exe(rel, content string) string {
	f.t.Helper()
	return f.writeMode(rel, content, 0o755)
}

func (f *fixture) writeMode(rel, content string, mode os.FileMode) string {
	f.t.Helper()
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) path(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(f.dir, rel)
}

// signer returns a Signer whose PATH is the fixture's bin.
func (f *fixture) signer(cfg SignerConfig) *Signer {
	f.t.Helper()
	if cfg.PATH == "" {
		cfg.PATH = f.bin
	}
	s, err := NewSigner(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// sign signs spec with Dir defaulting to the fixture.
func (f *fixture) sign(s *Signer, spec Spec) Signature {
	f.t.Helper()
	if spec.Dir == "" {
		spec.Dir = f.dir
	}
	sig, err := s.Sign(spec)
	if err != nil {
		f.t.Fatalf("Sign(%q): %v", spec.Argv, err)
	}
	return sig
}
