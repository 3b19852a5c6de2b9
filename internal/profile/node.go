package profile

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync"
	"time"
)

// NodeSet says which groups of a NodeSample's fields were measured.
type NodeSet uint8

// The groups of NodeSample fields.
const (
	NodeCPU         NodeSet = 1 << iota // Cores, CPUBusy (from the second sample on)
	NodeMemory                          // MemTotalMB, MemAvailableMB
	NodeProcs                           // Runnable, Blocked
	NodeCPUPressure                     // CPUPressure (from the second sample on)
	NodeMemoryPressure
	NodeIOPressure
)

// Has reports whether every group of g is in s.
func (s NodeSet) Has(g NodeSet) bool { return s&g == g }

// Pressure is one PSI resource's stall share over the interval since the
// previous sample: Some is the share of wall time in which at least one
// non-idle task was stalled on the resource, Full the share in which all
// were (0…1; the kernel's system-wide CPU "full" is 0 on most kernels).
type Pressure struct {
	Some, Full float64
}

// NodeSample is one measurement of the whole node — every process, not only
// Prescient's tasks — in resource's units: CPU in cores, memory in MiB.
// Groups not in Avail were not measurable and their fields are meaningless.
type NodeSample struct {
	Time time.Time
	// Cores is the number of CPUs /proc/stat counts; CPUBusy the cores busy
	// (user, nice, system, irq, softirq, steal) over the interval.
	Cores, CPUBusy float64
	// MemTotalMB and MemAvailableMB are /proc/meminfo's MemTotal and
	// MemAvailable (the kernel's estimate of what can be had without
	// swapping).
	MemTotalMB, MemAvailableMB float64
	// Runnable and Blocked are /proc/stat's procs_running (threads runnable
	// now, the sampler included) and procs_blocked (waiting on IO).
	Runnable, Blocked float64
	// Pressure stall information (/proc/pressure), where the kernel has it.
	CPUPressure, MemoryPressure, IOPressure Pressure
	Avail                                   NodeSet
}

// CPUUtil is the busy share of the node's CPUs (0…1); 0 when unknown.
func (s NodeSample) CPUUtil() float64 {
	if !s.Avail.Has(NodeCPU) || s.Cores <= 0 {
		return 0
	}
	return min(max(s.CPUBusy/s.Cores, 0), 1)
}

// MemoryUtil is the share of memory not available (0…1); 0 when unknown.
func (s NodeSample) MemoryUtil() float64 {
	if !s.Avail.Has(NodeMemory) || s.MemTotalMB <= 0 {
		return 0
	}
	return min(max(1-s.MemAvailableMB/s.MemTotalMB, 0), 1)
}

// NodeSampler measures the node from /proc/stat, /proc/meminfo and
// /proc/pressure/{cpu,memory,io}, kept open and re-read from offset 0 on
// every Sample. It is safe for concurrent use; one sampling loop is the
// intended user. Close releases the files.
type NodeSampler struct {
	mu sync.Mutex
	// Guarded by mu:
	closed      bool
	buf         []byte
	stat, mem   statFile
	psi         [3]statFile // cpu, memory, io
	busy, total uint64      // jiffies at the previous sample
	primed      bool
	psiSome     [3]rate // µs stalled
	psiFull     [3]rate
}

// NewNodeSampler opens the files under procDir ("" = /proc). A missing
// file leaves its group out of every sample; it fails only when none of
// /proc/stat and /proc/meminfo can be opened.
func NewNodeSampler(procDir string) (*NodeSampler, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	n := &NodeSampler{buf: make([]byte, initialBuf), stat: noFile, mem: noFile, psi: [3]statFile{noFile, noFile, noFile}}
	var err error
	open := func(f *statFile, rel string) {
		if err != nil {
			return
		}
		*f, err = openOptional(filepath.Join(procDir, rel))
	}
	open(&n.stat, "stat")
	open(&n.mem, "meminfo")
	for i, name := range []string{"cpu", "memory", "io"} {
		open(&n.psi[i], filepath.Join("pressure", name))
	}
	if err == nil && !n.stat.valid() && !n.mem.valid() {
		err = ErrNoSource
	}
	if err != nil {
		_ = n.closeFiles()
		return nil, err
	}
	return n, nil
}

// Sample measures the node at now (from time.Now). CPU busy and pressure
// are shares of the interval since the previous call, so the first call
// leaves them out of Avail. Sample does not allocate.
func (n *NodeSampler) Sample(now time.Time) NodeSample {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := NodeSample{Time: now}
	if n.closed {
		return out
	}
	if n.stat.valid() {
		if b, err := n.read(n.stat); err == nil {
			st, ok := parseProcStat(b)
			if ok.Has(NodeCPU) {
				if n.primed && st.total > n.total && st.busy >= n.busy {
					out.Cores = float64(st.cores)
					out.CPUBusy = float64(st.busy-n.busy) / float64(st.total-n.total) * out.Cores
					out.Avail |= NodeCPU
				}
				n.busy, n.total, n.primed = st.busy, st.total, true
			}
			if ok.Has(NodeProcs) {
				out.Runnable, out.Blocked = float64(st.running), float64(st.blocked)
				out.Avail |= NodeProcs
			}
		}
	}
	if n.mem.valid() {
		if b, err := n.read(n.mem); err == nil {
			if total, avail, ok := parseMeminfo(b); ok {
				out.MemTotalMB, out.MemAvailableMB = float64(total)/1024, float64(avail)/1024
				out.Avail |= NodeMemory
			}
		}
	}
	for i, p := range [3]*Pressure{&out.CPUPressure, &out.MemoryPressure, &out.IOPressure} {
		if !n.psi[i].valid() {
			continue
		}
		b, err := n.read(n.psi[i])
		if err != nil {
			continue
		}
		some, full, ok := parsePSI(b)
		if !ok {
			continue
		}
		s, ok1 := n.psiSome[i].observe(some, now)
		f, ok2 := n.psiFull[i].observe(full, now)
		if ok1 && ok2 {
			p.Some, p.Full = min(s/1e6, 1), min(f/1e6, 1)
			out.Avail |= NodeCPUPressure << i
		}
	}
	return out
}

// read returns f's whole content in n.buf, growing it when needed.
func (n *NodeSampler) read(f statFile) ([]byte, error) {
	for {
		k, err := f.readAt0(n.buf)
		if err != nil {
			return nil, err
		}
		if k < len(n.buf) {
			return n.buf[:k], nil
		}
		if len(n.buf) >= maxBuf {
			return nil, errFileTooLarge
		}
		n.buf = make([]byte, 2*len(n.buf))
	}
}

// Close closes the files. It is idempotent.
func (n *NodeSampler) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	return n.closeFiles()
}

func (n *NodeSampler) closeFiles() error {
	return errors.Join(n.stat.close(), n.mem.close(), n.psi[0].close(), n.psi[1].close(), n.psi[2].close())
}

// procStat is what Sample takes from /proc/stat.
type procStat struct {
	busy, total      uint64 // jiffies of the aggregate "cpu" line
	cores            int    // "cpuN" lines
	running, blocked uint64
}

// parseProcStat reads /proc/stat: the aggregate cpu line (user nice
// system idle iowait irq softirq steal …; busy = all but idle and iowait;
// guest time is already in user), the cpuN lines (counted) and
// procs_running/procs_blocked. ok has NodeCPU when the cpu line parsed
// with at least four fields and NodeProcs when both procs lines did.
func parseProcStat(b []byte) (st procStat, ok NodeSet) {
	procs := 0
	for i := 0; i < len(b); {
		var line []byte
		line, i = nextLine(b, i)
		switch {
		case len(line) > 4 && string(line[:4]) == "cpu ":
			var f [8]uint64
			k := 0
			for rest := line[4:]; k >= 0 && k < len(f); {
				var w []byte
				if w, rest = nextField(rest); w == nil {
					break
				}
				v, good := parseUint(w)
				if !good {
					k = -1
					break
				}
				f[k] = v
				k++
			}
			if k < 4 {
				continue
			}
			idle := f[3] + f[4]
			var total uint64
			for _, v := range f[:k] {
				total += v
			}
			st.busy, st.total = total-idle, total
			ok |= NodeCPU
		case len(line) > 3 && string(line[:3]) == "cpu" && line[3] >= '0' && line[3] <= '9':
			st.cores++
		case bytes.HasPrefix(line, []byte("procs_running ")):
			if v, good := parseUint(line[len("procs_running "):]); good {
				st.running = v
				procs |= 1
			}
		case bytes.HasPrefix(line, []byte("procs_blocked ")):
			if v, good := parseUint(line[len("procs_blocked "):]); good {
				st.blocked = v
				procs |= 2
			}
		}
	}
	if st.cores == 0 {
		ok &^= NodeCPU
	}
	if procs == 3 {
		ok |= NodeProcs
	}
	return st, ok
}

// parseMeminfo returns MemTotal and MemAvailable of /proc/meminfo, in kB
// ("MemTotal:       24683748 kB").
func parseMeminfo(b []byte) (total, avail uint64, ok bool) {
	found := 0
	for i := 0; i < len(b) && found != 3; {
		var line []byte
		line, i = nextLine(b, i)
		var dst *uint64
		var bit int
		switch {
		case bytes.HasPrefix(line, []byte("MemTotal:")):
			dst, bit, line = &total, 1, line[len("MemTotal:"):]
		case bytes.HasPrefix(line, []byte("MemAvailable:")):
			dst, bit, line = &avail, 2, line[len("MemAvailable:"):]
		default:
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB"))
		if v, good := parseUint(line); good {
			*dst = v
			found |= bit
		}
	}
	return total, avail, found == 3
}

// parsePSI returns the total= counters (µs) of the "some" and "full"
// lines of a /proc/pressure file. A file without a full line (the cpu file
// before Linux 5.13) reads full as 0.
func parsePSI(b []byte) (some, full uint64, ok bool) {
	haveSome := false
	for i := 0; i < len(b); {
		var line []byte
		line, i = nextLine(b, i)
		var dst *uint64
		switch {
		case bytes.HasPrefix(line, []byte("some ")):
			dst = &some
		case bytes.HasPrefix(line, []byte("full ")):
			dst = &full
		default:
			continue
		}
		j := bytes.Index(line, []byte(" total="))
		if j < 0 {
			return 0, 0, false
		}
		v, good := parseUint(line[j+len(" total="):])
		if !good {
			return 0, 0, false
		}
		*dst = v
		if dst == &some {
			haveSome = true
		}
	}
	return some, full, haveSome
}

// nextField returns the first space-separated field of b (nil if none) and
// the rest after it.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	if i == len(b) {
		return nil, nil
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}
