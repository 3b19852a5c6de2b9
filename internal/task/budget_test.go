package task

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSignBudget checks each of SignerConfig's budgets: going over it is a
// *LimitError (ErrLimit) naming the input or code file, the limit and what
// to do; staying within it signs as before.
func TestSignBudget(t *testing.T) {
	f := newFixture(t)
	for i := range 300 {
		f.write("tree/sub/f"+strconv.Itoa(i)+".csv", "a,b\n1,2\n")
	}
	f.write("small/one.csv", "a,b\n1,2\n")
	f.write("small/two.csv", "a,b\n1,2\n")
	f.exe("bin/big", strings.Repeat("x", 5000))
	f.write("big.py", strings.Repeat("#", 3000)+"\n")
	tree := f.path("tree")
	tests := []struct {
		name  string
		cfg   SignerConfig
		spec  Spec
		clock func() time.Time // nil: the real one
		limit string           // "" : signs
		msg   string
	}{
		{"entries within", SignerConfig{MaxEntries: 302}, Spec{Argv: []string{"tool"}, Inputs: []string{"tree"}}, nil, "", ""},
		{"entries over", SignerConfig{MaxEntries: 100}, Spec{Argv: []string{"tool"}, Inputs: []string{"tree"}}, nil,
			LimitEntries, `input "` + tree + `" has more than 100 entries: name the files the task reads`},
		{"entries over together", SignerConfig{MaxEntries: 302}, Spec{Argv: []string{"tool"}, Inputs: []string{"small", "tree"}}, nil,
			LimitEntries, `inputs up to "` + tree + `" have more than 302 entries together: name the files the task reads`},
		{"code within", SignerConfig{MaxCodeBytes: 5000}, Spec{Argv: []string{"big"}}, nil, "", ""},
		{"program over", SignerConfig{MaxCodeBytes: 4999}, Spec{Argv: []string{"big"}}, nil,
			LimitCodeBytes, `program "` + f.path("bin/big") + `": the code to hash (program and script together) is over 4999 bytes`},
		{"program and script over", SignerConfig{MaxCodeBytes: 3020}, Spec{Argv: []string{"python3", "big.py"}}, nil,
			LimitCodeBytes, `script "` + f.path("big.py") + `": the code to hash (program and script together) is over 3020 bytes`},
		{"timeout", SignerConfig{Timeout: time.Minute}, Spec{Argv: []string{"tool"}, Inputs: []string{"tree"}}, hourPerCall(),
			LimitTimeout, `program "` + f.path("bin/tool") + `": signing took more than 1m0s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.signer(tt.cfg)
			if tt.clock != nil {
				s.now = tt.clock
			}
			_, err := s.Sign(Spec{Argv: tt.spec.Argv, Inputs: tt.spec.Inputs, Dir: f.dir})
			if tt.limit == "" {
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrLimit) || le.Limit != tt.limit || err.Error() != tt.msg {
				t.Fatalf("err = %v, want %s: %q", err, tt.limit, tt.msg)
			}
		})
	}
}

// hourPerCall is a clock that moves an hour on each reading.
func hourPerCall() func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time { t = t.Add(time.Hour); return t }
}

// TestCodeBudgetIgnoresCache checks that whether a task can be signed does
// not depend on the cache: a cached program still counts its size.
func TestCodeBudgetIgnoresCache(t *testing.T) {
	f := newFixture(t)
	f.exe("bin/big", strings.Repeat("x", 5000))
	s := f.signer(SignerConfig{MaxCodeBytes: 5000})
	// Out of the racy window, so the digest is cached.
	s.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
	f.sign(s, Spec{Argv: []string{"big"}})
	s.cfg.MaxCodeBytes = 4999
	_, err := s.Sign(Spec{Argv: []string{"big"}, Dir: f.dir})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit with the digest cached (stats %+v)", err, s.CacheStats())
	}
	if st := s.CacheStats(); st.Entries != 1 {
		t.Errorf("cache %+v, want the program cached", st)
	}
}

// TestWalkStopsEarly checks that a directory far over the entry budget is
// not read whole: the walk stops within one batch of the limit.
func TestWalkStopsEarly(t *testing.T) {
	dir := t.TempDir()
	for i := range 2500 {
		must(t, os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), nil, 0o644))
	}
	read := 0
	errStop := errors.New("over")
	err := walkDir(dir, func(n int) error {
		read += n
		if read > 100 {
			return errStop
		}
		return nil
	}, func(string, os.DirEntry) error { return nil })
	if !errors.Is(err, errStop) || read > 100+walkBatch {
		t.Errorf("err = %v after %d entries read, want the charge's error within %d", err, read, 100+walkBatch)
	}
}

// TestWalkOrder checks that walkDir visits what filepath.WalkDir does, in
// the same order.
func TestWalkOrder(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"w/b/2", "w/b/1", "w/a", "w/c/d/e", "w/B", "w/c/x"} {
		f.write(p, "x")
	}
	must(t, os.Symlink(f.path("w/c"), f.path("w/link")))
	var got, want []string
	must(t, walkDir(f.path("w"), func(int) error { return nil }, func(p string, _ os.DirEntry) error {
		got = append(got, p)
		return nil
	}))
	must(t, filepath.WalkDir(f.path("w"), func(p string, _ os.DirEntry, err error) error {
		if p != f.path("w") {
			want = append(want, p)
		}
		return err
	}))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("walkDir visited\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSignerConfigBudgetDefaults(t *testing.T) {
	s, err := NewSigner(SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxEntries != DefaultMaxEntries || s.cfg.MaxCodeBytes != DefaultMaxCodeBytes || s.cfg.Timeout != DefaultTimeout {
		t.Errorf("defaults %d %d %v", s.cfg.MaxEntries, s.cfg.MaxCodeBytes, s.cfg.Timeout)
	}
	for _, cfg := range []SignerConfig{{MaxEntries: -1}, {MaxCodeBytes: -1}, {Timeout: -time.Second}} {
		if _, err := NewSigner(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("NewSigner(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
