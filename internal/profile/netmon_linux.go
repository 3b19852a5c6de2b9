package profile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Sizes of the map values.
const (
	sizeofNetValue = unsafe.Sizeof(netValue{})
	sizeofNetLimit = unsafe.Sizeof(netLimit{})
)

// netMaxEntries bounds the cgroups counted at once (live tasks plus those
// not yet forgotten). Hash maps are preallocated: about 100 bytes each.
const netMaxEntries = 16384

// NetMonitor counts each task cgroup's network bytes with two eBPF
// cgroup_skb programs (ingress and egress) attached once to a cgroup v2
// directory, so that they run for every socket of every descendant cgroup.
// Each program adds the packet length (IP header included) to a hash map
// entry keyed by bpf_skb_cgroup_id — the cgroup v2 id of the socket's
// owner, fixed when the socket is created — and, when a limit is set for
// that cgroup, polices it first (see SetNetLimit).
//
// Sockets are counted in the cgroup their creator was in when it created
// them: a task must be moved into its cgroup before it opens sockets.
// Loopback traffic counts in both directions. (Before Linux 5.15, on a
// hybrid host, once anything configured the v1 net_cls or net_prio
// controller the kernel stopped recording sockets' v2 cgroups and counted
// every socket against the v2 root.)
//
// All methods are safe for concurrent use. Close detaches the programs; it
// is idempotent.
type NetMonitor struct {
	logger *slog.Logger

	mu sync.RWMutex // write-locked by Close, read-locked around map use
	// Guarded by mu:
	closed   bool
	cgroup   *os.File
	counters *ebpf.Map
	limits   *ebpf.Map
	progs    []*ebpf.Program
	detach   []func() error
}

// OpenNetMonitor loads the counting programs once and attaches them to the
// cgroup v2 directory v2Root. It uses a BPF link where the kernel has them
// (links attach with BPF_F_ALLOW_MULTI semantics and detach when the
// process exits) and falls back to BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI,
// so programs of other tools on the same cgroups keep running. It needs
// CAP_BPF and CAP_NET_ADMIN (root) and a kernel with bpf_skb_cgroup_id for
// cgroup_skb programs and BPF atomics (Linux 5.12 or later); otherwise it
// returns an error wrapping ErrNotSupported or the kernel's error. A nil
// logger discards.
func OpenNetMonitor(v2Root string, logger *slog.Logger) (*NetMonitor, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(v2Root, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", v2Root, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("%s is not in a cgroup v2 hierarchy: %w", v2Root, ErrNotSupported)
	}
	if err := features.HaveProgramHelper(ebpf.CGroupSKB, asm.FnSkbCgroupId); errors.Is(err, ebpf.ErrNotSupported) {
		return nil, fmt.Errorf("bpf_skb_cgroup_id in cgroup_skb programs: %w", ErrNotSupported)
	} else if err != nil {
		return nil, fmt.Errorf("probe bpf_skb_cgroup_id for cgroup_skb programs: %w", err)
	}
	// A no-op on kernels that charge BPF memory to the memory cgroup
	// (5.11+); raises RLIMIT_MEMLOCK on older ones.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}

	m := &NetMonitor{logger: logger.With("cgroup", v2Root)}
	if err := m.open(v2Root); err != nil {
		_ = m.release()
		return nil, err
	}
	m.logger.Debug("network monitor attached")
	return m, nil
}

func (m *NetMonitor) open(v2Root string) error {
	var err error
	m.counters, m.limits, m.progs, err = loadNet()
	if err != nil {
		return err
	}
	m.cgroup, err = os.Open(v2Root)
	if err != nil {
		return fmt.Errorf("open cgroup: %w", err)
	}
	for i, d := range []direction{ingress, egress} {
		detach, err := attachCgroup(int(m.cgroup.Fd()), m.progs[i], d.attach)
		if err != nil {
			return fmt.Errorf("attach %s program to %s: %w", d.name, v2Root, err)
		}
		m.detach = append(m.detach, detach)
	}
	return nil
}

// loadNet creates the maps and loads the ingress and egress programs, in
// that order; on error it closes what it made.
func loadNet() (counters, limits *ebpf.Map, progs []*ebpf.Program, err error) {
	var closers []interface{ Close() error }
	fail := func(err error) (*ebpf.Map, *ebpf.Map, []*ebpf.Program, error) {
		for _, c := range closers {
			_ = c.Close()
		}
		return nil, nil, nil, err
	}
	counters, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "prescient_net",
		Type:       ebpf.Hash,
		KeySize:    8,
		ValueSize:  uint32(sizeofNetValue),
		MaxEntries: netMaxEntries,
	})
	if err != nil {
		return fail(fmt.Errorf("create counters map: %w", err))
	}
	closers = append(closers, counters)
	limits, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "prescient_lim",
		Type:       ebpf.Hash,
		KeySize:    8,
		ValueSize:  uint32(sizeofNetLimit),
		MaxEntries: netMaxEntries,
	})
	if err != nil {
		return fail(fmt.Errorf("create limits map: %w", err))
	}
	closers = append(closers, limits)
	for _, d := range []direction{ingress, egress} {
		prog, err := ebpf.NewProgram(netProgram(d, counters, limits))
		if err != nil {
			return fail(fmt.Errorf("load %s program: %w", d.name, err))
		}
		closers = append(closers, prog)
		progs = append(progs, prog)
	}
	return counters, limits, progs, nil
}

// attachCgroup attaches prog to the cgroup open as fd with a BPF link, or
// with BPF_PROG_ATTACH and BPF_F_ALLOW_MULTI where links are missing, and
// returns how to detach it.
func attachCgroup(fd int, prog *ebpf.Program, at ebpf.AttachType) (func() error, error) {
	l, linkErr := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: at})
	if linkErr == nil {
		return l.Close, nil
	}
	opts := link.RawAttachProgramOptions{Target: fd, Program: prog, Attach: at, Flags: unix.BPF_F_ALLOW_MULTI}
	if err := link.RawAttachProgram(opts); err != nil {
		return nil, fmt.Errorf("bpf link: %w; prog attach: %w", linkErr, err)
	}
	return func() error { return link.RawDetachProgram(link.RawDetachProgramOptions(opts)) }, nil
}

// Counters returns the bytes received and sent by the sockets of the
// cgroup with id cgroupID since its entry was created (by its first
// packet), IP headers included; packets the policer dropped are not
// counted (see Drops). ok is false when there is no entry — the cgroup has had no
// traffic, or was forgotten — or the monitor is closed.
func (m *NetMonitor) Counters(cgroupID uint64) (rxBytes, txBytes uint64, ok bool) {
	var v netValue
	found, err := m.lookup(&cgroupID, &v)
	if err != nil || !found {
		return 0, 0, false
	}
	return v.RxBytes, v.TxBytes, true
}

// Drops returns the packets the policer dropped for cgroupID in each
// direction, with ok as for Counters.
func (m *NetMonitor) Drops(cgroupID uint64) (rxPackets, txPackets uint64, ok bool) {
	var v netValue
	found, err := m.lookup(&cgroupID, &v)
	if err != nil || !found {
		return 0, 0, false
	}
	return v.RxDrops, v.TxDrops, true
}

// lookup reads the counters of *id into *v. Both are pointers so that a
// Sampler can pass fields it owns and the call does not allocate.
func (m *NetMonitor) lookup(id *uint64, v *netValue) (found bool, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return false, ErrClosed
	}
	err = m.counters.Lookup(id, v)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		*v = netValue{}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lookup cgroup %d: %w", *id, err)
	}
	return true, nil
}

// Forget deletes the counters and limit of cgroupID; call it when the task
// has ended, so the map does not fill up. Forgetting an unknown id is not
// an error.
func (m *NetMonitor) Forget(cgroupID uint64) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	var errs []error
	for _, mp := range []*ebpf.Map{m.counters, m.limits} {
		if err := mp.Delete(&cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// SetNetLimit polices the cgroup with id cgroupID to mbps megabits per
// second in each direction (as task.Limits.NetMbps). Packets over the rate
// are dropped: on ingress by returning 0, on egress by returning 2 (drop
// and congestion notification). Bursts of max(250 ms at the rate, 256 KiB)
// pass. Setting a limit again replaces it and refills the bucket. It
// returns ErrBadLimit for a rate outside [MinNetLimitMbps,
// MaxNetLimitMbps].
func (m *NetMonitor) SetNetLimit(cgroupID uint64, mbps float64) error {
	lim, err := newNetLimit(mbps)
	if err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.limits.Put(&cgroupID, &lim); err != nil {
		return fmt.Errorf("set limit of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// ClearNetLimit removes the limit of cgroupID, if any. Its counters stay.
// A failure other than "no limit" (which only a closed monitor or a broken
// kernel map gives) is logged.
func (m *NetMonitor) ClearNetLimit(cgroupID uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	if err := m.limits.Delete(&cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		m.logger.Warn("clear network limit", "cgroup_id", cgroupID, "err", err)
	}
}

// Close detaches the programs and frees the maps. It is idempotent.
func (m *NetMonitor) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.release()
}

func (m *NetMonitor) release() error {
	var errs []error
	for _, d := range m.detach {
		errs = append(errs, d())
	}
	for _, p := range m.progs {
		errs = append(errs, p.Close())
	}
	for _, mp := range []*ebpf.Map{m.counters, m.limits} {
		if mp != nil {
			errs = append(errs, mp.Close())
		}
	}
	if m.cgroup != nil {
		errs = append(errs, m.cgroup.Close())
	}
	m.detach, m.progs, m.counters, m.limits, m.cgroup = nil, nil, nil, nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close network monitor: %w", err)
	}
	return nil
}

// LimitsFile returns a duplicate of the policer's limits map descriptor,
// for a process this one starts (a shim) to set its task's network limit
// through OpenNetLimiter before the task's first instruction. The caller
// closes it.
func (m *NetMonitor) LimitsFile() (*os.File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	fd, err := unix.FcntlInt(uintptr(m.limits.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup limits map: %w", err)
	}
	return os.NewFile(uintptr(fd), "prescient-net-limits"), nil
}

// NetLimiter sets network limits in a NetMonitor's policer through its
// limits map, handed over as a descriptor (NetMonitor.LimitsFile): the
// daemon owns the programs, a shim sets its own task's limit. It
// implements executor.NetLimiter.
type NetLimiter struct {
	logger *slog.Logger
	limits *ebpf.Map
}

// OpenNetLimiter wraps the limits map descriptor fd; it takes ownership of
// fd (Close closes it).
func OpenNetLimiter(fd int, logger *slog.Logger) (*NetLimiter, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := ebpf.NewMapFromFD(fd)
	if err != nil {
		return nil, fmt.Errorf("network limits map: %w", err)
	}
	return &NetLimiter{logger: logger, limits: m}, nil
}

// SetNetLimit is NetMonitor.SetNetLimit.
func (l *NetLimiter) SetNetLimit(cgroupID uint64, mbps float64) error {
	lim, err := newNetLimit(mbps)
	if err != nil {
		return err
	}
	if err := l.limits.Put(&cgroupID, &lim); err != nil {
		return fmt.Errorf("set limit of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// ClearNetLimit is NetMonitor.ClearNetLimit.
func (l *NetLimiter) ClearNetLimit(cgroupID uint64) {
	if err := l.limits.Delete(&cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		l.logger.Warn("clear network limit", "cgroup_id", cgroupID, "err", err)
	}
}

// Close closes the map descriptor.
func (l *NetLimiter) Close() error { return l.limits.Close() }
