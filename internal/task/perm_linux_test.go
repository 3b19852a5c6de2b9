//go:build linux

package task

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// asNobody runs fn on a thread whose uids are dropped to nobody (65534), so
// that permission checks apply to a test running as root. Credentials are
// per thread on Linux; the raw setresuid syscall changes only this one
// (syscall.Setresuid would change every thread of the process), and the
// thread is never unlocked, so the runtime discards it when the goroutine
// ends instead of reusing it.
func asNobody(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch a thread to another user")
	}
	done := make(chan struct{})
	var skip string
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		const nobody = 65534
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESUID, nobody, nobody, nobody); errno != 0 {
			skip = "setresuid: " + errno.Error()
			return
		}
		fn()
	}()
	<-done
	if skip != "" {
		t.Skip(skip)
	}
}

// TestSignUnreadableAsNobody checks the errors for unreadable files: an
// input and a script give ErrInput and ErrScript with "permission denied";
// a program that may be run but not read (mode 0711) is identified by path,
// size and mtime instead of failing.
func TestSignUnreadableAsNobody(t *testing.T) {
	f := newFixture(t)
	// t.TempDir makes 0700 directories; let nobody in.
	for d := f.dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o755))
	}
	must(t, os.Chmod(f.bin, 0o755))
	secret := f.writeMode("secret.csv", "a,b\n1,2\n", 0o600)
	f.writeMode("secret.py", "print(1)\n", 0o600)
	f.writeMode("bin/sealed", "sealed program\n", 0o711)
	closed := f.path("closed")
	must(t, os.MkdirAll(filepath.Join(closed, "inner"), 0o700))
	f.write("closed/inner/x.csv", "a,b\n")
	must(t, os.Chmod(closed, 0o755))
	must(t, os.Chmod(filepath.Join(closed, "inner"), 0o700))
	s := f.signer(SignerConfig{})

	type result struct {
		sig Signature
		err error
	}
	var input, script, program, dir result
	var canary error
	asNobody(t, func() {
		_, canary = os.ReadFile(secret)
		input.sig, input.err = s.Sign(Spec{Argv: []string{"tool"}, Inputs: []string{"secret.csv"}, Dir: f.dir})
		script.sig, script.err = s.Sign(Spec{Argv: []string{"python3", "secret.py"}, Dir: f.dir})
		program.sig, program.err = s.Sign(Spec{Argv: []string{"sealed"}, Dir: f.dir})
		dir.sig, dir.err = s.Sign(Spec{Argv: []string{"tool"}, Inputs: []string{"closed"}, Dir: f.dir})
	})
	if canary == nil {
		t.Skip("the dropped thread could still read a 0600 root file (capabilities kept?)")
	}
	checks := []struct {
		name string
		err  error
		kind error
		msg  string
	}{
		{"input", input.err, ErrInput, `input "` + secret + `": permission denied`},
		{"script", script.err, ErrScript, `script "` + f.path("secret.py") + `": permission denied`},
		{"directory input", dir.err, ErrInput, `input "` + closed + `": ` + filepath.Join(closed, "inner") + `: permission denied`},
	}
	for _, c := range checks {
		if !errors.Is(c.err, c.kind) || !errors.Is(c.err, fs.ErrPermission) || c.err.Error() != c.msg {
			t.Errorf("%s: err = %v, want %q (%v, fs.ErrPermission)", c.name, c.err, c.msg, c.kind)
		}
	}
	if program.err != nil || program.sig.Program != f.path("bin/sealed") || len(program.sig.Hash) != 64 {
		t.Errorf("unreadable program: %+v, %v; want a signature by path, size and mtime", program.sig, program.err)
	}
}
