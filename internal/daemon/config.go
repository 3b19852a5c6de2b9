package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/task"
)

// Defaults of Config.
const (
	DefaultMaxRunning  = 64
	DefaultMaxQueue    = 100_000
	DefaultMaxAttempts = 3
	DefaultLogMaxBytes = 64 << 20
	DefaultLogKeep     = 2
	// DefaultMaxQueuedPerUser bounds one user's accepted, not yet ended
	// tasks: a tenth of the whole queue, so one user alone cannot fill it.
	DefaultMaxQueuedPerUser = DefaultMaxQueue / 10
	// DefaultMaxConnsPerUser bounds one user's open connections: far more
	// than a CLI needs (a `logs -f` holds two, `run` three), far fewer than
	// the daemon's file descriptors.
	DefaultMaxConnsPerUser = 64
	// DefaultIdleTimeout closes keep-alive connections idle that long.
	DefaultIdleTimeout = time.Minute
	// DefaultMaxUserPriority is the highest priority a user other than
	// root (or a member of PriorityGroup) may ask for.
	DefaultMaxUserPriority = 10
	// DefaultCPUOvercommit: see Config.CPUOvercommit.
	DefaultCPUOvercommit = 1.05
	// DefaultLogTotalBytes caps the logs of all tasks together. At the
	// defaults one task's logs reach at most 2 streams × (1 + 2 kept) ×
	// 64 MiB = 384 MiB, so 4 GiB keeps at least the ten newest such
	// worst cases (and thousands of tasks that write kilobytes), while
	// staying a few percent of a common /var.
	DefaultLogTotalBytes = 4 << 30
)

// The node's disk and NIC do not say how much they can sustain, so until
// they are measured the capacity the scheduler accounts in IO and network
// assumes a modest SSD (10,000 IO ops/s, a figure cloud block volumes
// commonly guarantee) and a 1 Gbit/s NIC.
const (
	DefaultIOPS    = 10000
	DefaultNetMbps = 1000
)

// DefaultRequest is what a task without declared CPU or memory reserves.
var DefaultRequest = task.Limits{CPUCores: 0.1, MemoryMB: 64}

// Config configures a Daemon. Zero fields take the defaults documented on
// each; validate fills them in.
type Config struct {
	// StateDir holds tasks.db, tsdb/, logs/<id>/ and run/<id>/.
	StateDir string
	// Socket is the unix socket path; it is created mode 0600 (0660 with
	// SocketGroup) and replaced if stale. Empty: no unix socket (tests).
	Socket string
	// SocketGroup, a group name or gid, may use the socket too.
	SocketGroup string
	// Listen is a TCP address to serve too; it needs TokenFile, and a
	// non-loopback address needs TLSCert and TLSKey.
	Listen          string
	TokenFile       string
	TLSCert, TLSKey string
	// MetricsListen, a TCP address, serves GET /metrics alone and without
	// auth, for a Prometheus scraper. Empty: none.
	MetricsListen string
	// DebugSocket, a unix socket path, serves the Go runtime's profiles
	// (net/http/pprof under /debug/pprof/) to the daemon's own user only
	// (mode 0600). Empty: none.
	DebugSocket string
	// Dashboard serves the web dashboard (/dashboard/ and its data under
	// /v1/dashboard/) on the socket and on Listen.
	Dashboard bool
	// CPU (cores) and MemoryMB cap what tasks may reserve; zero means the
	// machine minus the system reserve (see Capacity).
	CPU      float64
	MemoryMB float64
	// IOCapacity (IO ops/s) and NetCapacity (Mbps) are what tasks' IO and
	// network are accounted against. Zero: from the node (nodecap.go): IO
	// measured once on the state directory's disk, the network from the
	// link speeds the kernel reports (else DefaultIOPS, DefaultNetMbps).
	IOCapacity  float64
	NetCapacity float64
	// DefaultRequest is reserved for a task that declares no CPU or memory.
	DefaultRequest task.Limits
	// MaxRunning bounds concurrent tasks (default DefaultMaxRunning).
	MaxRunning int
	// MaxQueue bounds queued tasks; a submit beyond it is refused with 429
	// (default DefaultMaxQueue).
	MaxQueue int
	// MaxQueuedPerUser bounds one user's tasks not yet ended; a submit
	// beyond it is refused with 429 (default DefaultMaxQueuedPerUser; root
	// is not bounded).
	MaxQueuedPerUser int
	// MaxConnsPerUser bounds one user's open unix socket connections
	// (default DefaultMaxConnsPerUser; root is not bounded).
	MaxConnsPerUser int
	// IdleTimeout closes idle keep-alive connections (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxUserPriority is the highest priority a user may ask for; root
	// and members of PriorityGroup (a group name or gid) may go higher
	// (default DefaultMaxUserPriority).
	MaxUserPriority int
	PriorityGroup   string
	// MaxAttempts bounds how often a task whose run was lost (its shim died
	// without recording an exit) is started; after that it fails
	// (default DefaultMaxAttempts).
	MaxAttempts int
	// Interval is the sampling interval (default 1 s, at least 100 ms).
	Interval time.Duration
	// LogMaxBytes caps each of a task's stdout.log and stderr.log; beyond
	// it the file is rotated, LogKeep old files kept.
	LogMaxBytes int64
	LogKeep     int
	// LogTotalBytes caps the disk use of all tasks' logs (default
	// DefaultLogTotalBytes; negative: no cap). Above it the daemon removes
	// the whole log directories of ended tasks, oldest first; running
	// tasks' logs are only capped by rotation, so with many long tasks
	// writing at once the total can exceed it until they end.
	LogTotalBytes int64
	// Input bounds submit requests (default api.DefaultInputLimits).
	Input api.InputLimits
	// Sign bounds the work of signing one submit, which the daemon does
	// with the caller's rights.
	Sign SignLimits
	// EnvAllow and EnvDeny filter the environment variables that enter
	// signatures (task.SignerConfig's fields of the same names): nil
	// EnvDeny is task.DefaultEnvDeny().
	EnvAllow, EnvDeny []string
	// CgroupRoot is the executor's root cgroup name (default "prescient").
	CgroupRoot string
	// ShimCommand starts a shim: the run directory is appended. Default:
	// this executable with the argument "shim".
	ShimCommand []string
	// Policy picks the scheduler: PolicyPredict (default) or PolicyFit.
	Policy string
	// CPUOvercommit scales the CPU capacity the predict policy admits
	// tasks against by their predicted use (CPU is compressible). The
	// default, DefaultCPUOvercommit, is a tolerance, not a bet: the
	// predicted use of two single-threaded tasks is 0.97–1.0 core each
	// (sampling noise), and every running task holds at least MinCPU
	// (0.05 core) for its weight, so at exactly 1 a third task using next
	// to nothing (a memory hold) kept a 2-core node at one busy core.
	CPUOvercommit float64
	// Sched tunes the predictive scheduler.
	Sched SchedConfig
	// runner, if set, runs tasks instead of shims and cgroups (unit tests).
	runner runner
	// Logger receives the daemon's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the daemon's metrics, which /metrics serves
	// through Gatherer; nil: a private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// SignLimits bound the work of signing one submit (task.SignerConfig's
// fields of the same names); zero fields take task's defaults
// (task.DefaultMaxEntries, DefaultMaxCodeBytes, DefaultTimeout).
type SignLimits struct {
	MaxEntries   int           // directory entries walked, all inputs together
	MaxCodeBytes int64         // bytes of program and script hashed
	Timeout      time.Duration // time taken
}

func (c *Config) validate() error {
	if c.StateDir == "" {
		return fmt.Errorf("state dir is required: %w", ErrConfig)
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	c.StateDir = abs
	if c.Listen != "" && c.TokenFile == "" {
		return fmt.Errorf("--listen needs --token-file: %w", ErrConfig)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: %w", ErrConfig)
	}
	if c.CPU < 0 || c.MemoryMB < 0 {
		return fmt.Errorf("negative capacity: %w", ErrConfig)
	}
	if c.DefaultRequest.IsZero() {
		c.DefaultRequest = DefaultRequest
	}
	if c.MaxRunning <= 0 {
		c.MaxRunning = DefaultMaxRunning
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	switch {
	case c.IOCapacity < 0 || c.NetCapacity < 0:
		return fmt.Errorf("io capacity %v and net capacity %v may not be negative: %w", c.IOCapacity, c.NetCapacity, ErrConfig)
	case c.CPUOvercommit == 0:
		c.CPUOvercommit = DefaultCPUOvercommit
	case c.CPUOvercommit < 0.1 || c.CPUOvercommit > 10:
		return fmt.Errorf("cpu overcommit %v is outside [0.1, 10]: %w", c.CPUOvercommit, ErrConfig)
	}
	if c.MaxQueuedPerUser <= 0 {
		c.MaxQueuedPerUser = min(DefaultMaxQueuedPerUser, c.MaxQueue)
	}
	if c.MaxConnsPerUser <= 0 {
		c.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxUserPriority == 0 {
		c.MaxUserPriority = DefaultMaxUserPriority
	}
	if c.PriorityGroup != "" {
		if _, err := lookupGroup(c.PriorityGroup); err != nil {
			return fmt.Errorf("priority group: %w: %w", err, ErrConfig)
		}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	switch {
	case c.Interval == 0:
		c.Interval = time.Second
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("sampling interval %v is below 100ms: %w", c.Interval, ErrConfig)
	}
	if c.LogMaxBytes <= 0 {
		c.LogMaxBytes = DefaultLogMaxBytes
	}
	if c.LogKeep < 0 {
		c.LogKeep = 0
	} else if c.LogKeep == 0 {
		c.LogKeep = DefaultLogKeep
	}
	if c.LogTotalBytes == 0 {
		c.LogTotalBytes = DefaultLogTotalBytes
	}
	if c.Input == (api.InputLimits{}) {
		c.Input = api.DefaultInputLimits
	}
	switch c.Policy {
	case "":
		c.Policy = PolicyPredict
	case PolicyPredict, PolicyFit:
	default:
		return fmt.Errorf("policy %q: want %s or %s: %w", c.Policy, PolicyPredict, PolicyFit, ErrConfig)
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = executor.DefaultRoot
	}
	if len(c.ShimCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable for the shim: %w", err)
		}
		c.ShimCommand = []string{exe, "shim"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		reg := prometheus.NewRegistry()
		c.Registerer, c.Gatherer = reg, reg
	}
	if c.Gatherer == nil {
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		} else {
			return errors.New("daemon: a Registerer that is not a Gatherer needs Config.Gatherer")
		}
	}
	return nil
}

// The system reserve: what the default capacity keeps back for the kernel,
// the daemon and everything else on the machine. CPU: 10 % of the cores,
// at least 0.2 core. Memory: 10 % of MemTotal, at least 512 MiB and at
// most 4 GiB.
const (
	reserveCPUFrac  = 0.10
	reserveCPUMin   = 0.2
	reserveMemFrac  = 0.10
	reserveMemMinMB = 512
	reserveMemMaxMB = 4096
)

// Capacity is what tasks may reserve. By default the machine
// (runtime.NumCPU cores, MemTotal) minus the system reserve; an explicit
// cpu or memMB (> 0) is honoured exactly, as the operator asked — with a
// warning when it eats into the system reserve, and refused when it is
// more than the machine has.
func Capacity(cpu, memMB float64) (c api.Resources, warnings []string, err error) {
	cores := float64(runtime.NumCPU())
	total, err := memTotalMB()
	if err != nil {
		return api.Resources{}, nil, err
	}
	c = api.Resources{
		CPUCores: cores - max(cores*reserveCPUFrac, reserveCPUMin),
		MemoryMB: total - min(max(total*reserveMemFrac, reserveMemMinMB), reserveMemMaxMB),
	}
	if cpu > 0 {
		if cpu > cores+1e-9 {
			return c, nil, fmt.Errorf("--cpu %g is more than the machine's %g cores: %w", cpu, cores, ErrConfig)
		}
		if cpu > c.CPUCores+1e-9 {
			warnings = append(warnings, fmt.Sprintf("--cpu %g leaves less than the system reserve (%.2f cores) for the kernel, the daemon and everything else", cpu, cores-c.CPUCores))
		}
		c.CPUCores = cpu
	}
	if memMB > 0 {
		if memMB > total+1e-9 {
			return c, nil, fmt.Errorf("--memory %.0f MB is more than the machine's %.0f MB: %w", memMB, total, ErrConfig)
		}
		if memMB > c.MemoryMB+1e-9 {
			warnings = append(warnings, fmt.Sprintf("--memory %.0f MB leaves less than the system reserve (%.0f MB) for the kernel, the daemon and everything else", memMB, total-c.MemoryMB))
		}
		c.MemoryMB = memMB
	}
	if c.CPUCores <= 0 || c.MemoryMB <= 0 {
		return c, nil, fmt.Errorf("no capacity left after the system reserve (%.2f cores, %.0f MB): %w", c.CPUCores, c.MemoryMB, ErrConfig)
	}
	return c, warnings, nil
}

// memTotalMB reads MemTotal from /proc/meminfo, in MiB.
func memTotalMB() (float64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fs := strings.Fields(rest)
			if len(fs) >= 1 {
				kb, err := strconv.ParseFloat(fs[0], 64)
				if err == nil {
					return kb / 1024, nil
				}
			}
		}
	}
	return 0, errors.New("read memory size: no MemTotal in /proc/meminfo")
}
