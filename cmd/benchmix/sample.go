package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// nodeSample is one reading of the whole machine.
type nodeSample struct {
	T         time.Time
	Busy      uint64 // jiffies not idle and not iowait, since boot (all CPUs)
	Total     uint64 // all jiffies since boot (user..steal)
	MemUsedKB uint64 // MemTotal - MemAvailable
}

var errParse = errors.New("benchmix: unexpected /proc format")

// parseStat reads the busy and total jiffies from the aggregate "cpu" line
// of /proc/stat: user nice system idle iowait irq softirq steal; busy is
// all but idle and iowait.
func parseStat(b []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: %w", errParse)
	}
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(string(f[i+1]), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", errParse)
		}
		total += v[i]
	}
	return total - v[3] - v[4], total, nil
}

// parseMeminfo returns MemTotal and MemTotal - MemAvailable in kB.
func parseMeminfo(b []byte) (totalKB, usedKB uint64, err error) {
	var avail uint64
	var got int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		var dst *uint64
		switch string(f[0]) {
		case "MemTotal:":
			dst = &totalKB
		case "MemAvailable:":
			dst = &avail
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(string(f[1]), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/meminfo: %w", errParse)
		}
		got++
	}
	if got != 2 || avail > totalKB {
		return 0, 0, fmt.Errorf("/proc/meminfo: %w", errParse)
	}
	return totalKB, totalKB - avail, nil
}

// readNode takes one sample of the machine from /proc.
func readNode() (nodeSample, error) {
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nodeSample{}, err
	}
	mi, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nodeSample{}, err
	}
	s := nodeSample{T: time.Now()}
	if s.Busy, s.Total, err = parseStat(st); err != nil {
		return s, err
	}
	_, s.MemUsedKB, err = parseMeminfo(mi)
	return s, err
}

// sampler reads the machine every interval in its own goroutine, from
// Start until Stop. Stop is idempotent, waits for the goroutine and returns
// the samples; a failed read is skipped.
type sampler struct {
	read     func() (nodeSample, error)
	interval time.Duration

	stop context.CancelFunc
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	samples []nodeSample // guarded by mu
}

// startSampler starts sampling with read (readNode when nil) every interval.
func startSampler(read func() (nodeSample, error), interval time.Duration) *sampler {
	if read == nil {
		read = readNode
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{read: read, interval: interval, stop: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

func (s *sampler) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if ns, err := s.read(); err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, ns)
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop ends sampling and returns every sample taken.
func (s *sampler) Stop() []nodeSample {
	s.once.Do(func() {
		s.stop()
		<-s.done
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]nodeSample(nil), s.samples...)
}

// writeSamples writes samples as "unix_time busy total mem_used_kb" lines,
// the shared harness's samples.tsv format.
func writeSamples(w io.Writer, samples []nodeSample) error {
	bw := bufio.NewWriter(w)
	for _, s := range samples {
		fmt.Fprintf(bw, "%.3f %d %d %d\n", float64(s.T.UnixNano())/1e9, s.Busy, s.Total, s.MemUsedKB)
	}
	return bw.Flush()
}
