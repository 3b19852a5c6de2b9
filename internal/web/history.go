package web

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// Dims are the node's dimensions as the API keys them, in display order.
var Dims = []string{"cpu", "memory", "iops", "net"}

// nodePoint is the node at one time: the scheduler's view per dimension
// and the machine's own load (all its processes, not only tasks').
type nodePoint struct {
	t                                    time.Time
	capacity, committed, soft, used      [4]float64
	machineCPU, machineMemory, loadavg1m float64 // cores busy, MiB used; NaN: unknown
}

// history is a ring of the node's recent points. Safe for concurrent
// use: mu guards the fields after it.
type history struct {
	mu   sync.Mutex
	pts  []nodePoint // ring, len ≤ cap(pts)
	next int         // where the next point goes once full
	cpu  cpuTimes    // the previous /proc/stat reading
}

func newHistory(n int) *history { return &history{pts: make([]nodePoint, 0, n)} }

func (h *history) add(p nodePoint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pts) < cap(h.pts) {
		h.pts = append(h.pts, p)
		return
	}
	h.pts[h.next] = p
	h.next = (h.next + 1) % len(h.pts)
}

// snapshot returns the points, oldest first.
func (h *history) snapshot() []nodePoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]nodePoint, 0, len(h.pts))
	out = append(out, h.pts[h.next:]...)
	return append(out, h.pts[:h.next]...)
}

// record takes one point from n and the machine.
func (h *history) record(now time.Time, n api.NodeStatus) {
	p := nodePoint{t: now, machineCPU: math.NaN(), machineMemory: math.NaN(), loadavg1m: math.NaN()}
	for i, k := range Dims {
		u := n.Dims[k]
		p.capacity[i], p.committed[i], p.soft[i], p.used[i] = u.Capacity, u.Committed, u.SoftReserved, u.Used
	}
	if n.Dims == nil { // fit policy before Dims existed: CPU and memory only
		p.capacity[0], p.capacity[1] = n.Capacity.CPUCores, n.Capacity.MemoryMB
		p.committed[0], p.committed[1] = n.Used.CPUCores, n.Used.MemoryMB
	}
	if ct, err := readCPUTimes(); err == nil {
		h.mu.Lock()
		if prev := h.cpu; prev.at.After(time.Time{}) {
			if dt := ct.at.Sub(prev.at).Seconds(); dt > 0 {
				p.machineCPU = (ct.busy - prev.busy) / clockTicks / dt
			}
		}
		h.cpu = ct
		h.mu.Unlock()
	}
	p.machineMemory = machineMemoryMB()
	p.loadavg1m = loadavg1m()
	h.add(p)
}

// cpuTimes is the machine's busy CPU time from /proc/stat, in ticks.
type cpuTimes struct {
	at   time.Time
	busy float64
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go runs on.
const clockTicks = 100

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, os.ErrInvalid
	}
	var busy float64
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		busy += v
	}
	return cpuTimes{at: time.Now(), busy: busy}, nil
}

// machineMemoryMB is MemTotal − MemAvailable, in MiB; NaN when unknown.
func machineMemoryMB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	var total, avail float64 = -1, -1
	sc := bufio.NewScanner(f)
	for sc.Scan() && (total < 0 || avail < 0) {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		switch k {
		case "MemTotal":
			total = kb
		case "MemAvailable":
			avail = kb
		}
	}
	if total < 0 || avail < 0 {
		return math.NaN()
	}
	return (total - avail) / 1024
}

func loadavg1m() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}
