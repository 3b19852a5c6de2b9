//go:build linux

package task

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/cred"
	"github.com/prescient-sched/prescient/internal/testuser"
)

// TestSignAsTwoUsers signs as two throwaway users, A and B, through
// cred.Do as the daemon does: B gets the answers B's own shell would give
// about A's files, and the code-hash cache that A warmed serves B nothing
// B could not read.
func TestSignAsTwoUsers(t *testing.T) {
	users := testuser.New(t, 2)
	credOf := func(u testuser.User) cred.Credential {
		return cred.Credential{UID: u.UID, GID: u.GID, Groups: []uint32{u.GID}}
	}
	a, b := credOf(users[0]), credOf(users[1])
	f := newFixture(t)
	// t.TempDir makes 0700 directories; let everyone in.
	for d := f.dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o755))
	}
	must(t, os.Chmod(f.bin, 0o755))
	owned := func(p string) string {
		must(t, os.Chown(p, int(a.UID), int(a.GID)))
		return p
	}
	home := owned(filepath.Dir(f.write("a/.keep", "")))
	script := owned(f.writeMode("a/pin.sh", "echo 4711\n", 0o600))
	secret := owned(f.writeMode("a/secret.csv", strings.Repeat("x", 7351), 0o600))
	empty := owned(f.writeMode("a/empty.csv", "", 0o600))
	private := owned(filepath.Dir(f.write("a/private/exists.csv", "a,b\n1,2\n")))
	must(t, os.Chmod(private, 0o700))
	sealed := owned(f.writeMode("bin/sealed", "sealed program\n", 0o711))
	mine := owned(f.writeMode("bin/mine", "A's own program\n", 0o700))
	_ = home

	s := f.signer(SignerConfig{})
	// Digests are cached only out of the racy window: move the cache's
	// clock past it.
	s.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
	as := func(c cred.Credential, spec Spec) (Signature, error) {
		spec.Dir = f.dir
		var sig Signature
		err := cred.Do(c, func() error {
			var err error
			sig, err = s.Sign(spec)
			return err
		})
		return sig, err
	}

	// A warms the cache with A's secret script.
	sigA, err := as(a, Spec{Argv: []string{"sh", script}})
	if err != nil {
		t.Fatalf("A signs A's script: %v", err)
	}
	warm := s.CacheStats()

	t.Run("script in the warm cache", func(t *testing.T) {
		sig, err := as(b, Spec{Argv: []string{"sh", script}})
		if !errors.Is(err, ErrScript) || !errors.Is(err, fs.ErrPermission) || sig.Hash == sigA.Hash {
			t.Errorf("B signs A's 0600 script: %+v, %v; want ErrScript, permission denied", sig, err)
		}
		if st := s.CacheStats(); st.Hits != warm.Hits+1 { // the sh stand-in only
			t.Errorf("cache %+v after B, %+v before: B was served A's script", st, warm)
		}
	})
	t.Run("0600 input", func(t *testing.T) {
		for _, p := range []string{secret, empty} {
			sig, err := as(b, Spec{Argv: []string{"tool"}, Inputs: []string{p}})
			if !errors.Is(err, ErrInput) || !errors.Is(err, fs.ErrPermission) || err.Error() != `input "`+p+`": permission denied` {
				t.Errorf("B reads %s: %+v, %v; want permission denied", p, sig, err)
			}
			if err != nil && strings.Contains(err.Error(), strconv.Itoa(7351)) {
				t.Errorf("the error tells the size: %v", err)
			}
		}
	})
	t.Run("names in a 0700 directory", func(t *testing.T) {
		_, errE := as(b, Spec{Argv: []string{"tool"}, Inputs: []string{filepath.Join(private, "exists.csv")}})
		_, errM := as(b, Spec{Argv: []string{"tool"}, Inputs: []string{filepath.Join(private, "missing.csv")}})
		if !errors.Is(errE, fs.ErrPermission) || strings.Replace(errE.Error(), "exists", "X", 1) != strings.Replace(errM.Error(), "missing", "X", 1) {
			t.Errorf("existing: %v; missing: %v; want the same refusal", errE, errM)
		}
		_, errD := as(b, Spec{Argv: []string{"tool"}, Inputs: []string{private}})
		if !errors.Is(errD, ErrInput) || !errors.Is(errD, fs.ErrPermission) {
			t.Errorf("B lists A's 0700 directory: %v, want permission denied", errD)
		}
	})
	t.Run("programs", func(t *testing.T) {
		sig, err := as(b, Spec{Argv: []string{mine}})
		if !errors.Is(err, ErrProgramNotFound) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("B runs A's 0700 program: %+v, %v; want permission denied", sig, err)
		}
		// Found through PATH, it is skipped as exec.LookPath skips it.
		if sig, err := as(b, Spec{Argv: []string{"mine"}}); !errors.Is(err, ErrProgramNotFound) {
			t.Errorf("B runs A's 0700 program from PATH: %+v, %v; want not found", sig, err)
		}
		// 0711: B may run it but not read it: identified by path, size and
		// mtime; A reads it and gets its content's digest.
		sigB, errB := as(b, Spec{Argv: []string{"sealed"}})
		sigA, errA := as(a, Spec{Argv: []string{"sealed"}})
		if errB != nil || errA != nil || sigB.Program != sealed || sigB.Code == sigA.Code {
			t.Errorf("0711 program: B %+v, %v; A %+v, %v; want both signed, B by identity", sigB, errB, sigA, errA)
		}
	})
}
