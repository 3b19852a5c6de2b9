package task

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// baseSpec is the spec the change table starts from: a program in PATH,
// one declared input passed as --in=PATH, and an environment with volatile
// and non-volatile variables.
func baseSpec() Spec {
	return Spec{
		Argv:   []string{"tool", "--in=a.csv", "-n", "3"},
		Inputs: []string{"a.csv"},
		Env:    []string{"HOME=/home/ana", "LANG=C.UTF-8", "PATH=/usr/bin:/bin", "TERM=xterm", "PWD=/home/ana", "SHLVL=1"},
		Limits: Limits{CPUCores: 1},
	}
}

func TestSignatureChanges(t *testing.T) {
	pyJob := func(f *fixture, s *Spec) { s.Argv = []string{"python3", "job.py", "a.csv"} }
	tests := []struct {
		name   string
		before func(f *fixture, s *Spec) // optional: adjust the base spec
		change func(f *fixture, s *Spec)
		same   bool
	}{
		{name: "identical spec", change: func(*fixture, *Spec) {}, same: true},
		{name: "binary content changed", change: func(f *fixture, s *Spec) { f.exe("bin/tool", "tool v2\n") }},
		{name: "argument changed", change: func(f *fixture, s *Spec) { s.Argv[3] = "4" }},
		{name: "argument added", change: func(f *fixture, s *Spec) { s.Argv = append(s.Argv, "-v") }},
		{name: "program by absolute path", change: func(f *fixture, s *Spec) { s.Argv[0] = filepath.Join(f.bin, "tool") }, same: true},
		{name: "program by relative path", change: func(f *fixture, s *Spec) { s.Argv[0] = "./bin/tool" }, same: true},
		{
			name: "program moved, same bytes and name", same: true,
			change: func(f *fixture, s *Spec) { s.Argv[0] = f.exe("elsewhere/tool", "stand-in for tool\n") },
		},
		{
			name:   "program copied under another name",
			change: func(f *fixture, s *Spec) { s.Argv[0] = f.exe("bin/tool2", "stand-in for tool\n") },
		},
		{
			name: "program through a symlink of the same name", same: true,
			change: func(f *fixture, s *Spec) {
				must(t, os.MkdirAll(f.path("links"), 0o755))
				must(t, os.Symlink(filepath.Join(f.bin, "tool"), f.path("links/tool")))
				s.Argv[0] = f.path("links/tool")
			},
		},
		{name: "input: other file, same type and bucket", change: func(f *fixture, s *Spec) { s.Argv[1], s.Inputs[0] = "--in=b.csv", "b.csv" }, same: true},
		{
			name: "input renamed", same: true,
			change: func(f *fixture, s *Spec) {
				must(t, os.Rename(f.path("a.csv"), f.path("renamed.csv")))
				s.Argv[1], s.Inputs[0] = "--in=renamed.csv", "renamed.csv"
			},
		},
		{
			name: "input renamed to another extension, same content", same: true,
			change: func(f *fixture, s *Spec) {
				must(t, os.Rename(f.path("a.csv"), f.path("a.dat")))
				s.Argv[1], s.Inputs[0] = "--in=a.dat", "a.dat"
			},
		},
		{name: "input: bigger bucket", change: func(f *fixture, s *Spec) { s.Argv[1], s.Inputs[0] = "--in=big.csv", "big.csv" }},
		{
			name: "input: same bucket, other type",
			change: func(f *fixture, s *Spec) {
				f.write("a.json", `{"rows": [`+strings.Repeat(`1,`, 300)+`1]}`)
				s.Argv[1], s.Inputs[0] = "--in=a.json", "a.json"
			},
		},
		{name: "input given by absolute path", change: func(f *fixture, s *Spec) { s.Argv[1], s.Inputs[0] = "--in="+f.path("a.csv"), f.path("a.csv") }, same: true},
		{name: "input argument as ./path", change: func(f *fixture, s *Spec) { s.Argv[1] = "--in=./a.csv" }, same: true},
		{name: "input not declared", change: func(f *fixture, s *Spec) { s.Inputs = nil }},
		{name: "input declared twice", change: func(f *fixture, s *Spec) { s.Inputs = append(s.Inputs, "a.csv") }},
		{
			name: "input as a separate argument, other file", same: true,
			before: func(f *fixture, s *Spec) { s.Argv = []string{"tool", "-i", "a.csv"} },
			change: func(f *fixture, s *Spec) { s.Argv[2], s.Inputs[0] = "b.csv", "b.csv" },
		},
		{name: "TERM changed", change: func(f *fixture, s *Spec) { s.Env = setEnv(s.Env, "TERM", "screen-256color") }, same: true},
		{name: "PWD, OLDPWD, SHLVL, _ changed", change: func(f *fixture, s *Spec) {
			s.Env = setEnv(s.Env, "PWD", "/tmp")
			s.Env = setEnv(s.Env, "OLDPWD", "/")
			s.Env = setEnv(s.Env, "SHLVL", "3")
			s.Env = setEnv(s.Env, "_", "/usr/bin/prescient")
		}, same: true},
		{name: "SSH session variables added", change: func(f *fixture, s *Spec) {
			s.Env = append(s.Env, "SSH_CONNECTION=10.0.0.1 5000 10.0.0.2 22", "SSH_TTY=/dev/pts/3", "DISPLAY=:0")
		}, same: true},
		{name: "USER and LOGNAME changed", change: func(f *fixture, s *Spec) { s.Env = append(s.Env, "USER=bob", "LOGNAME=bob") }, same: true},
		{name: "PRESCIENT_ variable added", change: func(f *fixture, s *Spec) { s.Env = append(s.Env, "PRESCIENT_TASK_ID=42") }, same: true},
		{name: "LANG changed", change: func(f *fixture, s *Spec) { s.Env = setEnv(s.Env, "LANG", "de_DE.UTF-8") }},
		{name: "HOME changed", change: func(f *fixture, s *Spec) { s.Env = setEnv(s.Env, "HOME", "/home/bob") }},
		{name: "application variable added", change: func(f *fixture, s *Spec) { s.Env = append(s.Env, "OMP_NUM_THREADS=4") }},
		{name: "application variable set to empty", change: func(f *fixture, s *Spec) { s.Env = append(s.Env, "OMP_NUM_THREADS=") }},
		{name: "environment reordered", change: func(f *fixture, s *Spec) { slices.Reverse(s.Env) }, same: true},
		{name: "duplicate variable, last wins", change: func(f *fixture, s *Spec) {
			s.Env = append([]string{"LANG=fr_FR.UTF-8"}, s.Env...)
		}, same: true},
		{name: "working directory changed, absolute paths", change: func(f *fixture, s *Spec) {
			s.Argv[1], s.Inputs[0] = "--in="+f.path("a.csv"), f.path("a.csv")
			s.Argv[0] = filepath.Join(f.bin, "tool")
			s.Dir = t.TempDir()
		}, same: true},
		{name: "working directory changed, relative paths to similar files", change: func(f *fixture, s *Spec) {
			f.write("other/a.csv", csvOf(45, 9))
			s.Dir = f.path("other")
		}, same: true},
		{name: "limits changed", change: func(f *fixture, s *Spec) { s.Limits = Limits{CPUCores: 4, MemoryMB: 512} }, same: true},

		// Interpreters.
		{name: "script content changed", before: pyJob, change: func(f *fixture, s *Spec) { f.write("job.py", "print('bye')\n") }},
		{name: "script moved, same content", before: pyJob, change: func(f *fixture, s *Spec) {
			f.write("jobs/old/job_v1.py", "print('hello')\n")
			s.Argv[1] = f.path("jobs/old/job_v1.py")
		}, same: true},
		{name: "interpreter binary changed", before: pyJob, change: func(f *fixture, s *Spec) { f.exe("bin/python3", "python 3.13\n") }},
		{name: "interpreter option added", before: pyJob, change: func(f *fixture, s *Spec) { s.Argv = []string{"python3", "-u", "job.py", "a.csv"} }},
		{name: "versioned interpreter name", before: pyJob, change: func(f *fixture, s *Spec) { s.Argv[0] = "python3.12" }},
		{name: "env prefix", before: pyJob, change: func(f *fixture, s *Spec) { s.Argv = append([]string{"env"}, s.Argv...) }, same: true},
		{name: "env prefix setting a volatile variable", before: pyJob, change: func(f *fixture, s *Spec) {
			s.Argv = append([]string{"env", "TERM=dumb"}, s.Argv...)
		}, same: true},
		{name: "env prefix setting a variable", before: pyJob, change: func(f *fixture, s *Spec) {
			s.Argv = append([]string{"env", "OMP_NUM_THREADS=2"}, s.Argv...)
		}},
		{name: "sh -c, other command", before: func(f *fixture, s *Spec) { s.Argv = []string{"sh", "-c", "tool a.csv"} },
			change: func(f *fixture, s *Spec) { s.Argv[2] = "tool b.csv" }},
		{name: "python -m, other module", before: func(f *fixture, s *Spec) { s.Argv = []string{"python3", "-m", "http.server"} },
			change: func(f *fixture, s *Spec) { s.Argv[2] = "json.tool" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.signer(SignerConfig{})
			spec := baseSpec()
			spec.Env = setEnv(spec.Env, "PATH", f.bin)
			if tt.before != nil {
				tt.before(f, &spec)
			}
			before := f.sign(s, spec)
			spec2 := cloneSpec(spec)
			tt.change(f, &spec2)
			after := f.sign(s, spec2)
			if (before.Hash == after.Hash) != tt.same {
				t.Errorf("same signature = %v, want %v\nbefore: %+v\nafter:  %+v", before.Hash == after.Hash, tt.same, before, after)
			}
		})
	}
}

// TestSignatureFixtureBuckets guards the change table's premise.
func TestSignatureFixtureBuckets(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{})
	sig := f.sign(s, Spec{Argv: []string{"tool"}, Inputs: []string{"a.csv", "b.csv", "big.csv"}})
	a, b, big := sig.Inputs[0], sig.Inputs[1], sig.Inputs[2]
	if a.Type != "csv" || b.Type != "csv" || big.Type != "csv" {
		t.Fatalf("types %q %q %q, want csv", a.Type, b.Type, big.Type)
	}
	if a.Bucket != b.Bucket || a.Size == b.Size || a.Bucket == big.Bucket {
		t.Fatalf("fixture inputs a=%+v b=%+v big=%+v: want a, b in one bucket with different sizes, big in another", a, b, big)
	}
	if sig.InputBytes != a.Size+b.Size+big.Size {
		t.Errorf("InputBytes = %d, want %d", sig.InputBytes, a.Size+b.Size+big.Size)
	}
}

func TestSignFields(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{})
	spec := baseSpec()
	spec.Dir = f.dir
	sig, err := s.Sign(spec)
	if err != nil {
		t.Fatal(err)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	if !hex64.MatchString(sig.Hash) || !hex64.MatchString(sig.Code) || sig.Hash == sig.Code {
		t.Errorf("Hash %q, Code %q: want two different 64-digit hex strings", sig.Hash, sig.Code)
	}
	if want := filepath.Join(f.bin, "tool"); sig.Program != want {
		t.Errorf("Program = %q, want %q", sig.Program, want)
	}
	if sig.Script != "" || sig.ScriptKind != "" {
		t.Errorf("Script = %q (%q), want none", sig.Script, sig.ScriptKind)
	}
	in := sig.Inputs[0]
	wantArgv := []string{"tool", "--in=<input:csv:2^" + itoa(in.Bucket) + ">", "-n", "3"}
	if !slices.Equal(sig.Argv, wantArgv) {
		t.Errorf("Argv = %q, want %q", sig.Argv, wantArgv)
	}
	if want := []string{"HOME", "LANG", "PATH"}; !slices.Equal(sig.EnvKeys, want) {
		t.Errorf("EnvKeys = %q, want %q", sig.EnvKeys, want)
	}
	if in.Path != f.path("a.csv") || in.Size != sig.InputBytes || in.Files != 0 {
		t.Errorf("input = %+v, InputBytes %d", in, sig.InputBytes)
	}
}

func TestSignEnvConfig(t *testing.T) {
	env := []string{"HOME=/h", "LANG=C", "TERM=xterm", "OMP_NUM_THREADS=4", "MY_RUN_ID=7", "SSH_TTY=/dev/pts/1"}
	tests := []struct {
		name string
		cfg  SignerConfig
		want []string
	}{
		{"defaults", SignerConfig{}, []string{"HOME", "LANG", "MY_RUN_ID", "OMP_NUM_THREADS"}},
		{"extra deny", SignerConfig{EnvDeny: append(DefaultEnvDeny(), "MY_*")}, []string{"HOME", "LANG", "OMP_NUM_THREADS"}},
		{"deny nothing", SignerConfig{EnvDeny: []string{}}, []string{"HOME", "LANG", "MY_RUN_ID", "OMP_NUM_THREADS", "SSH_TTY", "TERM"}},
		{"allow list", SignerConfig{EnvAllow: []string{"OMP_*", "LANG", "TERM"}}, []string{"LANG", "OMP_NUM_THREADS"}}, // deny wins over allow: TERM
		{"allow with class", SignerConfig{EnvAllow: []string{"[HL]*"}, EnvDeny: []string{}}, []string{"HOME", "LANG"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			sig := f.sign(f.signer(tt.cfg), Spec{Argv: []string{"tool"}, Env: env})
			if !slices.Equal(sig.EnvKeys, tt.want) {
				t.Errorf("EnvKeys = %q, want %q", sig.EnvKeys, tt.want)
			}
		})
	}
}

func TestSignerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SignerConfig
		ok   bool
	}{
		{"zero", SignerConfig{}, true},
		{"bad allow pattern", SignerConfig{EnvAllow: []string{"A["}}, false},
		{"bad deny pattern", SignerConfig{EnvDeny: []string{"[z-a"}}, false},
		{"empty pattern", SignerConfig{EnvDeny: []string{""}}, false},
		{"negative cache", SignerConfig{CacheEntries: -1}, false},
		{"negative sniff", SignerConfig{MaxSniffFiles: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSigner(tt.cfg)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Errorf("NewSigner: %v, want ok=%v (ErrConfig otherwise)", err, tt.ok)
			}
		})
	}
	c := SignerConfig{PATH: "/x"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.PATH != "/x" || c.CacheEntries != DefaultCacheEntries || c.MaxSniffFiles != DefaultMaxSniffFiles || c.Logger == nil || len(c.EnvDeny) == 0 {
		t.Errorf("defaults not filled: %+v", c)
	}
	deny := DefaultEnvDeny()
	deny[0] = "CHANGED"
	if DefaultEnvDeny()[0] == "CHANGED" {
		t.Error("DefaultEnvDeny shares its slice")
	}
}

func TestSignErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture) Spec
		is    []error
		msg   string // regexp
	}{
		{"empty argv", func(*fixture) Spec { return Spec{} }, []error{ErrSpec}, `^argv is empty$`},
		{"program not in PATH", func(*fixture) Spec { return Spec{Argv: []string{"nope"}} },
			[]error{ErrProgramNotFound, fs.ErrNotExist}, `^program "nope" not found in PATH$`},
		{"empty program", func(*fixture) Spec { return Spec{Argv: []string{""}} }, []error{ErrProgramNotFound}, `^program "": empty name$`},
		{"missing program path", func(*fixture) Spec { return Spec{Argv: []string{"./nope"}} },
			[]error{ErrProgramNotFound, fs.ErrNotExist}, `^program ".*/nope": no such file or directory$`},
		{"program not executable", func(*fixture) Spec { return Spec{Argv: []string{"./job.py"}} },
			[]error{ErrProgramNotFound, fs.ErrPermission}, `^program ".*/job.py": not executable: permission denied$`},
		{"program is a directory", func(*fixture) Spec { return Spec{Argv: []string{"./bin"}} },
			[]error{ErrProgramNotFound}, `^program ".*/bin": is a directory$`},
		{"non-executable file in PATH is skipped", func(f *fixture) Spec {
			f.write("bin/plain", "x")
			return Spec{Argv: []string{"plain"}}
		}, []error{ErrProgramNotFound}, `^program "plain" not found in PATH$`},
		{"missing input", func(*fixture) Spec { return Spec{Argv: []string{"tool"}, Inputs: []string{"nope.csv"}} },
			[]error{ErrInput, fs.ErrNotExist}, `^input ".*/nope.csv": no such file or directory$`},
		{"input under a file", func(*fixture) Spec { return Spec{Argv: []string{"tool"}, Inputs: []string{"a.csv/x"}} },
			[]error{ErrInput}, `^input ".*/a.csv/x": not a directory$`},
		{"env entry without =", func(*fixture) Spec { return Spec{Argv: []string{"tool"}, Env: []string{"A=1", "JUNK"}} },
			[]error{ErrSpec}, `^env entry "JUNK": want KEY=VALUE$`},
		{"env entry with empty name", func(*fixture) Spec { return Spec{Argv: []string{"tool"}, Env: []string{"=x"}} },
			[]error{ErrSpec}, `^env entry "=x": want KEY=VALUE$`},
		{"#! interpreter missing", func(f *fixture) Spec {
			f.exe("s.sh", "#!/nonexistent/sh\necho\n")
			return Spec{Argv: []string{"./s.sh"}}
		}, []error{ErrProgramNotFound, fs.ErrNotExist}, `^program "/nonexistent/sh": no such file or directory$`},
		{"#! loop", func(f *fixture) Spec {
			p := f.path("loop")
			f.exe("loop", "#!"+p+"\n")
			return Spec{Argv: []string{"./loop"}}
		}, []error{ErrSpec}, `more than 8 levels of env and #! indirection`},
		{"env runs a missing program", func(*fixture) Spec { return Spec{Argv: []string{"env", "A=1", "nope"}} },
			[]error{ErrProgramNotFound}, `^program "nope" not found in PATH$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			spec := tt.setup(f)
			spec.Dir = f.dir
			_, err := f.signer(SignerConfig{}).Sign(spec)
			if err == nil {
				t.Fatal("Sign succeeded, want an error")
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("error %q is not %v", err, want)
				}
			}
			if !regexp.MustCompile(tt.msg).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

// TestSignUnreadable covers the unreadable paths as a non-root user. As
// root it skips (perm_linux_test.go covers root by dropping privileges on one
// thread).
func TestSignUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which can read anything; TestSignUnreadableAsNobody covers this")
	}
	f := newFixture(t)
	f.writeMode("secret.csv", "a,b\n", 0)
	_, err := f.signer(SignerConfig{}).Sign(Spec{Argv: []string{"tool"}, Inputs: []string{"secret.csv"}, Dir: f.dir})
	if !errors.Is(err, ErrInput) || !errors.Is(err, fs.ErrPermission) || !strings.HasSuffix(err.Error(), `secret.csv": permission denied`) {
		t.Errorf("err = %v, want ErrInput, permission denied", err)
	}
}

func TestShebangMatchesExplicit(t *testing.T) {
	tests := []struct {
		name     string
		line     func(f *fixture) string // #! line of the script
		explicit []string                // the same run, spelled out
	}{
		{"absolute interpreter", func(f *fixture) string { return filepath.Join(f.bin, "python3") }, []string{"python3", "job.py", "a.csv"}},
		{"interpreter with option", func(f *fixture) string { return filepath.Join(f.bin, "python3") + " -u" }, []string{"python3", "-u", "job.py", "a.csv"}},
		{"env", func(f *fixture) string { return filepath.Join(f.bin, "env") + " python3" }, []string{"python3", "job.py", "a.csv"}},
		{"env -S", func(f *fixture) string { return filepath.Join(f.bin, "env") + " -S python3 -u" }, []string{"python3", "-u", "job.py", "a.csv"}},
		// tool is no interpreter family, so `tool -f job.py` passes job.py as a
		// plain argument; run through #!, job.py is still known as the script.
		{"not an interpreter family", func(f *fixture) string { return filepath.Join(f.bin, "tool") + " -f" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.signer(SignerConfig{})
			body := "#!" + tt.line(f) + "\nprint('hello')\n"
			f.exe("job.py", body)
			direct := f.sign(s, Spec{Argv: []string{"./job.py", "a.csv"}, Inputs: []string{"a.csv"}})
			if tt.explicit != nil {
				explicit := f.sign(s, Spec{Argv: tt.explicit, Inputs: []string{"a.csv"}})
				if direct.Hash != explicit.Hash {
					t.Errorf("direct %+v\nexplicit %+v\nwant the same signature", direct, explicit)
				}
			}
			if direct.ScriptKind != kindFile || direct.Script != f.path("job.py") {
				t.Errorf("direct: script %q (%q), want %q", direct.Script, direct.ScriptKind, f.path("job.py"))
			}
			// Moving the script keeps the signature.
			f.exe("moved/other.py", body)
			moved := f.sign(s, Spec{Argv: []string{f.path("moved/other.py"), "a.csv"}, Inputs: []string{"a.csv"}})
			if moved.Hash != direct.Hash {
				t.Errorf("moved script: %+v, want %s", moved, direct.Hash)
			}
		})
	}
}

func TestCodeCacheInvalidation(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{})
	// Trust every timestamp: the racy-mtime rule is tested separately.
	s.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
	spec := Spec{Argv: []string{"python3", "job.py"}, Dir: f.dir}
	sig1 := f.sign(s, spec)
	if st := s.CacheStats(); st.Misses != 2 || st.Hits != 0 || st.Entries != 2 {
		t.Fatalf("after first Sign: %+v, want 2 misses (program, script), 2 entries", st)
	}
	if sig := f.sign(s, spec); sig.Hash != sig1.Hash {
		t.Fatal("second Sign differs")
	}
	if st := s.CacheStats(); st.Hits != 2 || st.Misses != 2 {
		t.Fatalf("after second Sign: %+v, want 2 hits", st)
	}

	steps := []struct {
		name   string
		modify func(t *testing.T) // changes job.py
	}{
		{"size changed", func(t *testing.T) { f.write("job.py", "print('hello, world')\n") }},
		{"same size, new content", func(t *testing.T) { f.write("job.py", "print('HELLO, WORLD')\n") }},
		{"same size, mtime set back", func(t *testing.T) {
			fi, err := os.Stat(f.path("job.py"))
			must(t, err)
			f.write("job.py", "print('hello, WORLD')\n")
			must(t, os.Chtimes(f.path("job.py"), fi.ModTime(), fi.ModTime()))
		}},
		{"replaced by rename (new inode)", func(t *testing.T) {
			f.write("job.tmp", "print('HELLO, world')\n")
			must(t, os.Rename(f.path("job.tmp"), f.path("job.py")))
		}},
	}
	prev := sig1
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := s.CacheStats()
			// Let the coarse timestamp clock tick (10 ms at HZ=100), so that
			// the write gets a new mtime/ctime: the racy-timestamp rule that
			// covers same-tick writes is switched off in this test.
			time.Sleep(15 * time.Millisecond)
			st.modify(t)
			sig := f.sign(s, spec)
			if sig.Code == prev.Code || sig.Hash == prev.Hash {
				t.Errorf("signature unchanged after the script changed: %s", sig.Code)
			}
			after := s.CacheStats()
			if after.Misses != before.Misses+1 || after.Hits != before.Hits+1 {
				t.Errorf("cache %+v → %+v: want one miss (script) and one hit (program)", before, after)
			}
			prev = sig
		})
	}
}

func TestCodeCacheRacyFilesNotCached(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{})
	f.exe("bin/fresh", "just written\n")
	spec := Spec{Argv: []string{"fresh"}, Dir: f.dir}
	f.sign(s, spec)
	f.sign(s, spec)
	if st := s.CacheStats(); st.Hits != 0 || st.Entries != 0 {
		t.Errorf("a file modified within %v was cached: %+v", racyWindow, st)
	}
	old := time.Now().Add(-time.Hour)
	s.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
	must(t, os.Chtimes(f.path("bin/fresh"), old, old))
	f.sign(s, spec)
	f.sign(s, spec)
	if st := s.CacheStats(); st.Hits != 1 || st.Entries != 1 {
		t.Errorf("an old file was not cached: %+v", st)
	}
}

func TestCodeCacheBounded(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{CacheEntries: 3})
	s.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
	for i := range 10 {
		name := "p" + itoa(i)
		f.exe("bin/"+name, name)
		f.sign(s, Spec{Argv: []string{name}})
		if st := s.CacheStats(); st.Entries > 3 {
			t.Fatalf("after %d programs: %d entries, want ≤ 3", i+1, st.Entries)
		}
	}
	// The most recent survive; the oldest were evicted.
	before := s.CacheStats()
	f.sign(s, Spec{Argv: []string{"p9"}})
	f.sign(s, Spec{Argv: []string{"p0"}})
	after := s.CacheStats()
	if after.Hits != before.Hits+1 || after.Misses != before.Misses+1 {
		t.Errorf("cache %+v → %+v: want p9 hit, p0 miss", before, after)
	}
}

func TestSignConcurrent(t *testing.T) {
	f := newFixture(t)
	s := f.signer(SignerConfig{CacheEntries: 2})
	s.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
	specs := []Spec{
		{Argv: []string{"python3", "job.py", "a.csv"}, Inputs: []string{"a.csv"}, Dir: f.dir},
		{Argv: []string{"sh", "run.sh"}, Dir: f.dir},
		{Argv: []string{"tool", "b.csv"}, Inputs: []string{"b.csv"}, Dir: f.dir},
	}
	want := make([]string, len(specs))
	for i, sp := range specs {
		want[i] = f.sign(s, sp).Hash
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 60 {
				k := (g + i) % len(specs)
				sig, err := s.Sign(specs[k])
				if err != nil {
					errs <- err
					return
				}
				if sig.Hash != want[k] {
					errs <- errors.New("hash of spec " + itoa(k) + " changed under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCanonicalEncodingIsInjective(t *testing.T) {
	var code [32]byte
	sum := func(argv []canonArg, env []envPair) [32]byte { return signatureDigest(code, argv, nil, env) }
	lit := func(ss ...string) []canonArg {
		out := make([]canonArg, len(ss))
		for i, s := range ss {
			out[i] = canonArg{text: s}
		}
		return out
	}
	pairs := []struct {
		name string
		a, b [32]byte
	}{
		{"argument boundary", sum(lit("ab", "c"), nil), sum(lit("a", "bc"), nil)},
		{"empty argument", sum(lit("a", ""), nil), sum(lit("a"), nil)},
		{"literal vs placeholder", sum(lit("x", "<script>"), nil), sum([]canonArg{{text: "x"}, {placeholder: true, text: "<script>"}}, nil)},
		{"argv vs env", sum(lit("x", "A"), nil), sum(lit("x"), []envPair{{"A", ""}})},
		{"env boundary", sum(nil, []envPair{{"A", "B=C"}}), sum(nil, []envPair{{"A=B", "C"}})},
	}
	for _, p := range pairs {
		if p.a == p.b {
			t.Errorf("%s: two different values encode the same", p.name)
		}
	}
	c1 := codeID{inline: []string{"a", "b"}}
	c2 := codeID{inline: []string{"ab"}}
	c3 := codeID{module: "ab"}
	if c1.digest() == c2.digest() || c2.digest() == c3.digest() {
		t.Error("code encodings collide")
	}
}

func TestSizeBucket(t *testing.T) {
	tests := []struct {
		n    int64
		want int
	}{{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {1024, 10}, {1025, 11}, {1 << 40, 40}, {1<<62 + 1, 63}, {1<<63 - 1, 63}}
	for _, tt := range tests {
		if got := sizeBucket(tt.n); got != tt.want {
			t.Errorf("sizeBucket(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

func TestDirectoryInput(t *testing.T) {
	f := newFixture(t)
	f.write("d/x/1.csv", csvOf(100, 1))
	f.write("d/x/2.csv", csvOf(100, 2))
	f.write("d/notes.txt", "some notes\n")
	f.write("d/empty.dat", "")
	must(t, os.Symlink(f.path("big.csv"), f.path("d/link.csv"))) // not followed
	must(t, os.MkdirAll(f.path("d/sub/empty"), 0o755))
	must(t, os.MkdirAll(f.path("e"), 0o755))
	must(t, os.Symlink(f.path("d"), f.path("dlink"))) // a declared symlink is followed

	s := f.signer(SignerConfig{})
	sig := f.sign(s, Spec{Argv: []string{"tool", "d"}, Inputs: []string{"d", "e", "dlink"}})
	d, e, dl := sig.Inputs[0], sig.Inputs[1], sig.Inputs[2]
	wantSize := int64(len(csvOf(100, 1)) + len(csvOf(100, 2)) + len("some notes\n"))
	if d.Type != "dir:csv" || d.Files != 4 || d.Size != wantSize || d.Bucket != sizeBucket(wantSize) {
		t.Errorf("d = %+v, want dir:csv, 4 files, %d bytes", d, wantSize)
	}
	if e.Type != "dir:empty" || e.Files != 0 || e.Size != 0 {
		t.Errorf("e = %+v, want dir:empty", e)
	}
	if dl.Type != d.Type || dl.Size != d.Size || dl.Files != d.Files || dl.Path != f.path("dlink") {
		t.Errorf("dlink = %+v, want the same as d", dl)
	}
	if sig.Argv[1] != "<input:dir:csv:2^"+itoa(d.Bucket)+">" {
		t.Errorf("Argv = %q", sig.Argv)
	}

	// Typing by extension past MaxSniffFiles: a CSV named .dat is typed
	// "csv" by content, "binary" by extension.
	g := newFixture(t)
	g.write("d/a.dat", csvOf(100, 1))
	sniffAll := g.sign(g.signer(SignerConfig{}), Spec{Argv: []string{"tool"}, Inputs: []string{"d"}})
	g.write("d/0.txt", "x\n") // sorts first, uses the one content sniff
	sniffOne := g.sign(g.signer(SignerConfig{MaxSniffFiles: 1}), Spec{Argv: []string{"tool"}, Inputs: []string{"d"}})
	if sniffAll.Inputs[0].Type != "dir:csv" || sniffOne.Inputs[0].Type != "dir:binary" {
		t.Errorf("types %q and %q, want dir:csv and dir:binary", sniffAll.Inputs[0].Type, sniffOne.Inputs[0].Type)
	}
	// More files in the same buckets: same signature; another file-count bucket: different.
	h := newFixture(t)
	sh := h.signer(SignerConfig{})
	h.write("d/1.csv", csvOf(100, 1))
	h.write("d/2.csv", csvOf(100, 2))
	h.write("d/3.csv", csvOf(100, 3))
	three := h.sign(sh, Spec{Argv: []string{"tool"}, Inputs: []string{"d"}})
	h.write("d/4.csv", csvOf(2, 4))
	four := h.sign(sh, Spec{Argv: []string{"tool"}, Inputs: []string{"d"}})
	h.write("d/5.csv", csvOf(2, 5))
	five := h.sign(sh, Spec{Argv: []string{"tool"}, Inputs: []string{"d"}})
	if three.Inputs[0].Bucket != four.Inputs[0].Bucket || four.Inputs[0].Bucket != five.Inputs[0].Bucket {
		t.Fatalf("fixture: buckets %d %d %d differ", three.Inputs[0].Bucket, four.Inputs[0].Bucket, five.Inputs[0].Bucket)
	}
	if three.Hash != four.Hash {
		t.Error("3 → 4 files (same file-count bucket 2^2) changed the signature")
	}
	if four.Hash == five.Hash {
		t.Error("4 → 5 files (file-count bucket 2^2 → 2^3) kept the signature")
	}
}

func TestSpecialFileInput(t *testing.T) {
	f := newFixture(t)
	sig := f.sign(f.signer(SignerConfig{}), Spec{Argv: []string{"tool"}, Inputs: []string{os.DevNull}})
	if in := sig.Inputs[0]; in.Type != "chardev" || in.Size != 0 {
		t.Errorf("%s = %+v, want chardev", os.DevNull, in)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func setEnv(env []string, k, v string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		if strings.HasPrefix(kv, k+"=") {
			out[i] = k + "=" + v
			return out
		}
	}
	return append(out, k+"="+v)
}

func cloneSpec(s Spec) Spec {
	s.Argv = slices.Clone(s.Argv)
	s.Inputs = slices.Clone(s.Inputs)
	s.Env = slices.Clone(s.Env)
	return s
}
