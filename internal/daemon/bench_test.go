package daemon_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
)

// blockedEnv starts a daemon whose whole capacity (0.01 core) is held by
// one long task, so everything submitted afterwards stays queued: the
// benchmarks measure the daemon, not the tasks.
func blockedEnv(b *testing.B, args ...string) (*env, *api.Client) {
	needDaemon(b)
	e := newEnv(b, append([]string{"--cpu", "0.01", "--max-queue", "100000000"}, args...)...)
	e.start()
	c := e.client()
	ctx := context.Background()
	blocker := spec("sleep", "3600")
	blocker.Requests = &api.Limits{CPUCores: 0.01, MemoryMB: 1}
	tk, err := c.Submit(ctx, blocker)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = c.Cancel(context.Background(), tk.ID); time.Sleep(200 * time.Millisecond) })
	for {
		got, err := c.Get(ctx, tk.ID)
		if err != nil {
			b.Fatal(err)
		}
		if got.State == api.StateRunning {
			return e, c
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSubmit measures accepted submits per second over the unix
// socket, each durable (fsynced, group-committed) before its reply, from
// 256 concurrent clients (SetParallelism(128) on 2 CPUs).
func BenchmarkSubmit(b *testing.B) {
	e, c := blockedEnv(b)
	req := spec("true")
	req.Requests = &api.Limits{CPUCores: 0.01, MemoryMB: 1}
	b.SetParallelism(128)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := c.Submit(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepted/s")
	b.StopTimer()
	if m := scrape(b, e); m != nil {
		b.ReportMetric(m["prescient_daemon_commit_batch_records_sum"]/m["prescient_daemon_commit_batch_records_count"], "records/commit")
		b.ReportMetric(1000*m["prescient_daemon_commit_seconds_sum"]/m["prescient_daemon_commit_seconds_count"], "ms/commit")
	}
}

// scrape reads the daemon's /metrics into name → value (unlabelled series).
func scrape(b *testing.B, e *env) map[string]float64 {
	hc := &http.Client{Transport: unixTransport(e.socket)}
	resp, err := hc.Get("http://d/metrics")
	if err != nil {
		b.Log(err)
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && !strings.HasPrefix(l, "#") {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out
}

// BenchmarkIdleQueued measures the daemon's CPU and RSS while it holds
// 1,000 queued tasks and one running one, over 30 s (/proc/<pid>/stat and
// status; 30 s makes one clock tick 0.033 % of a core). The running task
// is sampled at the default interval (1 s) and at 200 ms: sampling it is
// most of what the daemon does then. Run it with -benchtime=1x.
func BenchmarkIdleQueued(b *testing.B) {
	for _, iv := range []string{"1s", "200ms"} {
		b.Run("interval="+iv, func(b *testing.B) { benchIdle(b, "--interval", iv) })
	}
}

func benchIdle(b *testing.B, args ...string) {
	e, c := blockedEnv(b, args...)
	ctx := context.Background()
	req := spec("true")
	req.Requests = &api.Limits{CPUCores: 0.01, MemoryMB: 1}
	for range 1000 {
		if _, err := c.Submit(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	pid := e.cmd.Process.Pid
	time.Sleep(2 * time.Second) // let the submits' garbage be collected
	b.ResetTimer()
	for range b.N {
		t0, cpu0 := time.Now(), cpuTicks(b, pid)
		time.Sleep(30 * time.Second)
		cpu1, t1 := cpuTicks(b, pid), time.Now()
		const hz = 100 // USER_HZ
		b.ReportMetric(100*float64(cpu1-cpu0)/hz/t1.Sub(t0).Seconds(), "cpu%")
		b.ReportMetric(rssMB(b, pid), "rss-MB")
	}
}

func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func rssMB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb / 1024
		}
	}
	return 0
}
