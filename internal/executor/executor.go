package executor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prescient-sched/prescient/internal/task"
)

// Mode is the cgroup layout of the host.
type Mode int

// The cgroup layouts New can work with.
const (
	// V1: only cgroup v1 controller hierarchies.
	V1 Mode = iota + 1
	// V2: the unified hierarchy with its controllers (most current hosts).
	V2
	// Hybrid: v1 controllers plus a v2 hierarchy without controllers (at
	// /sys/fs/cgroup/unified), used for placement, cgroup.kill and eBPF.
	Hybrid
)

func (m Mode) String() string {
	switch m {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Hybrid:
		return "hybrid"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// DefaultRoot is the cgroup name used when Config.Root is empty.
const DefaultRoot = "prescient"

// Config configures New.
type Config struct {
	// Root is the cgroup that holds Prescient's tasks, nested under this
	// process's own cgroup in each hierarchy; a relative path, default
	// "prescient".
	Root string
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger
	// NetLimiter enforces network limits; nil means a task with a network
	// limit is refused with ErrUnsupportedLimit. See also SetNetLimiter.
	NetLimiter NetLimiter
	// IODevice is the block device "MAJ:MIN" that IOPS limits apply to.
	// Empty means the whole disk behind each task's Dir (or the current
	// directory).
	IODevice string
}

// NetLimiter enforces a network bandwidth limit on a cgroup, identified by
// the inode number of its v2 directory (the id eBPF cgroup programs see).
// SetNetLimit is called before the task's first instruction and again on
// every Update with a network limit; ClearNetLimit when the limit is lifted
// and when the cgroup is removed. Implementations must be safe for
// concurrent use.
type NetLimiter interface {
	SetNetLimit(cgroupID uint64, mbps float64) error
	ClearNetLimit(cgroupID uint64)
}

func (c *Config) validate() error {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if !filepath.IsLocal(c.Root) || filepath.Clean(c.Root) != c.Root || strings.ContainsAny(c.Root, "\n\x00") {
		return fmt.Errorf("root cgroup %q must be a clean relative path: %w", c.Root, ErrInvalid)
	}
	if c.IODevice != "" {
		if _, _, err := parseMajMin(c.IODevice); err != nil {
			return fmt.Errorf("io device: %w", err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// StartOptions describe one task to start.
type StartOptions struct {
	// ID names the task's cgroup: 1–128 characters from [A-Za-z0-9._-].
	ID string
	// Argv is the program and its arguments. A program name without a
	// slash is looked up in the PATH of Env (or of this process when Env
	// has none); a relative path is taken relative to Dir.
	Argv []string
	// Env is the task's whole environment; nil means this process's.
	Env []string
	// Dir is the working directory; empty means this process's.
	Dir string
	// Limits are the hard limits; zero fields mean unlimited.
	Limits task.Limits
	// LogDir, when set, receives stdout.log and stderr.log (mode 0600,
	// truncated). It is created (0700) if missing.
	LogDir string
	// Stdout and Stderr are optional extra destinations (a tee), e.g. a
	// terminal. A write error there stops the tee, never the task or its
	// log files.
	Stdout, Stderr io.Writer
	// Credential, when set, runs the task as this uid/gid; Start then
	// checks Dir and the program with its rights too.
	Credential *syscall.Credential
}

func (o *StartOptions) validate() error {
	if err := validID(o.ID); err != nil {
		return err
	}
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return fmt.Errorf("empty argv: %w", ErrInvalid)
	}
	if err := o.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

func validID(id string) error {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return fmt.Errorf("task id %q: must be 1-128 characters and not . or ..: %w", id, ErrInvalid)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("task id %q: character %q not in [A-Za-z0-9._-]: %w", id, r, ErrInvalid)
		}
	}
	return nil
}

// CgroupDirs are the absolute cgroup directories of one task.
type CgroupDirs struct {
	// V1 maps a v1 controller name (cpu, cpuacct, memory, blkio, pids,
	// freezer) to its directory; nil on pure v2.
	V1 map[string]string
	// V2 is the task's directory in the v2 hierarchy, "" if none.
	V2 string
	// CgroupID is the inode number of V2 (the kernel's cgroup id), 0 if
	// there is no V2 directory.
	CgroupID uint64
}

// Exit is how a task ended.
type Exit struct {
	// Code is the main process's exit status; -1 when it was killed by a
	// signal or when the status is unknown (see Unknown).
	Code int
	// Signal is the signal that killed the main process, 0 if none.
	Signal syscall.Signal
	// OOMKilled reports that the kernel killed at least one of the task's
	// processes for memory during its life (OOMKills > 0), whatever the
	// main process did afterwards: it may have died of that SIGKILL itself,
	// or gone on after a child was killed — a shell that printed "Killed"
	// and exited 137, or a pipeline such as "cat big | sort | gzip" whose
	// sort was killed while the shell exited 0 with a truncated output. A
	// run with an OOM kill did not do its whole work, whatever Code says.
	// On cgroup v2 the kernel kills the whole task at the first OOM kill
	// (memory.oom.group); on v1 the rest of the task may run on to its end.
	OOMKilled bool
	// OOMKills counts the processes the kernel killed for memory in the
	// task's cgroup over the task's life, the main process and its
	// descendants alike: v1 memory.oom_control oom_kill, v2 memory.events
	// oom_kill (or oom_group_kill, if larger). The cgroup is new with the
	// task, so the count starts at 0 when the task does.
	OOMKills uint64
	// Killed reports that Kill (directly, by context cancellation or by
	// Close) was called before the task ended.
	Killed bool
	// Unknown reports that the main process was not this process's child
	// (the task was adopted), so Code and Signal are unknown.
	Unknown bool
}

// String is a short human form: "exit 0", "signal killed (OOM: 1 kill in
// the cgroup)", "exit 137 (OOM: 2 kills in the cgroup)", ….
func (x Exit) String() string {
	var s string
	switch {
	case x.Unknown:
		s = "exit unknown"
	case x.Signal != 0:
		s = "signal " + x.Signal.String()
	default:
		s = "exit " + strconv.Itoa(x.Code)
	}
	switch {
	case x.OOMKills == 1:
		s += " (OOM: 1 kill in the cgroup)"
	case x.OOMKills > 1:
		s += fmt.Sprintf(" (OOM: %d kills in the cgroup)", x.OOMKills)
	case x.OOMKilled:
		s += " (OOM)"
	}
	return s
}

// Kernel bounds for the CFS bandwidth controller (kernel/sched/core.c).
const (
	cpuPeriodUS   = 100_000        // the default period; 100 ms
	minCPUQuotaUS = 1_000          // min_cfs_quota_period: 1 ms
	maxCPUQuotaUS = 1<<44 - 1      // MAX_BW in µs
	maxIOPSRate   = math.MaxUint32 // the kernel clamps iops to UINT_MAX
)

// cgLimits is task.Limits in cgroup units. The zero value of each field
// means unlimited.
type cgLimits struct {
	cpuQuotaUS int64   // per cpuPeriodUS
	cpuShare   float64 // cores' worth of weight (0: the default weight)
	memBytes   int64   // memory (and, where it exists, memory+swap) limit
	// memHoldBytes > 0: held at memBytes, not OOM-killed (task.Limits.
	// MemoryHoldMB); on v2 memory.max is memHoldBytes, memory.high memBytes.
	memHoldBytes int64
	iops         uint64  // read and write operations/s, each
	pids         int64   // pids.max
	netMbps      float64 // handed to the NetLimiter
}

// translate converts l, which must have passed Validate, into cgroup units,
// refusing values the kernel cannot enforce.
func translate(l task.Limits) (cgLimits, error) {
	var c cgLimits
	if l.CPUCores > 0 {
		q := math.Round(l.CPUCores * cpuPeriodUS)
		if q < minCPUQuotaUS {
			return c, fmt.Errorf("cpu limit %g cores is below the kernel minimum of %g (1 ms per 100 ms period): %w",
				l.CPUCores, float64(minCPUQuotaUS)/cpuPeriodUS, ErrUnsupportedLimit)
		}
		if q > maxCPUQuotaUS {
			return c, fmt.Errorf("cpu limit %g cores is above the kernel maximum: %w", l.CPUCores, ErrUnsupportedLimit)
		}
		c.cpuQuotaUS = int64(q)
	}
	c.cpuShare = l.CPUShare
	if l.MemoryMB > 0 {
		b := l.MemoryMB * (1 << 20)
		if b < pageSize {
			return c, fmt.Errorf("memory limit %g MB is below one page (%d bytes): %w", l.MemoryMB, pageSize, ErrUnsupportedLimit)
		}
		if b >= math.MaxInt64/2 {
			return c, fmt.Errorf("memory limit %g MB is above the kernel maximum: %w", l.MemoryMB, ErrUnsupportedLimit)
		}
		c.memBytes = int64(b)
		if h := l.MemoryHoldMB * (1 << 20); h > b {
			c.memHoldBytes = int64(min(h, math.MaxInt64/2-1))
		}
	}
	if l.IOPS > 0 {
		r := math.Round(l.IOPS)
		if r < 1 {
			return c, fmt.Errorf("iops limit %g is below the minimum of 1: %w", l.IOPS, ErrUnsupportedLimit)
		}
		c.iops = uint64(min(r, maxIOPSRate))
	}
	c.pids = l.Pids
	c.netMbps = l.NetMbps
	return c, nil
}

// pageSize is the smallest memory limit the kernel can enforce. 4096 on
// every platform Prescient targets; only used for validation.
const pageSize = 4096

// parseMajMin parses a block device number "MAJ:MIN".
func parseMajMin(s string) (maj, min uint32, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, 0, fmt.Errorf("device %q is not MAJ:MIN: %w", s, ErrInvalid)
	}
	x, err1 := strconv.ParseUint(a, 10, 32)
	y, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("device %q is not MAJ:MIN: %w", s, ErrInvalid)
	}
	return uint32(x), uint32(y), nil
}

// End describes a run that started at started and ended at finished as
// x says, for task.End.Outcome (the one mapping of a run's end to a
// task's state); cancelled says the user asked for the kill.
func (x Exit) End(started, finished time.Time, cancelled bool) task.End {
	e := task.End{
		Started: true, StartedAt: started, FinishedAt: finished,
		Code: x.Code, OOMKills: x.OOMKills, Killed: x.Killed, Cancelled: cancelled, Unknown: x.Unknown,
	}
	if x.Signal != 0 {
		e.Signal = signalName(x.Signal)
	}
	if x.OOMKilled && e.OOMKills == 0 {
		e.OOMKills = 1
	}
	return e
}

// StartErrorKind classifies an error of Start for task.End.
func StartErrorKind(err error) task.ErrorKind {
	switch {
	case errors.Is(err, ErrNotFound):
		return task.KindNotFound
	case errors.Is(err, ErrNotExecutable):
		return task.KindNotExecutable
	}
	return task.KindStart
}
