package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/task"
)

func newSubmitCmd(g *globals) *cobra.Command {
	var f runFlags
	var wait bool
	var priority int
	cmd := &cobra.Command{
		Use:   "submit [flags] -- CMD [ARGS...]",
		Short: "Queue a task on the daemon and print its id",
		Long: `Submit queues CMD on the daemon (it must be running: prescient serve) and prints the
task's id as soon as the task is durably accepted. The task runs as you, in the current
directory, with the current environment. --cpu and --memory say what it needs (sizing it
until the daemon has history of tasks like it); --max-cpu, --max-memory, --iops and
--net-mbps are hard caps (see prescient run --help). With --wait, submit waits for the end (a
spinner on a terminal) and exits with the task's exit code, like run. With --json it
prints the task as JSON.`,
		Example: `  prescient submit -- ./train.sh
  id=$(prescient submit --cpu 2 --memory 4G -- make -j2) && prescient logs -f "$id"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := submitRequest(f, args)
			if err != nil {
				return err
			}
			req.Priority = priority
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return &exitError{exitPrescient, err}
			}
			defer c.Close()
			t, err := c.Submit(cmd.Context(), req)
			if err != nil {
				return submitError(err)
			}
			if !wait {
				if f.json {
					return writeJSON(g.stdout, t)
				}
				fmt.Fprintln(g.stdout, t.ID)
				return nil
			}
			if !f.json {
				fmt.Fprintln(g.stdout, t.ID)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			final, err := waitTask(ctx, g, c, t, true)
			if err != nil {
				return &exitError{exitPrescient, err}
			}
			return finishRemote(g, final, f.json)
		},
	}
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.StringArrayVar(&f.inputs, "input", nil, "a file or directory the task reads (repeatable)")
	f.register(fl)
	fl.BoolVar(&wait, "wait", false, "wait for the task to end and exit with its code")
	fl.IntVar(&priority, "priority", 0, "queue priority: higher runs first, FIFO within a priority")
	fl.BoolVar(&f.json, "json", false, "print the task as JSON")
	return cmd
}

// submitRequest builds the request for CMD in the current directory and
// environment.
func submitRequest(f runFlags, argv []string) (api.SubmitRequest, error) {
	caps, err := f.caps()
	if err != nil {
		return api.SubmitRequest{}, err
	}
	declared, err := f.declared()
	if err != nil {
		return api.SubmitRequest{}, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return api.SubmitRequest{}, &exitError{exitPrescient, fmt.Errorf("working directory: %w", err)}
	}
	env := os.Environ()
	if err := utf8Only(argv, env, append([]string{cwd}, f.inputs...)); err != nil {
		return api.SubmitRequest{}, usageError{err}
	}
	req := api.SubmitRequest{Spec: api.Spec{
		Argv: argv, Inputs: f.inputs, Env: env, Dir: cwd, Limits: api.Limits(caps),
	}}
	if !declared.IsZero() {
		r := api.Limits(declared)
		req.Requests = &r
	}
	return req, nil
}

// submitError maps a refused submit to run's exit codes.
func submitError(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeProgramNotFound {
		return &exitError{exitNotFound, errors.New(ae.Message)}
	}
	if errors.As(err, &ae) {
		return &exitError{exitPrescient, errors.New(ae.Message)}
	}
	return &exitError{exitPrescient, err}
}

// finishRemote prints a finished daemon task as run does and returns its
// exit code.
func finishRemote(g *globals, t *api.Task, asJSON bool) error {
	rec := fromAPI(t)
	if asJSON {
		if err := writeJSON(g.stdout, viewOf(rec, nil)); err != nil {
			return err
		}
	}
	if rec.StartedAt == nil && rec.State == task.Failed {
		return &exitError{startExitCode(rec.ErrorKind), errors.New(rec.Error)}
	}
	if !asJSON {
		printSummary(g.stderr, rec)
	}
	return &exitError{code: taskExitCode(rec)}
}

// runRemote is `run` through the daemon: submit, stream the output, wait,
// summarise, exit with the task's code. Ctrl-C cancels the task.
func runRemote(ctx context.Context, g *globals, c *api.Client, f runFlags, argv []string) error {
	req, err := submitRequest(f, argv)
	if err != nil {
		return err
	}
	t, err := c.Submit(ctx, req)
	if err != nil {
		return submitError(err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var wg sync.WaitGroup
	if !f.json {
		for _, s := range []struct {
			name string
			w    io.Writer
		}{{"stdout", g.stdout}, {"stderr", g.stderr}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = followLog(ctx, c, t.ID, s.name, s.w)
			}()
		}
	}
	final, err := waitTask(ctx, g, c, t, f.json)
	wg.Wait()
	if err != nil {
		return &exitError{exitPrescient, err}
	}
	return finishRemote(g, final, f.json)
}

// followLog copies one stream of a task's output to w until the task ends.
func followLog(ctx context.Context, c *api.Client, id, stream string, w io.Writer) error {
	rc, err := c.Logs(ctx, id, stream, true)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// startExitCode is what run and submit --wait exit with for a task that
// never started: 127 for a program not found, 126 for one not executable,
// 125 for anything else Prescient could not do.
func startExitCode(k task.ErrorKind) int {
	switch k {
	case task.KindNotFound:
		return exitNotFound
	case task.KindNotExecutable:
		return exitNotExec
	}
	return exitPrescient
}

// utf8Only refuses what the daemon's JSON API cannot carry unchanged:
// bytes that are not UTF-8 would reach the task as U+FFFD. (Local mode,
// prescient run --local, passes any bytes.)
func utf8Only(argv, env, paths []string) error {
	for i, a := range argv {
		if !utf8.ValidString(a) {
			return fmt.Errorf("argument %d (%q) is not valid UTF-8; the daemon takes text arguments (run it with --local)", i, a)
		}
	}
	for _, e := range env {
		if !utf8.ValidString(e) {
			k, _, _ := strings.Cut(e, "=")
			return fmt.Errorf("environment variable %q is not valid UTF-8; unset it or run with --local", k)
		}
	}
	for _, p := range paths {
		if !utf8.ValidString(p) {
			return fmt.Errorf("path %q is not valid UTF-8; the daemon takes text paths (run it with --local)", p)
		}
	}
	return nil
}
