package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// rootSocket is the daemon's socket when it runs as root.
const rootSocket = "/run/prescient.sock"

// defaultSocket is where `serve` listens by default: /run/prescient.sock
// for root, $XDG_RUNTIME_DIR/prescient.sock otherwise (the state dir when
// XDG_RUNTIME_DIR is unset).
func defaultSocket(stateDir string) string {
	if os.Geteuid() == 0 {
		return rootSocket
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "prescient.sock")
	}
	return filepath.Join(stateDir, "prescient.sock")
}

// socketCandidates are the sockets a client tries, in order: --socket or
// PRESCIENT_SOCKET alone when set; else this user's default, then the
// system daemon's.
func (g *globals) socketCandidates() []string {
	if g.socket != "" {
		return []string{g.socket}
	}
	if s := os.Getenv("PRESCIENT_SOCKET"); s != "" {
		return []string{s}
	}
	own := defaultSocket(g.stateDir)
	if own == rootSocket {
		return []string{own}
	}
	return []string{own, rootSocket}
}

// dial returns a client of the first daemon that answers, or an error
// naming the sockets tried.
func (g *globals) dial(ctx context.Context) (*api.Client, string, error) {
	var errs []error
	for _, s := range g.socketCandidates() {
		c := api.NewUnixClient(s)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Ping(pctx)
		cancel()
		if err == nil {
			return c, s, nil
		}
		c.Close()
		if errors.Is(err, unix.EACCES) {
			// A daemon is there, and it does not admit this user: that is
			// the answer, not "no daemon" (and never a fall back to local
			// mode).
			return nil, "", fmt.Errorf("%s: permission denied: the daemon admits only its owner and the members of its --socket-group (%w)", s, errDenied)
		}
		errs = append(errs, fmt.Errorf("%s: %w", s, unwrapDial(err)))
	}
	return nil, "", fmt.Errorf("no prescient daemon answers (start one with `prescient serve`): %w", errors.Join(errs...))
}

// errDenied: a daemon's socket refused this user.
var errDenied = errors.New("access to the daemon denied")

// unwrapDial shortens net/http's dial errors to their cause.
func unwrapDial(err error) error {
	for _, target := range []error{unix.ENOENT, unix.ECONNREFUSED, unix.EACCES} {
		if errors.Is(err, target) {
			return target
		}
	}
	return err
}

// daemonOrLocal decides where run, show and history go: the daemon when
// one answers (and --local is not set); otherwise local mode, said once on
// stderr. An explicit --socket that does not answer is an error.
func (g *globals) daemonOrLocal(ctx context.Context) (*api.Client, error) {
	if g.local {
		return nil, nil
	}
	c, _, err := g.dial(ctx)
	if err == nil {
		return c, nil
	}
	if g.socket != "" || errors.Is(err, errDenied) {
		return nil, err
	}
	g.noteOnce.Do(func() {
		fmt.Fprintln(g.stderr, "prescient: no daemon answers; working on the state directory directly (local mode)")
	})
	return nil, nil
}

// fromAPI turns an API task into the record the formatters take.
func fromAPI(t *api.Task) *task.Record {
	return &task.Record{
		ID: t.ID, Signature: t.Signature, State: task.State(t.State), ExitCode: t.ExitCode, Signal: t.Signal,
		OOMKilled: t.OOMKilled, Error: t.Error, ErrorKind: task.ErrorKind(t.ErrorCode),
		Spec:   task.Spec{Argv: t.Spec.Argv, Inputs: t.Spec.Inputs, Env: t.Spec.Env, Dir: t.Spec.Dir, Limits: task.Limits(t.Spec.Limits)},
		Limits: task.Limits(t.Limits), Peak: task.Stats(t.Peak), Mean: task.Stats(t.Mean), Samples: t.Samples, CPUSeconds: t.CPUSeconds,
		SubmittedAt: t.SubmittedAt, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, DurationS: t.DurationS,
		LogDir: t.LogDir, InputBytes: t.InputBytes,
	}
}

// samplesFromAPI turns an API curve into samples. cpu_pct is percent of
// one core, the API's stable unit; inside Prescient CPU is in cores.
func samplesFromAPI(ps []api.Point) []resource.Sample {
	out := make([]resource.Sample, 0, len(ps))
	for _, p := range ps {
		s := resource.Sample{Time: p.Time}
		if p.CPUPct != nil {
			s.CPU, s.Avail = resource.CoresOfPct(*p.CPUPct), s.Avail.With(resource.CPU)
		}
		if p.MemoryMB != nil {
			s.MemoryMB, s.Avail = *p.MemoryMB, s.Avail.With(resource.Memory)
			if p.RSSMB != nil {
				s.RSSMB = *p.RSSMB
			}
			if p.PeakMB != nil {
				s.PeakMB = *p.PeakMB
			}
		}
		if p.IOPS != nil {
			s.IOPS, s.Avail = *p.IOPS, s.Avail.With(resource.IO)
		}
		if p.NetInMbps != nil && p.NetOutMbps != nil {
			s.NetInMbps, s.NetOutMbps, s.Avail = *p.NetInMbps, *p.NetOutMbps, s.Avail.With(resource.Net)
		}
		out = append(out, s)
	}
	return out
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}

// spinner draws a one-line progress indicator on a terminal while waiting;
// on anything else it draws nothing.
type spinner struct {
	w    io.Writer
	stop chan struct{}
	done sync.WaitGroup
	mu   sync.Mutex
	msg  string
}

func startSpinner(w io.Writer, msg string) *spinner {
	s := &spinner{w: w, msg: msg, stop: make(chan struct{})}
	if !isTerminal(w) {
		return s
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		t0 := time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			s.mu.Lock()
			fmt.Fprintf(s.w, "\r\x1b[K%c %s %s", frames[i%len(frames)], s.msg, time.Since(t0).Truncate(time.Second))
			s.mu.Unlock()
			select {
			case <-s.stop:
				fmt.Fprint(s.w, "\r\x1b[K")
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *spinner) set(msg string) {
	s.mu.Lock()
	s.msg = msg
	s.mu.Unlock()
}

func (s *spinner) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
}

// waitTask waits for a task's end, with a spinner on a terminal showing
// its state, and cancels it if ctx is cancelled (Ctrl-C).
func waitTask(ctx context.Context, g *globals, c *api.Client, t *api.Task, spin bool) (*api.Task, error) {
	var sp *spinner
	if spin {
		sp = startSpinner(g.stderr, "task "+t.ID+" "+t.State)
		defer sp.Stop()
		go func() {
			evs, err := c.Events(ctx)
			if err != nil {
				return
			}
			defer evs.Close()
			for {
				ev, err := evs.Next()
				if err != nil {
					return
				}
				if ev.Task.ID == t.ID {
					sp.set("task " + t.ID + " " + ev.Task.State)
				}
			}
		}()
	}
	final, err := c.Wait(ctx, t.ID)
	if err != nil && ctx.Err() != nil {
		// Interrupted: cancel the task, then wait for it to end.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, cerr := c.Cancel(cctx, t.ID); cerr != nil {
			return nil, fmt.Errorf("cancel %s: %w", t.ID, cerr)
		}
		return c.Wait(cctx, t.ID)
	}
	return final, err
}

func itoa(n int) string { return strconv.Itoa(n) }
