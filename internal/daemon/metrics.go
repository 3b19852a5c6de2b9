package daemon

import "github.com/prometheus/client_golang/prometheus"

// metrics are the daemon's Prometheus metrics, all built here.
type metrics struct {
	submitted    *prometheus.CounterVec // by result
	batchSize    prometheus.Histogram
	commitSecs   prometheus.Histogram
	ended        *prometheus.CounterVec // by state
	queued       prometheus.GaugeFunc
	running      prometheus.GaugeFunc
	recovered    *prometheus.CounterVec // by action
	connsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, queued, running func() float64) *metrics {
	m := &metrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_daemon_submits_total", Help: "Submit requests by result (accepted, rejected, failed).",
		}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prescient_daemon_commit_batch_records", Help: "Records per group commit (one fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prescient_daemon_commit_seconds", Help: "Duration of one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_daemon_tasks_ended_total", Help: "Tasks that reached a final state, by state.",
		}, []string{"state"}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prescient_daemon_tasks_queued", Help: "Tasks waiting to start.",
		}, queued),
		running: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prescient_daemon_tasks_running", Help: "Tasks started and not yet ended.",
		}, running),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_daemon_recovered_total", Help: "Tasks found at start-up, by what was done with them.",
		}, []string{"action"}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prescient_daemon_connections_refused_total", Help: "Unix socket connections refused because their user held max_conns_per_user.",
		}),
	}
	reg.MustRegister(m.submitted, m.batchSize, m.commitSecs, m.ended, m.queued, m.running, m.recovered, m.connsRefused)
	return m
}
