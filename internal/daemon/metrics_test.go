package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
)

// scrapeHandler GETs /metrics through the daemon's handler as root and
// parses it with Prometheus's own text parser.
func scrapeHandler(t *testing.T, d *Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req = req.WithContext(context.WithValue(req.Context(), identityKey, identity{}))
	rec := httptest.NewRecorder()
	d.handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of fam's series whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsNode: /metrics parses and carries tasks by state, the queue,
// the node per dimension, allocations by reason and the queue wait of a
// task that ran.
func TestMetricsNode(t *testing.T) {
	rt := newFakeRunner()
	f := newFixture(t, rt, "", nil)
	id := f.submit("true")
	r := f.runOf(id)
	r.begin()
	f.waitFor(id, "running")

	fams := scrapeHandler(t, f.d)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"prescient_tasks", map[string]string{"state": "running"}, 1},
		{"prescient_tasks", map[string]string{"state": "queued"}, 0},
		{"prescient_queue_length", nil, 0},
		{"prescient_node_capacity", map[string]string{"dim": "cpu", "unit": "cores"}, 1},
		{"prescient_node_capacity", map[string]string{"dim": "memory", "unit": "MiB"}, 1000},
		{"prescient_node_soft_reserved", map[string]string{"dim": "cpu"}, 0},
		{"prescient_sched_allocations_total", map[string]string{"reason": "commit"}, 1},
		{"prescient_sched_queue_wait_seconds", nil, 1},
	} {
		got, ok := value(fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The node's gauges say what GET /v1/node says (committed includes
	// the ledger's headroom over the requests).
	for k, u := range f.d.Node().Dims {
		for name, want := range map[string]float64{"prescient_node_committed": u.Committed, "prescient_node_used": u.Used} {
			if got, ok := value(fams, name, map[string]string{"dim": k}); !ok || got != want {
				t.Errorf("%s{dim=%s} = %v, want %v", name, k, got, want)
			}
		}
	}
	if got, _ := value(fams, "prescient_node_committed", map[string]string{"dim": "memory"}); got < 100 {
		t.Errorf("committed memory %v, below the running task's 100 MB", got)
	}
	for _, name := range []string{"prescient_node_used", "prescient_node_soft_reserved_peak", "prescient_profile_sample_seconds",
		"prescient_predict_model_version", "prescient_predict_training_seconds", "prescient_daemon_submits_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	r.finish(task.End{Started: true, StartedAt: r.startedAt, Code: 0})
	f.waitFor(id, "succeeded")
	fams = scrapeHandler(t, f.d)
	if got, _ := value(fams, "prescient_sched_allocations_total", map[string]string{"reason": "release"}); got != 1 {
		t.Errorf("release allocations = %v, want 1", got)
	}
	if got, _ := value(fams, "prescient_tasks", map[string]string{"state": "running"}); got != 0 {
		t.Errorf("running after the end = %v", got)
	}
}

// TestScoreRun: a run's prediction error, slack and under-prediction, by
// model, from its planned curve, its allocations and its samples.
func TestScoreRun(t *testing.T) {
	t0 := time.Unix(1000, 0)
	samples := func(mem ...float64) []resource.Sample {
		out := make([]resource.Sample, len(mem))
		for i, m := range mem {
			out[i] = resource.Sample{Time: t0.Add(time.Duration(i+1) * time.Second), MemoryMB: m, CPU: 0.5,
				Avail: resource.Set(0).With(resource.Memory).With(resource.CPU)}
		}
		return out
	}
	allocs := []sched.Allocation{
		{At: t0, Limits: task.Limits{CPUCores: 1, MemoryMB: 200}, Reason: sched.ReasonCommit},
		{At: t0.Add(2500 * time.Millisecond), Limits: task.Limits{CPUCores: 1, MemoryMB: 100}, Reason: sched.ReasonAdjustDown},
		{At: t0.Add(10 * time.Second), Reason: sched.ReasonRelease},
	}
	curve := ledger.Curve{Steps: []ledger.Step{{Dur: 10 * time.Second, P50: resource.Vector{0.5, 80}, PHi: resource.Vector{1, 90}}}}
	tests := []struct {
		name      string
		view      sched.View
		requests  task.Limits
		mem       []float64
		model     string
		wantErr   float64 // memory
		wantSlack float64 // memory
		wantUnder float64 // memory
	}{
		{
			name: "predicted", view: sched.View{Model: "history/exact", Curve: curve, Allocs: allocs},
			mem: []float64{50, 100, 50, 50}, model: "history/exact",
			// peak 100 vs p50 80; slack: (200-50)/200, (200-100)/200, then 0.5, 0.5 under 100.
			wantErr: 0.2, wantSlack: (0.75 + 0.5 + 0.5 + 0.5) / 4, wantUnder: 1,
		},
		{
			name: "requests", view: sched.View{Allocs: allocs}, requests: task.Limits{CPUCores: 1, MemoryMB: 125},
			mem: []float64{100}, model: "requests", wantErr: 0.25, wantSlack: 0.5, wantUnder: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics(prometheus.NewRegistry(), func() float64 { return 0 }, func() float64 { return 0 })
			m.scoreRun(tc.view, tc.requests, samples(tc.mem...))
			if got := testutil.ToFloat64(m.predRuns.WithLabelValues(tc.model)); got != 1 {
				t.Errorf("runs{%s} = %v, want 1", tc.model, got)
			}
			h := histogramOf(t, m.predError, tc.model, "memory")
			if h.GetSampleCount() != 1 || !near(h.GetSampleSum(), tc.wantErr) {
				t.Errorf("error = %v over %d, want %v", h.GetSampleSum(), h.GetSampleCount(), tc.wantErr)
			}
			h = histogramOf(t, m.predSlack, tc.model, "memory")
			if h.GetSampleCount() != 1 || !near(h.GetSampleSum(), tc.wantSlack) {
				t.Errorf("slack = %v, want %v", h.GetSampleSum(), tc.wantSlack)
			}
			if got := testutil.ToFloat64(m.predUnder.WithLabelValues(tc.model, "memory")); got != tc.wantUnder {
				t.Errorf("under = %v, want %v", got, tc.wantUnder)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func histogramOf(t *testing.T, v *prometheus.HistogramVec, labels ...string) *dto.Histogram {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues(labels...).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.Histogram
}

// TestGrafanaDashboardMetrics: every metric the example Grafana dashboard
// (deploy/grafana) queries is one the daemon exports.
func TestGrafanaDashboardMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, func() float64 { return 0 }, func() float64 { return 0 })
	reg.MustRegister(newNodeCollector(func() api.NodeStatus {
		return api.NodeStatus{Dims: map[string]api.DimUsage{"cpu": {}, "memory": {}, "iops": {}, "net": {}}}
	}))
	// Vectors appear once they have a child.
	m.submitted.WithLabelValues("accepted")
	m.ended.WithLabelValues("succeeded")
	m.recovered.WithLabelValues("requeued")
	m.allocations.WithLabelValues("commit")
	m.predRuns.WithLabelValues("requests")
	m.predError.WithLabelValues("requests", "cpu")
	m.predSlack.WithLabelValues("requests", "cpu")
	m.predUnder.WithLabelValues("requests", "cpu")
	m.trainings.WithLabelValues("ok")
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{"process_cpu_seconds_total": true, "process_resident_memory_bytes": true, "up": true}
	for _, f := range fams {
		have[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				have[f.GetName()+s] = true
			}
		}
	}
	b, err := os.ReadFile("../../deploy/grafana/prescient.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana dashboard: %v", err)
	}
	name := regexp.MustCompile(`\b(prescient_[a-z_]+|process_[a-z_]+)\b`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, ref := range name.FindAllString(tg.Expr, -1) {
				n++
				if !have[ref] {
					t.Errorf("panel %q queries %s, which the daemon does not export", p.Title, ref)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d metric references in the dashboard", n)
	}
}
