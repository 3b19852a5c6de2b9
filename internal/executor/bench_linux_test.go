//go:build linux

package executor

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/task"
)

// firstWrite signals on the first byte written to it.
type firstWrite struct {
	once sync.Once
	ch   chan struct{}
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.ch) })
	return len(p), nil
}

// BenchmarkLaunch measures the time from asking for a task to its first
// instruction's effect (echo writing its first byte), for a bare
// exec.Cmd and for Executor.Start with limits in every dimension the host
// supports (cgroup creation, limit writes and placement included; Wait and
// Close are not timed). Compare the p50-µs metrics of the two, or read the
// overhead straight from "paired", which alternates them.
func BenchmarkLaunch(b *testing.B) {
	echo, err := exec.LookPath("echo")
	if err != nil {
		b.Skip("no echo")
	}
	lim := task.Limits{CPUCores: 1, MemoryMB: 256, Pids: 64}
	b.Run("bare", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			lat = append(lat, launchBare(b, echo))
		}
		reportPercentiles(b, "", lat)
	})
	b.Run("prescient", func(b *testing.B) {
		e := newReal(b, Config{})
		lat := make([]time.Duration, 0, b.N)
		for i := range b.N {
			lat = append(lat, launchPrescient(b, e, "bench-"+strconv.Itoa(i), echo, lim))
		}
		reportPercentiles(b, "", lat)
	})
	// paired alternates the two, so that both see the same load from
	// whatever else the host runs, and reports the overhead per pair.
	b.Run("paired", func(b *testing.B) {
		e := newReal(b, Config{})
		var bare, pre, over []time.Duration
		for i := range b.N {
			x := launchBare(b, echo)
			y := launchPrescient(b, e, "pair-"+strconv.Itoa(i), echo, lim)
			bare, pre, over = append(bare, x), append(pre, y), append(over, y-x)
		}
		reportPercentiles(b, "bare-", bare)
		reportPercentiles(b, "prescient-", pre)
		reportPercentiles(b, "overhead-", over)
	})
}

// launchBare times exec.Cmd.Start to the first byte from echo; only that
// is on the benchmark timer.
func launchBare(b *testing.B, echo string) time.Duration {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(echo, "x")
	cmd.Stdout = w
	buf := make([]byte, 1)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if _, err := r.Read(buf); err != nil {
		b.Fatal(err)
	}
	d := time.Since(t0)
	b.StopTimer()
	w.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	r.Close()
	b.StartTimer()
	return d
}

// launchPrescient times Executor.Start to the first byte from echo.
func launchPrescient(b *testing.B, e *Executor, id, echo string, lim task.Limits) time.Duration {
	fw := &firstWrite{ch: make(chan struct{})}
	t0 := time.Now()
	p, err := e.Start(context.Background(), StartOptions{ID: id, Argv: []string{echo, "x"}, Stdout: fw, Limits: lim})
	if err != nil {
		b.Fatal(err)
	}
	<-fw.ch
	d := time.Since(t0)
	b.StopTimer()
	if x, err := p.Wait(); err != nil || x.Code != 0 {
		b.Fatalf("exit %+v, %v", x, err)
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	return d
}

func reportPercentiles(b *testing.B, prefix string, lat []time.Duration) {
	slices.Sort(lat)
	q := func(f float64) float64 {
		return float64(lat[int(f*float64(len(lat)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0.5), prefix+"p50-µs")
	b.ReportMetric(q(0.9), prefix+"p90-µs")
}
