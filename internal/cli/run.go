package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/supervisor"
	"github.com/prescient-sched/prescient/internal/task"
)

type runFlags struct {
	inputs    []string
	cpu       string // what the task needs (declared)
	memory    string
	maxCPU    string // hard caps
	maxMemory string
	iops      string
	netMbps   string
	interval  time.Duration
	json      bool
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARGS...]",
		Short: "Run a task in its own cgroup, profile it, and print what it used",
		Long: `Run starts CMD as a real process in a cgroup of its own, with the given hard limits in
place before its first instruction, streams its output, samples its CPU, memory, block IO
and network every --interval into the profile store, and prints a summary: the task's
signature, its limits, peak and mean per dimension, its duration and exit status.
Prescient exits with the task's exit code (128+N when killed by signal N; 125 when it
could not run the task; 127 when the program was not found). A run during which the
kernel killed any of the task's processes for memory (the task, a child of a shell, a
stage of a pipeline) is recorded failed with oom_killed true; when the task itself
exited 0 regardless, Prescient exits 137 (128+SIGKILL).

When a daemon answers (prescient serve; see --socket), the task is submitted to it and
runs there, as you; otherwise, or with --local, it runs right here (local mode).

With --json the task's output is not echoed (it is in the task's log files); a JSON
object describing the run is printed on stdout instead.

Resources: --cpu in cores (0.25, 250m, 2) and --memory as a size (512M, 1.5GiB, bytes
when unitless) say what the task needs, as you would declare it to any scheduler. Run here
(local mode), they are its hard limits. Through the daemon they are what it is sized by
until the daemon has seen tasks like it run: then its history sizes it, limits follow its
predicted curve, and an OOM-killed run is retried larger (serve --policy fit enforces them
as declared instead). --max-cpu and --max-memory are hard caps, kept everywhere; so are
--iops (per direction, on the disk behind the working directory) and --net-mbps (per
direction). Unset means unlimited.`,
		Example: `  prescient run -- sleep 1
  prescient run --cpu 0.25 --memory 256M -- python3 train.py
  prescient run --input in.csv --json -- ./etl in.csv out.parquet`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.daemonOrLocal(cmd.Context())
			if err != nil {
				return &exitError{exitPrescient, err}
			}
			if c != nil {
				defer c.Close()
				return runRemote(cmd.Context(), g, c, f, args)
			}
			return runLocal(cmd.Context(), g, f, args)
		},
	}
	cmd.Flags().SetInterspersed(false) // everything after CMD belongs to the task
	fl := cmd.Flags()
	fl.StringArrayVar(&f.inputs, "input", nil, "a file or directory the task reads (repeatable); its type and size go into the signature")
	f.register(fl)
	fl.DurationVar(&f.interval, "interval", time.Second, "sampling interval (100ms or more)")
	fl.BoolVar(&f.json, "json", false, "print the run as JSON on stdout instead of echoing the task's output")
	return cmd
}

// register adds the resource flags shared by run and submit.
func (f *runFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.cpu, "cpu", "", "CPU the task needs, in cores (e.g. 0.5 or 500m); a limit in local mode")
	fl.StringVar(&f.memory, "memory", "", "memory the task needs (e.g. 512M, 2G); a limit in local mode")
	fl.StringVar(&f.maxCPU, "max-cpu", "", "hard cap on CPU, in cores (a CFS quota)")
	fl.StringVar(&f.maxMemory, "max-memory", "", "hard cap on memory: the task is OOM-killed above it")
	fl.StringVar(&f.iops, "iops", "", "hard cap on block IO, operations per second for reads and for writes")
	fl.StringVar(&f.netMbps, "net-mbps", "", "hard cap on network, megabits per second each direction")
}

// declared is what the task needs by --cpu and --memory.
func (f runFlags) declared() (task.Limits, error) {
	var l task.Limits
	var err error
	if f.cpu != "" {
		if l.CPUCores, err = task.ParseCPU(f.cpu); err != nil {
			return l, usageError{fmt.Errorf("--cpu: %w", err)}
		}
	}
	if f.memory != "" {
		b, err := task.ParseSize(f.memory)
		if err != nil {
			return l, usageError{fmt.Errorf("--memory: %w", err)}
		}
		l.MemoryMB = float64(b) / (1 << 20)
	}
	if err := l.Validate(); err != nil {
		return l, usageError{err}
	}
	return l, nil
}

// limits are the local run's hard limits: the caps, and what is declared
// where no cap is given.
func (f runFlags) limits() (task.Limits, error) {
	l, err := f.caps()
	if err != nil {
		return l, err
	}
	d, err := f.declared()
	if err != nil {
		return l, err
	}
	if l.CPUCores == 0 {
		l.CPUCores = d.CPUCores
	}
	if l.MemoryMB == 0 {
		l.MemoryMB = d.MemoryMB
	}
	return l, nil
}

// caps are the hard caps: --max-cpu, --max-memory, --iops, --net-mbps.
func (f runFlags) caps() (task.Limits, error) {
	var l task.Limits
	var err error
	if f.maxCPU != "" {
		if l.CPUCores, err = task.ParseCPU(f.maxCPU); err != nil {
			return l, usageError{fmt.Errorf("--max-cpu: %w", err)}
		}
	}
	if f.maxMemory != "" {
		b, err := task.ParseSize(f.maxMemory)
		if err != nil {
			return l, usageError{fmt.Errorf("--max-memory: %w", err)}
		}
		l.MemoryMB = float64(b) / (1 << 20)
	}
	if f.iops != "" {
		if l.IOPS, err = task.ParseRate(f.iops); err != nil {
			return l, usageError{fmt.Errorf("--iops: %w", err)}
		}
	}
	if f.netMbps != "" {
		if l.NetMbps, err = task.ParseRate(f.netMbps); err != nil {
			return l, usageError{fmt.Errorf("--net-mbps: %w", err)}
		}
	}
	if err := l.Validate(); err != nil {
		return l, usageError{err}
	}
	return l, nil
}

func runLocal(ctx context.Context, g *globals, f runFlags, argv []string) error {
	if f.interval < 100*time.Millisecond {
		return usageError{fmt.Errorf("--interval %v is below the 100ms minimum", f.interval)}
	}
	limits, err := f.limits()
	if err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return &exitError{exitPrescient, fmt.Errorf("working directory: %w", err)}
	}
	spec := task.Spec{Argv: argv, Inputs: f.inputs, Env: os.Environ(), Dir: cwd, Limits: limits}
	log := g.logger()

	signer, err := task.NewSigner(task.SignerConfig{Logger: log})
	if err != nil {
		return &exitError{exitPrescient, err}
	}
	sig, err := signer.Sign(spec)
	if err != nil {
		code := exitPrescient
		if errors.Is(err, task.ErrProgramNotFound) {
			code = exitNotFound
		}
		return &exitError{code, err}
	}

	st, err := openLocal(g.stateDir, log)
	if err != nil {
		return &exitError{exitPrescient, err}
	}
	defer st.close()

	ex, err := executor.New(executor.Config{Logger: log})
	if err != nil {
		return &exitError{exitPrescient, err}
	}
	defer ex.Close()
	netmon := profile.OpenNode(ex.V1Root("blkio"), ex.V2Root(), cwd, log)
	if netmon != nil {
		defer netmon.Close()
	}
	if limits.NetMbps > 0 {
		if netmon == nil {
			return &exitError{exitPrescient, errors.New("--net-mbps needs eBPF cgroup_skb network accounting, which is unavailable here")}
		}
		ex.SetNetLimiter(netmon)
	}

	sup, err := supervisor.New(supervisor.Config{
		Executor: ex, Net: netmon, Records: st, Samples: st,
		Interval: f.interval, LogRoot: filepath.Join(g.stateDir, "logs"), Logger: log,
	})
	if err != nil {
		return &exitError{exitPrescient, err}
	}

	now := time.Now()
	rec := &task.Record{
		ID: store.NewID(), Signature: sig.Hash, Spec: spec, State: task.Queued,
		SubmittedAt: now, InputBytes: sig.InputBytes, Limits: limits, RunnerPID: os.Getpid(),
	}
	if err := st.Put(rec); err != nil {
		return &exitError{exitPrescient, err}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	out := supervisor.Output{Stdout: g.stdout, Stderr: g.stderr}
	if f.json {
		out = supervisor.Output{}
	}
	final, runErr := sup.Run(ctx, rec, out)
	if ferr := st.flush(final); ferr != nil {
		log.Error("storing the profile failed", "err", ferr)
	}
	if runErr != nil && final.StartedAt == nil {
		code := startExitCode(final.ErrorKind)
		if f.json {
			_ = writeJSON(g.stdout, viewOf(final, nil))
		}
		return &exitError{code, runErr}
	}
	if f.json {
		if err := writeJSON(g.stdout, viewOf(final, nil)); err != nil {
			return err
		}
	} else {
		printSummary(g.stderr, final)
	}
	if runErr != nil {
		return &exitError{exitPrescient, runErr}
	}
	return &exitError{code: taskExitCode(final)}
}

// taskExitCode is what `run` exits with: the task's code, 128+signal, or 1;
// never 0 for a run with an OOM kill (137, as if SIGKILLed: a pipeline whose
// stage the kernel killed may well exit 0).
func taskExitCode(r *task.Record) int {
	if r.OOMKilled && r.ExitCode != nil && *r.ExitCode == 0 {
		return 128 + int(syscall.SIGKILL)
	}
	if r.ExitCode != nil {
		return *r.ExitCode
	}
	if r.Signal != "" {
		if n := unixSignalNum(r.Signal); n > 0 {
			return 128 + n
		}
	}
	if r.State == task.Succeeded {
		return 0
	}
	return exitFailure
}
