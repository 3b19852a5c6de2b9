package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The node's IO and network capacity, what the scheduler accounts tasks'
// IO ops/s and Mbps against. Neither the disk nor (in a VM) the NIC says
// what it sustains, so the daemon measures the disk once and reads the
// NIC's link speed where the kernel knows it; the serve flags
// --io-capacity and --net-capacity override both.

// ioProbe* shape the disk measurement: ioProbeReaders concurrent 4 KiB
// random reads with O_DIRECT (the page cache would measure memory) over a
// file of ioProbeFileMB, for ioProbeTime. Hand-written rather than fio,
// which is not on every node; it is a sizing figure, not a benchmark.
const (
	ioProbeReaders = 8
	ioProbeFileMB  = 64
	ioProbeTime    = 300 * time.Millisecond
	ioProbeBlock   = 4096
	ioCacheFile    = "node-io.json"
)

// ioCache is what ioCacheFile keeps: the measurement, and the device it
// was made on (a state directory moved to another disk measures again).
type ioCache struct {
	Dev      uint64    `json:"dev"`
	OpsPerS  float64   `json:"ops_per_s"`
	Measured time.Time `json:"measured"`
}

// measuredIOPS memoizes nodeIOPS's measurements by device for the
// process (tests make many daemons on fresh state directories).
var measuredIOPS sync.Map

// nodeIOPS is the random-read IO ops/s the device holding dir sustains,
// measured once and kept in dir/node-io.json; and where the figure came
// from. On any failure (a file system without O_DIRECT, say) it returns
// DefaultIOPS and says why.
func nodeIOPS(dir string) (float64, string) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return DefaultIOPS, fmt.Sprintf("default: %v", err)
	}
	if v, ok := measuredIOPS.Load(st.Dev); ok {
		return v.(float64), "measured on this device earlier in this process"
	}
	cache := filepath.Join(dir, ioCacheFile)
	if b, err := os.ReadFile(cache); err == nil {
		var c ioCache
		if json.Unmarshal(b, &c) == nil && c.Dev == st.Dev && c.OpsPerS > 0 {
			return c.OpsPerS, fmt.Sprintf("measured %s (%s)", c.Measured.UTC().Format(time.RFC3339), cache)
		}
	}
	ops, err := measureIOPS(dir)
	if err != nil {
		return DefaultIOPS, fmt.Sprintf("default: measuring failed: %v", err)
	}
	measuredIOPS.Store(st.Dev, ops)
	c := ioCache{Dev: st.Dev, OpsPerS: ops, Measured: time.Now()}
	if b, err := json.Marshal(c); err == nil {
		_ = os.WriteFile(cache, b, 0o644) // measured again next start if this fails
	}
	return ops, "measured now"
}

// measureIOPS writes a probe file under dir, reads random blocks of it
// directly for ioProbeTime and removes it.
func measureIOPS(dir string) (float64, error) {
	f, err := os.CreateTemp(dir, ".io-probe-*")
	if err != nil {
		return 0, err
	}
	name := f.Name()
	defer os.Remove(name)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9) // real data: a hole would be read as zeros without IO
	}
	for range ioProbeFileMB {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	f.Close()
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open with O_DIRECT: %w", err)
	}
	defer unix.Close(fd)
	blocks := int64(ioProbeFileMB << 20 / ioProbeBlock)
	var ops atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(ioProbeTime)
	var wg sync.WaitGroup
	for r := range ioProbeReaders {
		wg.Go(func() {
			// O_DIRECT needs a buffer aligned to the block: an anonymous
			// mapping is page-aligned.
			b, err := unix.Mmap(-1, 0, ioProbeBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
			if err != nil {
				once.Do(func() { firstErr = err })
				return
			}
			defer unix.Munmap(b)
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for time.Now().Before(deadline) {
				if _, err := unix.Pread(fd, b, rng.Int64N(blocks)*ioProbeBlock); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if ops.Load() == 0 {
		return 0, errors.New("no read completed")
	}
	return float64(ops.Load()) / ioProbeTime.Seconds(), nil
}

// nodeNetMbps is the sum of the link speeds of the node's physical network
// interfaces that are up, as the kernel reports them under sysClassNet
// (/sys/class/net); and where the figure came from. Virtual interfaces
// (no device: bridges, veth, tunnels) and links of unknown speed (-1, as
// virtio NICs say) do not count; with none left it is DefaultNetMbps.
func nodeNetMbps(sysClassNet string) (float64, string) {
	ents, err := os.ReadDir(sysClassNet)
	if err != nil {
		return DefaultNetMbps, fmt.Sprintf("default: %v", err)
	}
	var sum float64
	var used []string
	for _, e := range ents {
		d := filepath.Join(sysClassNet, e.Name())
		if _, err := os.Stat(filepath.Join(d, "device")); err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "operstate")); err != nil || strings.TrimSpace(string(b)) != "up" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "speed"))
		if err != nil {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && v > 0 {
			sum += v
			used = append(used, fmt.Sprintf("%s %g", e.Name(), v))
		}
	}
	if sum == 0 {
		return DefaultNetMbps, "default: no physical interface up reports its link speed"
	}
	return sum, "link speed: " + strings.Join(used, ", ")
}
