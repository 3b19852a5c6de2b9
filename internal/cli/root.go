package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"
)

// Exit codes of prescient itself (a task's own code passes through `run`).
// They follow the conventions of env(1), docker run and chroot(1).
const (
	exitOK        = 0
	exitFailure   = 1   // a prescient command failed
	exitUsage     = 2   // bad flags or arguments
	exitPrescient = 125 // prescient could not run the task
	exitNotExec   = 126 // the program exists but cannot be executed
	exitNotFound  = 127 // the program was not found
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error // nil: nothing to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every command shares.
type globals struct {
	stateDir string
	logLevel string
	socket   string // --socket (or PRESCIENT_SOCKET, read when dialling)
	local    bool   // --local: never use a daemon
	stdout   io.Writer
	stderr   io.Writer
	noteOnce sync.Once // the "local mode" note
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
}

// defaultStateDir is /var/lib/prescient for root, else
// $XDG_STATE_HOME/prescient (~/.local/state/prescient).
func defaultStateDir() string {
	if d := os.Getenv("PRESCIENT_STATE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/prescient"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "prescient")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "prescient")
	}
	return filepath.Join(os.TempDir(), "prescient")
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "prescient",
		Short: "Run tasks under resource limits learned from what the same kind of task used before",
		Long: `Prescient runs tasks as real processes in their own cgroups, measures what they use
(CPU %, memory MB, IO ops/s, network Mbps) every second into an embedded time-series
database, and keys that history by a task signature: a SHA-256 over the program's code,
its inputs' type and size, and its environment. Runs with equal signatures are expected
to need the same resources.

Examples:
  prescient serve &                       (the daemon; run/show/history use it when it answers)
  prescient submit --wait -- ./job.sh
  prescient ps --all
  prescient run --cpu 0.5 --memory 512M -- make -j2
  prescient run --input data.csv --json -- python3 etl.py data.csv
  prescient show 01JD3Q5Z8M6X2C1V9B7N4K0PQR
  prescient history 3f1c…   (a signature from run or show)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.stateDir, "state-dir", defaultStateDir(), "where task records, profiles and logs are kept (env PRESCIENT_STATE_DIR)")
	pf.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	pf.StringVar(&g.socket, "socket", "", "the daemon's socket (env PRESCIENT_SOCKET; default "+rootSocket+" as root, else $XDG_RUNTIME_DIR/prescient.sock, then "+rootSocket+")")
	pf.BoolVar(&g.local, "local", false, "run, show and history work on the state directory directly, without a daemon")
	root.AddCommand(newRunCmd(g), newShowCmd(g), newHistoryCmd(g), newWorkloadCmd(g),
		newEvalCmd(g), newServeCmd(g), newShimCmd(g), newSubmitCmd(g), newPsCmd(g), newLogsCmd(g), newCancelCmd(g),
		newNodeCmd(g), newDashboardCmd(g), newGendocsCmd(g), newTopCmd(g), newSignatureCmd(g))
	wrapArgs(root)
	return root
}

// wrapArgs makes every command's argument-count errors usage errors (exit 2).
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{fmt.Errorf("%s: %w (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "prescient:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "prescient:", err)
	if isUsageError(err) {
		return exitUsage
	}
	return exitFailure
}

// usageError marks bad flags or arguments.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
