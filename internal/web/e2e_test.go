package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prescient-sched/prescient/api"
)

// -screenshots DIR writes a screenshot of each page there (docs/ holds
// the ones the README shows: go test ./internal/web -run TestBrowser
// -screenshots ../../docs).
var screenshots = flag.String("screenshots", "", "write the pages' screenshots into this directory")

// bin is the prescient binary built for these tests; skipDaemon and
// skipBrowser say why a test cannot run here.
var (
	bin                     string
	skipDaemon, skipBrowser string
	chromium                string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	switch {
	case os.Geteuid() != 0:
		skipDaemon = "needs root: the daemon runs tasks in cgroups"
	case !hasCgroups():
		skipDaemon = "no cgroup hierarchy mounted under /sys/fs/cgroup"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		chromium = p
	} else {
		skipBrowser = "no chromium on PATH (Debian's chromium package; make test installs it through scripts/test-deps.sh)"
	}
	if _, err := os.Stat("assets/vendor/uPlot.iife.min.js"); err != nil && skipBrowser == "" {
		skipBrowser = "the chart library is not bundled (internal/web/assets/vendor): run make web"
	}
	if skipDaemon == "" {
		dir, err := os.MkdirTemp("", "prescient-web-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		_ = os.Chmod(dir, 0o755)
		bin = filepath.Join(dir, "prescient")
		if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/prescient").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build prescient: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func hasCgroups() bool {
	_, err1 := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	_, err2 := os.Stat("/sys/fs/cgroup/memory")
	return err1 == nil || err2 == nil
}

// daemon is a prescient serve started by a test.
type daemon struct {
	t         testing.TB
	dir, sock string
	cmd       *exec.Cmd
	c         *api.Client
}

// startDaemon starts prescient serve on a temporary state directory and
// socket with args, and waits until it answers.
func startDaemon(t testing.TB, args ...string) *daemon {
	t.Helper()
	if skipDaemon != "" {
		t.Skip(skipDaemon)
	}
	dir, err := os.MkdirTemp("", "pw-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	d := &daemon{t: t, dir: dir, sock: filepath.Join(dir, "d.sock")}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	// PRESCIENT_BENCH_DEBUG_SOCKET: the daemon serves its runtime profiles
	// there (serve --debug-socket), to see where a benchmark's memory goes.
	if dbg := os.Getenv("PRESCIENT_BENCH_DEBUG_SOCKET"); dbg != "" {
		args = append(args, "--debug-socket", dbg)
	}
	d.cmd = exec.Command(bin, append([]string{"serve", "--state-dir", filepath.Join(dir, "state"), "--socket", d.sock,
		"--log-level", "info"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.c = api.NewUnixClient(d.sock)
	t.Cleanup(func() {
		d.c.Close()
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		_ = d.cmd.Wait()
		// No task outlives the test: kill what shims are left.
		ents, _ := os.ReadDir(filepath.Join(dir, "state", "run"))
		for _, en := range ents {
			if b, err := os.ReadFile(filepath.Join(dir, "state", "run", en.Name(), "shim.pid")); err == nil {
				var pid int
				fmt.Sscan(string(b), &pid)
				if pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGTERM)
				}
			}
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
			s := string(b)
			if len(s) > 4000 {
				s = s[len(s)-4000:]
			}
			t.Logf("daemon log:\n%s", s)
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := d.c.Ping(ctx)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not answer within 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// submit submits argv (requests 0.1 core, 64 MB unless given) and returns
// the task.
func (d *daemon) submit(req *api.Limits, argv ...string) *api.Task {
	d.t.Helper()
	if req == nil {
		req = &api.Limits{CPUCores: 0.1, MemoryMB: 64}
	}
	t, err := d.c.Submit(context.Background(), api.SubmitRequest{
		Spec:     api.Spec{Argv: argv, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, Dir: "/tmp"},
		Requests: req,
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return t
}

func (d *daemon) wait(id string) *api.Task {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t, err := d.c.Wait(ctx, id)
	if err != nil {
		d.t.Fatal(err)
	}
	return t
}

// dashboard runs `prescient dashboard --json` against d and returns its
// URL (with the token) and base (without).
func (d *daemon) dashboard() (url, base string) {
	d.t.Helper()
	cmd := exec.Command(bin, "--socket", d.sock, "dashboard", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var v struct{ URL, Addr string }
	if err := json.NewDecoder(bufio.NewReader(out)).Decode(&v); err != nil {
		d.t.Fatalf("prescient dashboard --json: %v", err)
	}
	return v.URL, "http://" + v.Addr
}

// browser is a headless Chromium (Debian's) driven by chromedp, with the
// flags a root sandbox-less run on this machine needs, on a fresh
// profile.
func browser(t testing.TB) context.Context {
	t.Helper()
	if skipBrowser != "" {
		t.Skip(skipBrowser)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Each navigation measures a fresh page load, never one restored
		// from the back-forward cache.
		chromedp.Flag("disable-features", "BackForwardCache"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// waitReady waits until the page has rendered page (window.prescient).
func waitReady(ctx context.Context, page string) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`!!(window.prescient && window.prescient.ready && window.prescient.page === %q)`, page),
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	return err
}

// TestBrowserTaskPage opens the task page of a real run — a daemon this
// test started, a task that ran under it twice (the second run predicted
// from the first) and changed its allocation on the way — in headless
// Chromium, and checks the charts hold that run's samples and
// allocation changes; then takes a screenshot of every page.
func TestBrowserTaskPage(t *testing.T) {
	if skipDaemon == "" && skipBrowser != "" {
		t.Skip(skipBrowser)
	}
	d := startDaemon(t, "--interval", "500ms", "--cpu", "1")
	script := "2s:cpu=0.3,mem=40;3s:cpu=0.3,mem=160;5s:cpu=0.05,mem=20"
	first := d.submit(nil, bin, "workload", "--quiet", script)
	if got := d.wait(first.ID); got.State != api.StateSucceeded {
		t.Fatalf("first run: %s %s", got.State, got.Error)
	}
	second := d.submit(nil, bin, "workload", "--quiet", script)
	run := d.wait(second.ID)
	if run.State != api.StateSucceeded {
		t.Fatalf("second run: %s %s", run.State, run.Error)
	}
	if run.Prediction == nil {
		t.Errorf("the second run has no prediction")
	}
	// Queued tasks for the queue page: the node's one core is taken by the
	// first.
	var blockers []string
	for range 3 {
		blockers = append(blockers, d.submit(&api.Limits{CPUCores: 0.6, MemoryMB: 64}, "sleep", "30").ID)
	}
	t.Cleanup(func() {
		for _, id := range blockers {
			_, _ = d.c.Cancel(context.Background(), id)
		}
	})

	url, base := d.dashboard()
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	// The first run asked for 64 MB and used 160: its allocation changed
	// (adjust_up, or an OOM retry) between its commit and its release.
	first = d.wait(first.ID)
	if len(first.Allocations) < 3 {
		t.Errorf("first run's allocation changes %+v: want one between commit and release", first.Allocations)
	}
	checkTaskPage(t, ctx, d, base, first)
	checkTaskPage(t, ctx, d, base, run)
	shoot(t, ctx, base, "task", "#/task/"+run.ID)
	for _, page := range []string{"node", "queue", "tasks", "signatures"} {
		shoot(t, ctx, base, page, "#/"+page)
	}
}

// checkTaskPage opens run's task page and checks that it shows that run:
// its id, every sample of the API's curve in the memory chart's measured
// series at the same values, and its allocation changes, in order, as
// markers.
func checkTaskPage(t *testing.T, ctx context.Context, d *daemon, base string, run *api.Task) {
	t.Helper()
	curve, err := d.c.Curve(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(curve) < 5 {
		t.Fatalf("run %s has %d samples: too few to check", run.ID, len(curve))
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard/#/task/"+run.ID)); err != nil {
		t.Fatal(err)
	}
	if err := waitReady(ctx, "task"); err != nil {
		t.Fatalf("task page never rendered: %v", err)
	}
	type shown struct {
		ID          string
		Samples     int
		Allocations []string
		Charts      []string
		Used        []*float64 // the memory chart's "used" series
		X           []float64
		Markers     string
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[shown](`(() => {
		const p = window.prescient, u = p.charts.memory;
		return { ID: p.task.id, Samples: p.task.samples, Allocations: p.task.allocations, Charts: Object.keys(p.charts),
			Used: u.data[4], X: u.data[0], Markers: document.querySelector('.chart[data-dim=memory]').dataset.allocations };
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != run.ID || got.Samples != len(curve) {
		t.Errorf("page shows task %s with %d samples; want %s with %d", got.ID, got.Samples, run.ID, len(curve))
	}
	var reasons []string
	for _, a := range run.Allocations {
		reasons = append(reasons, a.Reason)
	}
	if strings.Join(got.Allocations, ",") != strings.Join(reasons, ",") || got.Markers != fmt.Sprint(len(reasons)) {
		t.Errorf("page's allocation changes %v (%s markers), want %v", got.Allocations, got.Markers, reasons)
	}
	if !strings.Contains(strings.Join(got.Charts, ","), "cpu") || !strings.Contains(strings.Join(got.Charts, ","), "memory") {
		t.Errorf("charts %v, want cpu and memory", got.Charts)
	}
	// The memory chart's measured series is the run's samples, at their
	// times.
	var used []float64
	for i, v := range got.Used {
		if v != nil {
			used = append(used, *v)
			if i >= len(got.X) {
				t.Fatalf("series longer than its x")
			}
		}
	}
	if len(used) != len(curve) {
		t.Fatalf("memory chart has %d measured points, the run %d samples", len(used), len(curve))
	}
	for i, p := range curve {
		if p.MemoryMB == nil || !near(used[i], *p.MemoryMB) {
			t.Errorf("memory sample %d: chart %v, API %v", i, used[i], p.MemoryMB)
			break
		}
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-3*max(1, b) && -d < 1e-3*max(1, b)
}

// shoot opens page at fragment, waits until it has rendered and saves a
// screenshot as dashboard-PAGE.png (in -screenshots, else a temporary
// directory).
func shoot(t *testing.T, ctx context.Context, base, page, fragment string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard/"+fragment)); err != nil {
		t.Fatalf("%s page: %v", page, err)
	}
	if err := waitReady(ctx, page); err != nil {
		t.Fatalf("%s page never rendered: %v", page, err)
	}
	_ = chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))  // the charts' first frame
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("%s page: %v", page, err)
	}
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard-"+page+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s page: %s (%d bytes)", page, path, len(buf))
}

// TestDashboardNeedsToken: without the token (or the cookie it gives)
// every URL answers 401, through `prescient dashboard` and through
// serve --listen; the token opens it once, then the cookie does.
func TestDashboardNeedsToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	d := startDaemon(t, "--listen", listen, "--token-file", tokenFile)
	url, base := d.dashboard()
	paths := []string{"/", "/dashboard/", "/dashboard/app.js", "/dashboard/vendor/uPlot.LICENSE", "/v1/node", "/v1/tasks",
		"/v1/dashboard/node", "/v1/dashboard/live", "/v1/dashboard/signatures", "/v1/events", "/metrics", "/nothing"}
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, b := range []string{base, "http://" + listen} {
		for _, p := range paths {
			resp, err := noRedirect.Get(b + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s%s without the token: %d, want 401", b, p, resp.StatusCode)
			}
		}
		resp, err := noRedirect.Get(b + "/dashboard/?token=wrong-token-0000000000000")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a wrong token: %d, want 401", resp.StatusCode)
		}
	}
	// The right token: a cookie and a redirect to the URL without it; the
	// cookie then opens reads, never writes.
	for _, u := range []string{url, "http://" + listen + "/dashboard/?token=" + token} {
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/" || len(cookies) != 1 || !cookies[0].HttpOnly {
			t.Fatalf("GET %s: %d, Location %q, cookies %v", u, resp.StatusCode, resp.Header.Get("Location"), cookies)
		}
		b := u[:strings.Index(u, "/dashboard/")]
		for _, p := range []string{"/dashboard/", "/v1/dashboard/node", "/v1/tasks"} {
			req, _ := http.NewRequest(http.MethodGet, b+p, nil)
			req.AddCookie(cookies[0])
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s with the cookie: %d %s", b, p, resp.StatusCode, body)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, b+"/v1/tasks", strings.NewReader(`{"spec":{"argv":["true"],"dir":"/tmp"}}`))
		req.AddCookie(cookies[0])
		resp, err = noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST with the cookie: %d, want 401 or 405", resp.StatusCode)
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
