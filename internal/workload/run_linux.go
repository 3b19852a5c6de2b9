//go:build linux

package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	pageSize   = 4096
	ioBlock    = 4096
	ioFileSize = 8 << 20 // bytes the IO phase reads and writes within
	cpuPeriod  = 10 * time.Millisecond
	netTick    = 10 * time.Millisecond
)

// Options tune Run.
type Options struct {
	Dir string    // where the IO file lives (must be on a block device for IO to count); default os.TempDir()
	Log io.Writer // one line per phase; nil = quiet
}

// Run plays the script, then releases everything it holds. It returns early,
// with ctx.Err(), when ctx is cancelled.
func Run(ctx context.Context, s Script, o Options) error {
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	var needIO, needNet bool
	for _, p := range s {
		needIO = needIO || p.IOPS > 0
		needNet = needNet || p.NetMbps > 0
	}
	var iof *ioFile
	if needIO {
		f, err := openIOFile(o.Dir)
		if err != nil {
			return err
		}
		defer f.close()
		iof = f
	}
	var peer *loopPeer
	if needNet {
		lp, err := startPeer()
		if err != nil {
			return err
		}
		defer lp.close()
		peer = lp
	}
	var mem memory
	defer mem.release()
	for i, p := range s {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "workload: phase %d/%d for %v: cpu=%g mem=%gMB iops=%g net=%gMbps\n",
				i+1, len(s), p.Dur, p.CPU, p.MemoryMB, p.IOPS, p.NetMbps)
		}
		if err := mem.hold(p.MemoryMB); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, p.Dur)
		var wg sync.WaitGroup
		errc := make(chan error, 3)
		if p.CPU > 0 {
			n := int(p.CPU)
			if float64(n) < p.CPU {
				n++
			}
			frac := p.CPU / float64(n)
			for range n {
				wg.Go(func() { burn(pctx, frac) })
			}
		}
		if p.IOPS > 0 {
			wg.Go(func() { errc <- iof.run(pctx, p.IOPS) })
		}
		if p.NetMbps > 0 {
			wg.Go(func() { errc <- peer.send(pctx, p.NetMbps) })
		}
		<-pctx.Done()
		cancel()
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// burn keeps one OS thread busy for frac of every cpuPeriod, measured in the
// thread's own CPU time so the duty cycle holds even when the machine is
// contended.
func burn(ctx context.Context, frac float64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	busy := time.Duration(frac * float64(cpuPeriod))
	for ctx.Err() == nil {
		periodEnd := time.Now().Add(cpuPeriod)
		start := threadCPU()
		for threadCPU()-start < busy && time.Now().Before(periodEnd) {
			// Reading the thread's CPU clock is itself the busy work.
		}
		if d := time.Until(periodEnd); d > 0 {
			time.Sleep(d)
		}
	}
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// memory holds an anonymous mapping whose every page is touched, so it is
// resident; mmap (not the Go heap) makes the amount exact and lets it be
// returned at once. A phase's mem is the whole process's anonymous resident
// memory: the mapping tops up what the process already holds (its runtime
// and heap — tens of MB for a race-built test binary), so the curve a
// profiler measures is the scripted one, not script + overhead.
type memory struct{ b []byte }

func (m *memory) hold(mb float64) error {
	want := 0
	if mb > 0 {
		base := residentBytes() - len(m.b)
		want = max(0, int(mb*(1<<20))-base) / pageSize * pageSize
	}
	if want == len(m.b) {
		return nil
	}
	m.release()
	if want == 0 {
		return nil
	}
	b, err := unix.Mmap(-1, 0, want, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("workload: map %g MB: %w", mb, err)
	}
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
	m.b = b
	return nil
}

// residentBytes is the process's anonymous resident memory (resident minus
// file-backed pages, from /proc/self/statm), or 0 when it cannot be read
// (then the mapping is the whole amount). File pages are left out: the
// binary's pages are usually already cached and charged to whoever read
// them first, not to the task's cgroup.
func residentBytes() int {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident, shared int
	if _, err := fmt.Sscan(string(b), &size, &resident, &shared); err != nil {
		return 0
	}
	return max(0, resident-shared) * os.Getpagesize()
}

func (m *memory) release() {
	if m.b != nil {
		_ = unix.Munmap(m.b)
		m.b = nil
	}
}

// ioFile does 4 KiB O_DIRECT reads and writes, which bypass the page cache
// so every operation reaches the block layer (and the task's blkio/io
// cgroup) in the task's own context.
type ioFile struct {
	f    *os.File
	path string
	buf  []byte
	rng  *rand.Rand
}

func openIOFile(dir string) (*ioFile, error) {
	path := filepath.Join(dir, fmt.Sprintf(".prescient-workload-%d", os.Getpid()))
	// Fill the file with real blocks first (reads of unwritten extents issue no IO).
	if err := func() error {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		for off := 0; off < ioFileSize; off += len(chunk) {
			if _, err := f.Write(chunk); err != nil {
				return err
			}
		}
		return f.Sync()
	}(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("workload: io file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("workload: open %s with O_DIRECT: %w", path, err)
	}
	buf, err := unix.Mmap(-1, 0, ioBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS) // page aligned, as O_DIRECT needs
	if err != nil {
		f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("workload: io buffer: %w", err)
	}
	return &ioFile{f: f, path: path, buf: buf, rng: rand.New(rand.NewPCG(1, 2))}, nil
}

func (f *ioFile) run(ctx context.Context, iops float64) error {
	interval := time.Duration(float64(time.Second) / iops)
	start := time.Now()
	for k := 0; ; k++ {
		next := start.Add(time.Duration(k) * interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			return nil
		}
		off := int64(f.rng.IntN(ioFileSize/ioBlock)) * ioBlock
		var err error
		if k%2 == 0 {
			_, err = f.f.ReadAt(f.buf, off)
		} else {
			_, err = f.f.WriteAt(f.buf, off)
		}
		if err != nil {
			return fmt.Errorf("workload: io at %d: %w", off, err)
		}
	}
}

func (f *ioFile) close() {
	f.f.Close()
	_ = unix.Munmap(f.buf)
	_ = os.Remove(f.path)
}

// loopPeer is a TCP receiver on 127.0.0.1 and a connection to it.
type loopPeer struct {
	ln   net.Listener
	conn net.Conn
	done chan struct{}
}

func startPeer() (*loopPeer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("workload: listen: %w", err)
	}
	p := &loopPeer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("workload: dial peer: %w", err)
	}
	p.conn = conn
	return p, nil
}

func (p *loopPeer) send(ctx context.Context, mbps float64) error {
	perTick := mbps * 1e6 / 8 * netTick.Seconds()
	buf := make([]byte, 64<<10)
	t := time.NewTicker(netTick)
	defer t.Stop()
	start := time.Now()
	var sent float64
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			// Send what the elapsed time allows, so a late tick catches up.
			owed := perTick*float64(now.Sub(start))/float64(netTick) - sent
			for owed >= 1 {
				n := min(int(owed), len(buf))
				w, err := p.conn.Write(buf[:n])
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return nil
					}
					return fmt.Errorf("workload: send: %w", err)
				}
				sent += float64(w)
				owed -= float64(w)
			}
		}
	}
}

func (p *loopPeer) close() {
	p.conn.Close()
	p.ln.Close()
	<-p.done
}
