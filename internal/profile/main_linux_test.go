package profile

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The behaviour tests run their workloads in child processes: this test
// binary, re-executed with childEnv naming the workload. A child waits for
// a line on stdin (sent once the test has moved it into its cgroups, so
// that everything it allocates, reads and sends is charged there), starts
// the workload, writes "ready" once it is in steady state, and exits when
// stdin closes.
const (
	childEnv = "PRESCIENT_PROFILE_CHILD"
	argsEnv  = "PRESCIENT_PROFILE_ARGS"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if err := runChild(mode, strings.Fields(os.Getenv(argsEnv))); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(mode string, args []string) error {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return fmt.Errorf("wait for go: %w", err)
	}
	done := make(chan struct{})
	go func() { // stdin closed: the parent is done with us.
		_, _ = io.Copy(io.Discard, in)
		close(done)
	}()
	ready := func() { fmt.Println("ready") }
	arg := func(i int) float64 {
		if i >= len(args) {
			return 0
		}
		v, _ := strconv.ParseFloat(args[i], 64)
		return v
	}
	switch mode {
	case "cpu":
		return childCPU(arg(0), ready, done)
	case "mem":
		return childMem(int(arg(0)), ready, done)
	case "io":
		return childIO(args[0], arg(1), ready, done)
	case "net":
		return childNet(arg(0), ready, done)
	case "netsend":
		return childNetSend(args[0], ready, done)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// childCPU burns frac of one core: it spins whenever the process's CPU
// time is behind frac × wall time and sleeps otherwise, so it makes up for
// time it was preempted.
func childCPU(frac float64, ready func(), done <-chan struct{}) error {
	runtime.LockOSThread()
	cpuTime := func() time.Duration {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
		return time.Duration(ts.Nano())
	}
	start, cpu0 := time.Now(), cpuTime()
	ready()
	for {
		select {
		case <-done:
			return nil
		default:
		}
		if behind := time.Duration(frac*float64(time.Since(start))) - (cpuTime() - cpu0); behind > 0 {
			for end := time.Now().Add(min(behind, 2*time.Millisecond)); time.Now().Before(end); {
			}
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// childMem maps mb MiB of anonymous memory and writes every page, outside
// the Go heap so the runtime (and the race detector) add nothing to it.
func childMem(mb int, ready func(), done <-chan struct{}) error {
	mem, err := unix.Mmap(-1, 0, mb<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
	ready()
	<-done
	return unix.Munmap(mem)
}

// childIO reads random 4 KiB blocks of path with O_DIRECT at rate reads
// per second, on an absolute schedule.
func childIO(path string, rate float64, ready func(), done <-chan struct{}) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	blocks := st.Size / 4096
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-done:
			return nil
		default:
		}
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		if _, err := unix.Pread(fd, buf, rng.Int64N(blocks)*4096); err != nil {
			return err
		}
		if i == 0 {
			ready()
		}
	}
}

// childNet streams over a loopback TCP connection to itself at mbps
// megabits per second of payload, in 16 KiB writes on an absolute schedule.
func childNet(mbps float64, ready func(), done <-chan struct{}) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	out, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	defer out.Close()
	in, err := ln.Accept()
	if err != nil {
		return err
	}
	defer in.Close()
	go func() { _, _ = io.Copy(io.Discard, in) }()
	const chunk = 16 << 10
	buf := make([]byte, chunk)
	every := time.Duration(chunk * 8 / (mbps * 1e6) * float64(time.Second))
	start := time.Now()
	ready()
	for i := 0; ; i++ {
		select {
		case <-done:
			return nil
		default:
		}
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
}

// childNetSend sends to addr as fast as it can, until the receiver (the
// test) closes the connection or stdin closes.
func childNetSend(addr string, ready func(), done <-chan struct{}) error {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	go func() { <-done; c.Close() }()
	ready()
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return nil
		}
	}
}

// child is a running workload process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	once  sync.Once
}

// startChild starts this test binary as workload mode; it waits for start.
func startChild(t *testing.T, mode string, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, argsEnv+"="+strings.Join(args, " "), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(c.stop)
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// start lets the workload begin and waits until it reports steady state.
func (c *child) start(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child did not get ready: %q, %v", line, err)
	}
}

// stop ends the child (closing stdin, then killing it) and reaps it.
func (c *child) stop() {
	c.once.Do(func() {
		_ = c.stdin.Close()
		exited := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			_ = c.cmd.Process.Kill()
			<-exited
		}
	})
}

// procCPU returns the CPU time pid has used, from /proc/<pid>/stat (utime
// + stime, in clock ticks of 10 ms).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime 14 and stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
