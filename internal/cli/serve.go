package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/daemon"
	"github.com/prescient-sched/prescient/internal/task"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		cfg         daemon.Config
		cpu, memory string
		configPath  string
		printCfg    bool
		env         envFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Prescient daemon: queue, run, profile and record tasks submitted to it",
		Long: `Serve runs the daemon. It owns the task queue (durable: a task is fsynced to the store
before it is accepted), starts queued tasks as capacity allows, each under a small shim
that outlives a daemon crash, profiles them into the store, and serves the HTTP/JSON API
(docs/api.md) on a unix socket only its owner may use (mode 0600; 0660 for
--socket-group). Tasks run as the user who submitted them (the socket's peer credentials),
and a submit is signed with that user's rights: a program or input they cannot read is
refused as their shell would refuse it. --sign-max-entries, --sign-max-code-bytes and
--sign-timeout bound the work of signing one submit (docs/signature.md, "Whose rights").
--env-allow, --env-deny and --no-default-env-deny choose the environment variables that
enter signatures; the default deny list leaves out terminals, login sessions and the
per-run variables of CI systems and batch schedulers (prescient signature shows it).

TCP is off unless --listen is given; it then needs --token-file (a bearer token, file mode
0600, whose owner is who TCP callers act as), and a non-loopback address needs
--tls-cert and --tls-key.

Capacity: --cpu and --memory cap what tasks may reserve; the default is the machine minus
a system reserve (10% of the CPUs, at least 0.2 core; 10% of memory, 512 MiB to 4 GiB).
A task reserves its declared --cpu/--memory, or 0.1 core and 64 MiB.

Settings can come from a YAML file (--config; the packaged service uses
/etc/prescient/config.yaml) whose keys are these flags' names; a flag on the command line
overrides the file. --print-config prints the settings in force, as such a file, and exits.

The dashboard (docs/dashboard.md) is served at /dashboard/ on the socket and on --listen
(there the token file guards it: open /dashboard/?token=TOKEN once); prescient dashboard
opens it on a loopback port for one user. --metrics-listen serves /metrics alone, without
auth, for a Prometheus scraper.

SIGINT or SIGTERM stops the daemon; running tasks go on, and the next daemon started on
the same state directory picks them up.`,
		Example: `  prescient serve
  prescient serve --socket-group prescient --cpu 8 --memory 16G
  prescient serve --listen 127.0.0.1:7070 --token-file /etc/prescient/token
  prescient serve --config /etc/prescient/config.yaml --print-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath != "" {
				if err := applyConfig(cmd, configPath); err != nil {
					return usageError{err}
				}
			}
			if printCfg {
				return printConfig(g.stdout, cmd)
			}
			if cpu != "" {
				v, err := task.ParseCPU(cpu)
				if err != nil {
					return usageError{fmt.Errorf("--cpu: %w", err)}
				}
				cfg.CPU = v
			}
			if memory != "" {
				b, err := task.ParseSize(memory)
				if err != nil {
					return usageError{fmt.Errorf("--memory: %w", err)}
				}
				cfg.MemoryMB = float64(b) / (1 << 20)
			}
			cfg.EnvAllow, cfg.EnvDeny = env.lists()
			cfg.StateDir = g.stateDir
			cfg.Socket = g.socket
			if cfg.Socket == "" {
				cfg.Socket = os.Getenv("PRESCIENT_SOCKET")
			}
			if cfg.Socket == "" {
				cfg.Socket = defaultSocket(g.stateDir)
			}
			cfg.Logger = g.logger()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Registerer, cfg.Gatherer = reg, reg
			return serve(cmd.Context(), g, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Policy, "policy", daemon.PolicyPredict, "scheduling policy: predict (predicted curves, live limits) or fit (declared requests)")
	fl.DurationVar(&cfg.Sched.CommitWindow, "commit-window", 0, "hard limits at start cover the predicted upper quantile over this window (default 30s)")
	fl.DurationVar(&cfg.Sched.MonitorWindow, "monitor-window", 0, "running limits cover the predicted upper quantile over this window ahead (default 10s)")
	fl.DurationVar(&cfg.Sched.WholeStep, "predict-step", 0, "step of predicted whole-run curves (default 10 samples)")
	fl.DurationVar(&cfg.Sched.TrainEvery, "train-every", 0, "refit the sequence models this often when new runs arrived (default 10m; negative: never)")
	fl.DurationVar(&cfg.Sched.BurstWindow, "burst-window", 0, "a user's tasks queued within this of each other start longest predicted first, so short ones fill in beside long ones (default 5s; negative: first come, first served)")
	fl.IntVar(&cfg.Sched.PlanDepth, "plan-depth", 0, "queued tasks, in priority order, that hold soft reservations; the rest are planned as these leave (default 512)")
	fl.IntVar(&cfg.Sched.RetryLimit, "oom-retries", 0, "most requeues of an OOM-killed task with a larger estimate (default 16: until no larger limit fits the node; negative: none)")
	fl.Float64Var(&cfg.Sched.WideStretch, "wide-stretch", 0, "a task predicted to use more than one core starts on a free core and is counted at its use / this, at least one core (default 2; 1: wait for its whole width)")
	fl.DurationVar(&cfg.Sched.MemoryHold, "memory-hold", 0, "a task whose memory limit followed its curve down under its history's peak is held at the limit, not OOM-killed, and raised; this long without room, the kernel decides (default 10s; negative: no holds)")
	fl.Float64Var(&cfg.CPUOvercommit, "cpu-overcommit", daemon.DefaultCPUOvercommit, "start tasks while their predicted CPU use fits this many times the cores (predict policy)")
	fl.StringVar(&cfg.SocketGroup, "socket-group", "", "let this group (name or gid) use the socket too (mode 0660)")
	fl.StringVar(&cpu, "cpu", "", "CPU cores tasks may reserve (default: the machine minus the reserve)")
	fl.StringVar(&memory, "memory", "", "memory tasks may reserve, e.g. 16G (default: the machine minus the reserve)")
	fl.Float64Var(&cfg.IOCapacity, "io-capacity", 0, "block IO ops/s tasks may reserve (default: measured once on the state directory's disk, kept in <state>/node-io.json)")
	fl.Float64Var(&cfg.NetCapacity, "net-capacity", 0, "network Mbps tasks may reserve (default: the link speeds the kernel reports, else 1000)")
	fl.IntVar(&cfg.MaxRunning, "max-running", daemon.DefaultMaxRunning, "most tasks running at once")
	fl.IntVar(&cfg.MaxQueue, "max-queue", daemon.DefaultMaxQueue, "most tasks queued; more are refused (HTTP 429)")
	fl.IntVar(&cfg.MaxQueuedPerUser, "max-queued-per-user", daemon.DefaultMaxQueuedPerUser, "most tasks one user may have queued or running; more are refused (HTTP 429; root is not bounded)")
	fl.IntVar(&cfg.MaxConnsPerUser, "max-conns-per-user", daemon.DefaultMaxConnsPerUser, "most connections one user may hold open (root is not bounded)")
	fl.DurationVar(&cfg.IdleTimeout, "idle-timeout", daemon.DefaultIdleTimeout, "close keep-alive connections idle this long")
	fl.IntVar(&cfg.MaxUserPriority, "max-user-priority", daemon.DefaultMaxUserPriority, "highest --priority a user may ask for (root and --priority-group may go higher)")
	fl.StringVar(&cfg.PriorityGroup, "priority-group", "", "members of this group (name or gid) may ask for any priority")
	fl.IntVar(&cfg.MaxAttempts, "max-attempts", daemon.DefaultMaxAttempts, "starts of a task whose run is lost (shim killed) before it is failed")
	fl.DurationVar(&cfg.Interval, "interval", time.Second, "sampling interval (100ms or more)")
	fl.Int64Var(&cfg.LogMaxBytes, "log-max-bytes", daemon.DefaultLogMaxBytes, "rotate a task's stdout.log/stderr.log beyond this size")
	fl.IntVar(&cfg.LogKeep, "log-keep", daemon.DefaultLogKeep, "rotated log files kept per stream")
	fl.IntVar(&cfg.Sign.MaxEntries, "sign-max-entries", task.DefaultMaxEntries, "most directory entries walked to sign one submit, over all its --input directories")
	fl.Int64Var(&cfg.Sign.MaxCodeBytes, "sign-max-code-bytes", task.DefaultMaxCodeBytes, "most bytes of code (program and script) hashed to sign one submit")
	fl.DurationVar(&cfg.Sign.Timeout, "sign-timeout", task.DefaultTimeout, "most time spent signing one submit")
	fl.Int64Var(&cfg.LogTotalBytes, "log-total-bytes", daemon.DefaultLogTotalBytes, "cap on all tasks' logs: beyond it the logs of ended tasks are removed, oldest first (negative: no cap)")
	env.register(cmd)
	fl.StringVar(&cfg.Listen, "listen", "", "also serve TCP on this address (needs --token-file)")
	fl.StringVar(&cfg.TokenFile, "token-file", "", "file holding the bearer token TCP callers must send")
	fl.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate for --listen")
	fl.StringVar(&cfg.TLSKey, "tls-key", "", "TLS key for --listen")
	fl.StringVar(&cfg.DebugSocket, "debug-socket", "", "also serve the Go runtime's profiles (/debug/pprof/) on this unix socket, mode 0600: for the daemon's own user only")
	fl.StringVar(&cfg.MetricsListen, "metrics-listen", "", "also serve /metrics alone, without auth, on this TCP address (e.g. 127.0.0.1:9466)")
	fl.BoolVar(&cfg.Dashboard, "dashboard", true, "serve the web dashboard at /dashboard/ (and its data under /v1/dashboard/)")
	fl.StringVar(&configPath, "config", "", "read settings from this YAML file (keys: these flags' names; the command line overrides it)")
	fl.BoolVar(&printCfg, "print-config", false, "print the settings in force as a config file and exit")
	return cmd
}

// serve is the one place that handles the daemon's signals.
func serve(ctx context.Context, g *globals, cfg daemon.Config) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	capacity, warnings := d.Capacity()
	for _, w := range warnings {
		fmt.Fprintf(g.stderr, "prescient: warning: %s\n", w)
	}
	fmt.Fprintf(g.stderr, "prescient: serving on %s (state in %s); tasks may use %.2f cores and %.0f MB (policy %s)\n",
		cfg.Socket, cfg.StateDir, capacity.CPUCores, capacity.MemoryMB, cfg.Policy)
	runErr := d.Run(ctx)
	if err := d.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	return runErr
}

func newShimCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "shim RUNDIR",
		Short:  "Run one task for the daemon (internal)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return daemon.RunShim(args[0])
		},
	}
}
