package profile

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Target names one task's cgroups, as the executor created them.
type Target struct {
	// V1 maps a cgroup v1 controller name ("cpuacct", "memory", "blkio",
	// ...) to the task's absolute directory in that hierarchy. Nil or empty
	// on a pure cgroup v2 host.
	V1 map[string]string
	// V2 is the task's absolute cgroup v2 directory; empty when the host
	// has no cgroup v2 hierarchy.
	V2 string
	// CgroupID is the kernel's id of the V2 directory (its inode number),
	// the key of the NetMonitor's counters. Zero means unknown: no network
	// dimension.
	CgroupID uint64
}

// Units of the resource.Sample fields.
const (
	bytesPerMB = 1 << 20 // memory fields are MiB, as task.Limits.MemoryMB
	bitsPerMb  = 1e6     // network fields are megabits (10^6 bits) per second
)

const (
	initialBuf = 4 << 10
	maxBuf     = 1 << 20 // a stat file larger than this is treated as unreadable
)

// Sampler measures one task from its cgroup files (opened once by
// NewSampler, kept open and re-read from offset 0 on every Sample) and,
// when given a NetMonitor, from its eBPF network counters.
//
// Memory and IO come from the cgroup v2 files when they exist, else from
// the v1 controller's; CPU from v1 cpuacct.usage when given, else v2
// cpu.stat. On a hybrid host (v2 without controllers) all three come from
// v1 and the network counters key on the v2 directory's id.
//
// On a cgroup v1 host with Linux 6.10 or later, IO reads zero until
// blk-throttle is set up for the disk: see EnableV1IOAccounting.
//
// A Sampler is safe for concurrent use, though one goroutine per task is
// the intended use. Close releases the files; Sample after Close returns a
// sample with nothing in Avail.
type Sampler struct {
	mu sync.Mutex
	// Guarded by mu:
	closed  bool
	buf     []byte
	cpu     cpuSource
	mem     memSource
	io      ioSource
	net     *NetMonitor
	cgID    uint64
	cpuRate rate // ns of CPU
	ioRate  rate // ops
	rxRate  rate // bytes
	txRate  rate // bytes
	maxUse  uint64
	netKey  uint64   // s.cgID, addressable so that lookups do not allocate
	netVal  netValue // lookup result
}

type cpuSource struct {
	f  statFile
	v2 bool // cpu.stat usage_usec; else v1 cpuacct.usage (ns)
	// thr is the cpu.stat that counts CFS throttling: v1 cpu's
	// throttled_time (ns) or v2's throttled_usec (thrV2).
	thr   statFile
	thrV2 bool
}

type memSource struct {
	usage, stat, peak statFile // peak may be invalid: running max then
	keys              []string // working-set subtrahend, RSS
}

type ioSource struct {
	f  statFile
	v2 bool // io.stat; else v1 blkio.throttle.io_serviced
}

var (
	memKeysV1 = []string{"total_inactive_file", "total_rss"}
	memKeysV2 = []string{"inactive_file", "anon"}
)

// NewSampler opens the stat files of target t. A file that does not exist
// only leaves its dimension unavailable; any other error opening a file is
// returned. It returns ErrNoSource when no dimension at all can be
// measured. net may be nil (no network dimension); it is not owned by the
// Sampler and must outlive it.
func NewSampler(t Target, net *NetMonitor) (*Sampler, error) {
	s := &Sampler{
		buf:    make([]byte, initialBuf),
		cpu:    cpuSource{f: noFile, thr: noFile},
		mem:    memSource{usage: noFile, stat: noFile, peak: noFile},
		io:     ioSource{f: noFile},
		net:    net,
		cgID:   t.CgroupID,
		netKey: t.CgroupID,
	}
	if err := s.open(t); err != nil {
		_ = s.closeFiles()
		return nil, err
	}
	if !s.cpu.f.valid() && !s.mem.usage.valid() && !s.io.f.valid() && !s.netOn() {
		return nil, fmt.Errorf("target v2=%q v1=%v: %w", t.V2, t.V1, ErrNoSource)
	}
	return s, nil
}

func (s *Sampler) netOn() bool { return s.net != nil && s.cgID != 0 }

// open picks and opens the files of each dimension; s.closeFiles undoes it.
func (s *Sampler) open(t Target) error {
	v1 := func(ctrl, name string) string {
		if d := t.V1[ctrl]; d != "" {
			return filepath.Join(d, name)
		}
		return ""
	}
	v2 := func(name string) string {
		if t.V2 != "" {
			return filepath.Join(t.V2, name)
		}
		return ""
	}

	// CPU: v1 cpuacct.usage first where a hybrid host has both. It counts
	// the same tasks as v2 cpu.stat (TestSamplerCPU checks they agree), in
	// ns rather than µs, as one number that needs no key lookup; it is also
	// the cheapest file to read (about 0.7 µs against 0.85 µs here).
	if f, err := openOptional(v1("cpuacct", "cpuacct.usage")); err != nil {
		return err
	} else if f.valid() {
		s.cpu = cpuSource{f: f}
	} else if f, err := openOptional(v2("cpu.stat")); err != nil {
		return err
	} else {
		s.cpu = cpuSource{f: f, v2: true}
	}
	s.cpu.thr = noFile
	if f, err := openOptional(v1("cpu", "cpu.stat")); err != nil {
		return err
	} else if f.valid() {
		s.cpu.thr = f
	} else if f, err := openOptional(v2("cpu.stat")); err != nil {
		return err
	} else {
		s.cpu.thr, s.cpu.thrV2 = f, true
	}

	// Memory: v2 needs memory.current and memory.stat (memory.peak is
	// optional, from Linux 5.19); v1 needs usage_in_bytes and memory.stat.
	for _, c := range []struct {
		usage, stat, peak string
		keys              []string
	}{
		{v2("memory.current"), v2("memory.stat"), v2("memory.peak"), memKeysV2},
		{v1("memory", "memory.usage_in_bytes"), v1("memory", "memory.stat"), v1("memory", "memory.max_usage_in_bytes"), memKeysV1},
	} {
		ok, err := s.openMem(c.usage, c.stat, c.peak, c.keys)
		if err != nil {
			return err
		}
		if ok {
			break
		}
	}

	// IO.
	if f, err := openOptional(v2("io.stat")); err != nil {
		return err
	} else if f.valid() {
		s.io = ioSource{f: f, v2: true}
	} else if f, err := openOptional(v1("blkio", "blkio.throttle.io_serviced")); err != nil {
		return err
	} else {
		s.io = ioSource{f: f}
	}
	return nil
}

func (s *Sampler) openMem(usage, stat, peak string, keys []string) (bool, error) {
	u, err := openOptional(usage)
	if err != nil || !u.valid() {
		return false, err
	}
	st, err := openOptional(stat)
	if err != nil || !st.valid() {
		_ = u.close()
		return false, err
	}
	p, err := openOptional(peak)
	if err != nil {
		_ = u.close()
		_ = st.close()
		return false, err
	}
	s.mem = memSource{usage: u, stat: st, peak: p, keys: keys}
	return true, nil
}

// openOptional opens path; an empty path or a missing file gives an invalid
// statFile and no error.
func openOptional(path string) (statFile, error) {
	if path == "" {
		return noFile, nil
	}
	f, err := openStat(path)
	if err != nil {
		if isNotExist(err) {
			return noFile, nil
		}
		return noFile, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// Sample measures the task at now, which should be the current time from
// time.Now (its monotonic reading makes the rates immune to wall-clock
// steps).
//
// CPU, IO and network are rates over the interval since the previous call,
// so the first call only primes their counters: it returns memory (the
// dimensions that are levels, not rates) and leaves CPU, IO and Net out of
// Avail. So does a call whose now is not after the previous one. A
// dimension whose source is missing or fails to read or parse in this call
// is left out of Avail; it is never reported as zero.
//
// Sample does not allocate.
func (s *Sampler) Sample(now time.Time) resource.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := resource.Sample{Time: now}
	if s.closed {
		return out
	}
	var vals [2]uint64

	if s.cpu.f.valid() {
		var ns uint64
		ok := false
		if b, err := s.read(s.cpu.f); err == nil {
			if s.cpu.v2 {
				if parseFlatKeyed(b, cpuKeys, vals[:1]) == 1 {
					ns, ok = vals[0]*1000, true
				}
			} else {
				ns, ok = parseUint(b)
			}
		}
		if ok {
			out.CPUSeconds = float64(ns) / 1e9
			if perSec, ok := s.cpuRate.observe(ns, now); ok {
				out.CPU = perSec / 1e9 // cores
				out.Avail = out.Avail.With(resource.CPU)
			}
		}
	}

	if s.cpu.thr.valid() {
		if b, err := s.read(s.cpu.thr); err == nil {
			if s.cpu.thrV2 {
				if parseFlatKeyed(b, thrKeysV2, vals[:1]) == 1 {
					out.CPUThrottledSeconds = float64(vals[0]) / 1e6
				}
			} else if parseFlatKeyed(b, thrKeysV1, vals[:1]) == 1 {
				out.CPUThrottledSeconds = float64(vals[0]) / 1e9
			}
		}
	}

	if s.mem.usage.valid() {
		s.sampleMem(&out, &vals)
	}

	if s.io.f.valid() {
		var ops uint64
		ok := false
		if b, err := s.read(s.io.f); err == nil {
			if s.io.v2 {
				ops, ok = parseV2IOStatOps(b)
			} else {
				ops, ok = parseV1IOServicedTotal(b)
			}
		}
		if ok {
			if perSec, ok := s.ioRate.observe(ops, now); ok {
				out.IOPS = perSec
				out.Avail = out.Avail.With(resource.IO)
			}
		}
	}

	if s.netOn() {
		// A missing entry means the task has sent and received nothing
		// yet: that is a measured zero, not an unknown.
		if _, err := s.net.lookup(&s.netKey, &s.netVal); err == nil {
			in, okIn := s.rxRate.observe(s.netVal.RxBytes, now)
			outR, okOut := s.txRate.observe(s.netVal.TxBytes, now)
			if okIn && okOut {
				out.NetInMbps = in * 8 / bitsPerMb
				out.NetOutMbps = outR * 8 / bitsPerMb
				out.Avail = out.Avail.With(resource.Net)
			}
		}
	}
	return out
}

var (
	cpuKeys   = []string{"usage_usec"}
	thrKeysV1 = []string{"throttled_time"} // ns
	thrKeysV2 = []string{"throttled_usec"}
)

func (s *Sampler) sampleMem(out *resource.Sample, vals *[2]uint64) {
	b, err := s.read(s.mem.usage)
	if err != nil {
		return
	}
	usage, ok := parseUint(b)
	if !ok {
		return
	}
	b, err = s.read(s.mem.stat)
	if err != nil || parseFlatKeyed(b, s.mem.keys, vals[:]) != 3 {
		return
	}
	inactive, rss := vals[0], vals[1]
	s.maxUse = max(s.maxUse, usage)
	peak := s.maxUse
	if s.mem.peak.valid() {
		if b, err := s.read(s.mem.peak); err == nil {
			if p, ok := parseUint(b); ok {
				peak = p
			}
		}
	}
	// Working set as cAdvisor defines it: usage minus the inactive file
	// cache the kernel can reclaim first, clamped at zero (the counters
	// are read at slightly different instants).
	ws := uint64(0)
	if usage > inactive {
		ws = usage - inactive
	}
	out.MemoryMB = float64(ws) / bytesPerMB
	out.RSSMB = float64(rss) / bytesPerMB
	out.PeakMB = float64(peak) / bytesPerMB
	out.Avail = out.Avail.With(resource.Memory)
}

// read returns f's whole content in s.buf, growing it when needed.
func (s *Sampler) read(f statFile) ([]byte, error) {
	for {
		n, err := f.readAt0(s.buf)
		if err != nil {
			return nil, err
		}
		if n < len(s.buf) {
			return s.buf[:n], nil
		}
		if len(s.buf) >= maxBuf {
			return nil, errFileTooLarge
		}
		s.buf = make([]byte, 2*len(s.buf))
	}
}

var errFileTooLarge = errors.New("stat file too large")

// Close closes the stat files. It is idempotent and does not close the
// NetMonitor.
func (s *Sampler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeFiles()
}

func (s *Sampler) closeFiles() error {
	return errors.Join(s.cpu.f.close(), s.cpu.thr.close(), s.mem.usage.close(), s.mem.stat.close(),
		s.mem.peak.close(), s.io.f.close())
}

// rate turns a monotonic counter into a per-second rate between
// observations.
type rate struct {
	prev uint64
	at   time.Time
	ok   bool
}

// observe records counter value v at now and returns its increase per
// second since the previous observation. It reports false on the first
// observation and when now is not after the previous one (keeping the
// older base). A counter that went backwards restarted from zero (a
// forgotten and re-created network entry): its increase is v.
func (r *rate) observe(v uint64, now time.Time) (float64, bool) {
	if !r.ok {
		r.prev, r.at, r.ok = v, now, true
		return 0, false
	}
	dt := now.Sub(r.at)
	if dt <= 0 {
		return 0, false
	}
	d := v - r.prev
	if v < r.prev {
		d = v
	}
	r.prev, r.at = v, now
	return float64(d) / dt.Seconds(), true
}
