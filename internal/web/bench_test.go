package web_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// seed writes a history into a state directory before a daemon opens it:
// n ended runs over sigs signatures, each with samples 1 s apart (fixed
// seed), as the daemon would have recorded them. It returns the ids,
// oldest first.
func seed(b testing.TB, state string, n, sigs, samples int) []string {
	b.Helper()
	st, err := store.Open(state)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now().Add(-time.Duration(n*samples+3600) * time.Second).Truncate(time.Second)
	var ids []string
	var recs []*task.Record
	for i := range n {
		id := store.NewID()
		sig := fmt.Sprintf("%064x", i%sigs)
		start := t0.Add(time.Duration(i*samples) * time.Second)
		end := start.Add(time.Duration(samples) * time.Second)
		ss := make([]resource.Sample, samples)
		base := 50 + rng.Float64()*200
		for k := range ss {
			ss[k] = resource.Sample{Time: start.Add(time.Duration(k+1) * time.Second), CPU: 0.2 + 0.6*rng.Float64(),
				MemoryMB: base + float64(k%300)/3 + 10*rng.Float64(), IOPS: 100 * rng.Float64(),
				Avail: resource.Set(0).With(resource.CPU).With(resource.Memory).With(resource.IO)}
		}
		if err := st.Samples.Append(id, sig, ss...); err != nil {
			b.Fatal(err)
		}
		code := 0
		st, en := start, end
		r := &task.Record{ID: id, Signature: sig, State: task.Succeeded, ExitCode: &code, SubmittedAt: start, StartedAt: &st, FinishedAt: &en,
			DurationS: float64(samples), Samples: samples,
			Spec: task.Spec{Argv: []string{"/usr/bin/make", "-j2", "target-" + strconv.Itoa(i%sigs)}, Dir: "/tmp"}}
		r.Peak, r.Mean = task.StatsOf(resource.Summarize(ss))
		recs = append(recs, r)
		ids = append(ids, id)
	}
	if err := st.Tasks.PutBatch(recs); err != nil {
		b.Fatal(err)
	}
	return ids
}

// seededDaemon starts a daemon on a state directory seeded with history.
func seededDaemon(b *testing.B, n, sigs, samples int, args ...string) (*daemon, []string) {
	if skipDaemon != "" {
		b.Skip(skipDaemon)
	}
	dir := b.TempDir()
	state := filepath.Join(dir, "seed")
	ids := seed(b, state, n, sigs, samples)
	d := startDaemon(b, append([]string{"--state-dir", state}, args...)...)
	return d, ids
}

// BenchmarkFirstPaint measures each page of the dashboard in headless
// Chromium on a daemon with 1,000 tasks in its history (50 signatures,
// 60 samples each): from navigation to the page rendered with its data
// (ms-to-ready) and the browser's first contentful paint (fcp-ms).
// Target: first paint ≤ 1 s. Run with -benchtime=5x.
func BenchmarkFirstPaint(b *testing.B) {
	d, _ := seededDaemon(b, 1000, 50, 60)
	url, base := d.dashboard()
	ctx := browser(b)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil { // the cookie
		b.Fatal(err)
	}
	for _, page := range []string{"node", "tasks", "signatures", "queue"} {
		b.Run("page="+page, func(b *testing.B) {
			var ready, fcp time.Duration
			for range b.N {
				if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard/#/"+page)); err != nil {
					b.Fatal(err)
				}
				if err := waitReady(ctx, page); err != nil {
					b.Fatal(err)
				}
				ready += time.Since(t0)
				ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`))
				if err != nil {
					b.Fatal(err)
				}
				fcp += time.Duration(ms * float64(time.Millisecond))
				if os.Getenv("PRESCIENT_BENCH_DEBUG") != "" {
					v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([performance.getEntriesByType('navigation').map(e=>({rs:e.responseStart|0, re:e.responseEnd|0, dcl:e.domContentLoadedEventEnd|0})), performance.getEntriesByType('resource').map(e=>[e.name.slice(-24), e.startTime|0, e.responseEnd|0])])`))
					fmt.Fprintf(os.Stderr, "DBG %s %v\n", page, v)
				}
			}
			b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-to-ready")
			b.ReportMetric(float64(fcp.Microseconds())/1000/float64(b.N), "fcp-ms")
		})
	}
}

// BenchmarkTaskPage measures the task page of a one-hour task sampled
// every second (3,600 samples): the data request alone over the unix
// socket (the TSDB query, the JSON and its transfer: ns/op), and in
// Chromium from navigation to the charts drawn (ms-to-ready). Target:
// ≤ 300 ms.
func BenchmarkTaskPage(b *testing.B) {
	d, ids := seededDaemon(b, 1, 1, 3600)
	id := ids[0]
	b.Run("request", func(b *testing.B) {
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		}}}
		var size int64
		b.ResetTimer()
		for range b.N {
			resp, err := hc.Get("http://d/v1/dashboard/task/" + id)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			size = n
		}
		b.ReportMetric(float64(size)/1024, "reply-KiB")
	})
	b.Run("browser", func(b *testing.B) {
		if skipBrowser != "" {
			b.Skip(skipBrowser)
		}
		url, base := d.dashboard()
		ctx := browser(b)
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			b.Fatal(err)
		}
		var ready time.Duration
		var fetch, render, nav float64
		for range b.N {
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard/#/task/"+id)); err != nil {
				b.Fatal(err)
			}
			if err := waitReady(ctx, "task"); err != nil {
				b.Fatal(err)
			}
			ready += time.Since(t0)
			tm, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
				Samples                        int
				Fetch, Render, SinceNavigation float64
			}](`({Samples: window.prescient.task.samples, Fetch: window.prescient.timing.fetch_ms, Render: window.prescient.timing.render_ms, SinceNavigation: window.prescient.timing.since_navigation_ms})`))
			if err != nil || tm.Samples != 3600 {
				b.Fatalf("page shows %d samples (%v), want 3600", tm.Samples, err)
			}
			fetch += tm.Fetch
			render += tm.Render
			nav += tm.SinceNavigation
			if os.Getenv("PRESCIENT_BENCH_DEBUG") != "" {
				v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([performance.getEntriesByType('navigation').map(e=>({rs:e.responseStart|0, re:e.responseEnd|0, dcl:e.domContentLoadedEventEnd|0})), performance.getEntriesByType('resource').map(e=>[e.name.slice(-24), e.startTime|0, e.responseEnd|0])])`))
				fmt.Fprintf(os.Stderr, "DBG task %v fetch %.0f render %.0f nav %.0f\n", v, tm.Fetch, tm.Render, tm.SinceNavigation)
			}
		}
		b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-to-ready")
		b.ReportMetric(fetch/float64(b.N), "fetch-ms")
		b.ReportMetric(render/float64(b.N), "render-ms")
		b.ReportMetric(nav/float64(b.N), "page-ms")
	})
}

// BenchmarkIdle measures the daemon's CPU and RSS over 30 s with one task
// running (sampled every second) and either 1,000 tasks queued (the state
// of the daemon's own BenchmarkIdleQueued) or 1,000 ended tasks in its
// history (50 signatures, 60 samples each) and 200 queued; with no
// browser (dashboard=closed) and with Chromium showing the node page
// (which polls every 5 s and holds the event stream) in one tab and the
// queue page in another (dashboard=open). Targets with the dashboard
// open: ≤ 0.5 % of a core, ≤ 50 MB RSS. Run with -benchtime=1x.
func BenchmarkIdle(b *testing.B) {
	for _, state := range []string{"queued1000", "history1000"} {
		for _, open := range []bool{false, true} {
			name := fmt.Sprintf("state=%s/dashboard=%s", state, map[bool]string{false: "closed", true: "open"}[open])
			b.Run(name, func(b *testing.B) { benchIdle(b, state, open) })
		}
	}
}

// trimSettle is how long benchIdle lets the daemon settle before it
// measures: past the daemon's first memory trim (a minute after start;
// internal/daemon/trim.go), so the figure is its idle state, not the
// start-up's peak.
const trimSettle = 65 * time.Second

func benchIdle(b *testing.B, state string, open bool) {
	var d *daemon
	queued := 1000
	if state == "history1000" {
		d, _ = seededDaemon(b, 1000, 50, 60, "--cpu", "0.05")
		queued = 200
	} else {
		d = startDaemon(b, "--cpu", "0.05")
	}
	ctx := context.Background()
	blocker, err := d.c.Submit(ctx, api.SubmitRequest{Spec: api.Spec{Argv: []string{"sleep", "3600"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/tmp"},
		Requests: &api.Limits{CPUCores: 0.05, MemoryMB: 16}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = d.c.Cancel(context.Background(), blocker.ID) })
	for range queued {
		d.submit(&api.Limits{CPUCores: 0.05, MemoryMB: 16}, "true")
	}
	if open {
		url, base := d.dashboard()
		pctx := browser(b)
		if err := chromedp.Do(pctx, chromedp.Navigate(url)); err != nil {
			b.Fatal(err)
		}
		qctx, cancel := chromedp.NewContext(pctx) // a second tab
		defer cancel()
		if err := chromedp.Do(qctx, chromedp.Navigate(base+"/dashboard/#/queue")); err != nil {
			b.Fatal(err)
		}
		if err := waitReady(pctx, "node"); err != nil {
			b.Fatal(err)
		}
	}
	pid := d.cmd.Process.Pid
	time.Sleep(trimSettle) // the submits garbage collected, and the daemon trimmed
	b.ResetTimer()
	for range b.N {
		t0, c0 := time.Now(), procTicks(b, pid)
		time.Sleep(30 * time.Second)
		c1, t1 := procTicks(b, pid), time.Now()
		b.ReportMetric(100*float64(c1-c0)/100/t1.Sub(t0).Seconds(), "cpu%")
		b.ReportMetric(procStatusMB(b, pid, "VmRSS"), "rss-MB")
		b.ReportMetric(procStatusMB(b, pid, "RssAnon"), "rss-anon-MB")
	}
}

func procTicks(b *testing.B, pid int) int64 {
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

// procStatusMB reads a field in kB of /proc/<pid>/status, in MB (VmRSS;
// RssAnon, the part not backed by files: the heap, not the store's mmaps).
func procStatusMB(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb / 1024
		}
	}
	return 0
}
