package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestPrometheusScrapesExample: the example scrape configuration in
// deploy/prometheus is valid for promtool and, loaded by a real
// Prometheus (Debian's prometheus package, installed by make test's
// scripts/test-deps.sh), scrapes a real daemon's /metrics
// (serve --metrics-listen), which parses with Prometheus's text parser.
func TestPrometheusScrapesExample(t *testing.T) {
	needDaemon(t)
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("no prometheus on PATH (Debian's prometheus package; make test installs it through scripts/test-deps.sh)")
	}
	metricsAddr := freePort(t)
	dbg := filepath.Join(t.TempDir(), "debug.sock")
	e := newEnv(t, "--metrics-listen", metricsAddr, "--debug-socket", dbg)
	e.start()

	// The debug socket: the daemon's user only, the runtime's profiles.
	if st, err := os.Stat(dbg); err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("debug socket %v, %v: want a socket, mode 0600", st, err)
	}
	dc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", dbg)
	}}}
	if resp, err := dc.Get("http://d/debug/pprof/heap?debug=1"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("heap profile on the debug socket: %v %v", resp, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "heap profile:") {
			t.Fatalf("heap profile: %.200q", b)
		}
	}

	// The daemon's own /metrics on the metrics listener: no auth, parses.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range []string{"prescient_tasks", "prescient_queue_length", "prescient_node_capacity", "prescient_node_committed",
		"prescient_node_soft_reserved", "prescient_node_used", "prescient_sched_queue_wait_seconds", "prescient_profile_sample_seconds",
		"prescient_predict_model_version", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if resp, err := http.Get("http://" + metricsAddr + "/v1/node"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics listener serves more than /metrics: %v %v", err, resp)
	}

	// The example configuration, pointed at this daemon, scraping every
	// second.
	b, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(b), "127.0.0.1:9466", metricsAddr)
	cfg = strings.ReplaceAll(cfg, "scrape_interval: 15s", "scrape_interval: 1s")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "config", cfgPath).CombinedOutput(); err != nil {
			t.Fatalf("promtool check config: %v\n%s", err, out)
		}
	}
	web := freePort(t)
	cmd := exec.Command(prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", tail(string(b), 3000))
		}
	}()

	// Until Prometheus has scraped the daemon once: up is 1 and the node's
	// capacity is stored.
	query := func(q string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+web+"/api/v1/query?query="+url.QueryEscape(q), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &r); err != nil {
			return "", fmt.Errorf("%s: %w", body, err)
		}
		if len(r.Data.Result) == 0 || len(r.Data.Result[0].Value) != 2 {
			return "", fmt.Errorf("no result yet: %s", body)
		}
		return fmt.Sprint(r.Data.Result[0].Value[1]), nil
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		up, err1 := query(`up{job="prescient"}`)
		capv, err2 := query(`prescient_node_capacity{job="prescient",dim="cpu"}`)
		if err1 == nil && err2 == nil && up == "1" && capv != "0" {
			t.Logf("prometheus scraped the daemon: up %s, cpu capacity %s cores", up, capv)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never scraped the daemon: up %q (%v), capacity %q (%v)", up, err1, capv, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
