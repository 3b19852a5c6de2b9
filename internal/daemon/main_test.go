package daemon_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// bin is the prescient binary built for these tests; skipReason says why
// the end-to-end tests cannot run here.
var (
	bin        string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root: the daemon runs tasks in cgroups and as other users"
	case !hasCgroups():
		skipReason = "no cgroup hierarchy mounted under /sys/fs/cgroup"
	}
	if skipReason == "" {
		// World-traversable, so a client run as another user can execute it.
		dir, err := os.MkdirTemp("", "prescient-daemon-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		_ = os.Chmod(dir, 0o755)
		bin = filepath.Join(dir, "prescient")
		args := []string{"build", "-o", bin}
		if raceBuild {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "../../cmd/prescient")...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build prescient: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func hasCgroups() bool {
	_, err1 := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	_, err2 := os.Stat("/sys/fs/cgroup/memory")
	return err1 == nil || err2 == nil
}

func needDaemon(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// env is one daemon under test: its state dir and socket.
type env struct {
	t      testing.TB
	dir    string
	state  string
	socket string
	args   []string
	cmd    *exec.Cmd
	logf   *os.File
}

// newEnv makes a world-traversable temporary directory for the socket and
// the state, so that only the socket's own mode keeps other users out.
func newEnv(t testing.TB, args ...string) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "pd-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, state: filepath.Join(dir, "state"), socket: filepath.Join(dir, "d.sock"), args: args}
	t.Cleanup(func() {
		e.stop()
		// Cancel whatever still runs, so no task outlives the test.
		for _, sub := range []string{"run"} {
			ents, _ := os.ReadDir(filepath.Join(e.state, sub))
			for _, en := range ents {
				if b, err := os.ReadFile(filepath.Join(e.state, sub, en.Name(), "shim.pid")); err == nil {
					var pid int
					fmt.Sscan(string(b), &pid)
					if pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGTERM)
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
		if e.logf != nil {
			e.logf.Close()
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
			t.Logf("daemon log:\n%s", tail(string(b), 4000))
		}
		os.RemoveAll(dir)
	})
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start starts the daemon and waits until it answers.
func (e *env) start() {
	e.t.Helper()
	if e.logf == nil {
		f, err := os.OpenFile(filepath.Join(e.dir, "daemon.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			e.t.Fatal(err)
		}
		e.logf = f
	}
	args := append([]string{"serve", "--state-dir", e.state, "--socket", e.socket, "--log-level", "info", "--interval", "200ms"}, e.args...)
	e.cmd = exec.Command(bin, args...)
	e.cmd.Stdout, e.cmd.Stderr = e.logf, e.logf
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func(c *exec.Cmd) { exited <- c.Wait() }(e.cmd)
	c := api.NewUnixClient(e.socket)
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			e.cmd = nil
			e.t.Fatalf("daemon exited at start: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			go func(c *exec.Cmd) { <-exited }(e.cmd)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("daemon did not answer within 20s")
}

// kill9 kills the daemon outright.
func (e *env) kill9() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGKILL)
		for range 500 { // until the process is gone (its socket no longer answers)
			if err := syscall.Kill(e.cmd.Process.Pid, 0); err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		e.cmd = nil
	}
}

// stop stops the daemon gracefully.
func (e *env) stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		for range 1000 {
			if err := syscall.Kill(e.cmd.Process.Pid, 0); err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		e.cmd = nil
	}
}

func (e *env) client() *api.Client {
	c := api.NewUnixClient(e.socket)
	e.t.Cleanup(c.Close)
	return c
}

// spec is a submit request for argv in a world-readable directory.
func spec(argv ...string) api.SubmitRequest {
	return api.SubmitRequest{
		Spec:     api.Spec{Argv: argv, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, Dir: "/tmp"},
		Requests: &api.Limits{CPUCores: 0.01, MemoryMB: 1},
	}
}

// cli runs the prescient binary as a client, as cred (nil: as root).
func (e *env) cli(cred *syscall.Credential, args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(bin, append([]string{"--socket", e.socket}, args...)...)
	cmd.Dir = "/tmp"
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var o, er strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run client: %v", err)
	}
	return o.String(), er.String(), code
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
