package daemon

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/sched"
	"github.com/prescient-sched/prescient/internal/task"
)

// metrics are the daemon's Prometheus metrics, all built here. The
// counters and histograms are written where things happen (submit, commit,
// the policy's Schedule and Finish, the sampler, the trainer); the node's
// gauges are read from the policy when /metrics is scraped (nodeCollector).
type metrics struct {
	submitted    *prometheus.CounterVec // by result
	batchSize    prometheus.Histogram
	commitSecs   prometheus.Histogram
	ended        *prometheus.CounterVec // by state
	queued       prometheus.GaugeFunc
	running      prometheus.GaugeFunc
	recovered    *prometheus.CounterVec // by action
	connsRefused prometheus.Counter

	allocations *prometheus.CounterVec // by reason (sched.Reason*)
	queueWait   prometheus.Histogram   // submit (or requeue) to start
	sampleSecs  prometheus.Histogram   // one profiler sample of one task
	predRuns    *prometheus.CounterVec // by model
	predError   *prometheus.HistogramVec
	predSlack   *prometheus.HistogramVec
	predUnder   *prometheus.CounterVec // by model, dim
	trainSecs   prometheus.Histogram
	trainings   *prometheus.CounterVec // by result
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
		allocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_sched_allocations_total",
			Help: "Changes of running tasks' allocations by reason: commit, adjust_up, adjust_down, throttle, unthrottle, evict, oom_retry, lost, release, restore.",
		}, []string{"reason"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prescient_sched_queue_wait_seconds", Help: "Time tasks waited in the queue before they started (from submit or requeue).",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 12), // 10 ms … 11.6 h
		}),
		sampleSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prescient_profile_sample_seconds", Help: "Wall time of one profiler sample of one running task (cgroup files and network counters).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 16), // 1 µs … 33 ms
		}),
		predRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_predict_runs_total", Help: "Succeeded runs scored against their prediction, by the model that served it (requests: none, the declared requests).",
		}, []string{"model"}),
		predError: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prescient_predict_peak_error_ratio",
			Help:    "Relative error of a run's predicted median peak against its measured peak, |p50 − measured| / measured, by model and dimension.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5},
		}, []string{"model", "dim"}),
		predSlack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prescient_predict_slack_ratio",
			Help:    "Mean over a run's samples of (hard limit − use) / hard limit, the allocated share it left unused, by model and dimension.",
			Buckets: prometheus.LinearBuckets(0.05, 0.05, 20),
		}, []string{"model", "dim"}),
		predUnder: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_predict_under_total", Help: "Runs whose measured peak exceeded the predicted upper quantile's peak, by model and dimension.",
		}, []string{"model", "dim"}),
		trainSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prescient_predict_training_seconds", Help: "Duration of one background refit of the sequence models.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}),
		trainings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescient_predict_trainings_total", Help: "Background refits of the sequence models by result (ok, failed).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.submitted, m.batchSize, m.commitSecs, m.ended, m.queued, m.running, m.recovered, m.connsRefused,
		m.allocations, m.queueWait, m.sampleSecs, m.predRuns, m.predError, m.predSlack, m.predUnder, m.trainSecs, m.trainings)
	return m
}

// dimUnits are the units of the node's per-dimension gauges.
var dimUnits = [resource.NumDims]string{resource.CPU: "cores", resource.Memory: "MiB", resource.IO: "ops_per_second", resource.Net: "Mbps"}

// nodeCollector reads the node's state from the policy at each scrape:
// tasks by state, the queue, and capacity, committed, soft-reserved and
// used per dimension. It holds nothing of its own.
type nodeCollector struct {
	node func() api.NodeStatus

	tasks, queueLen, reserved, capacity, committed, softNow, softPeak, used, modelVersion *prometheus.Desc
}

func newNodeCollector(node func() api.NodeStatus) *nodeCollector {
	dim := []string{"dim", "unit"}
	return &nodeCollector{
		node:     node,
		tasks:    prometheus.NewDesc("prescient_tasks", "Tasks not ended, by state (queued, running).", []string{"state"}, nil),
		queueLen: prometheus.NewDesc("prescient_queue_length", "Queued tasks.", nil, nil),
		reserved: prometheus.NewDesc("prescient_queue_reserved", "Queued tasks holding a soft reservation in the calendar.", nil, nil),
		capacity: prometheus.NewDesc("prescient_node_capacity", "What tasks may use, per dimension.", dim, nil),
		committed: prometheus.NewDesc("prescient_node_committed",
			"Hard limits of running tasks (predict policy; their requests under fit), per dimension.", dim, nil),
		softNow:      prometheus.NewDesc("prescient_node_soft_reserved", "Soft reservations of queued tasks now, per dimension.", dim, nil),
		softPeak:     prometheus.NewDesc("prescient_node_soft_reserved_peak", "Soft reservations' maximum over the planning horizon, per dimension.", dim, nil),
		used:         prometheus.NewDesc("prescient_node_used", "Measured use of running tasks, per dimension.", dim, nil),
		modelVersion: prometheus.NewDesc("prescient_predict_model_version", "Version of the trained sequence models served (0: none yet).", nil, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tasks, c.queueLen, c.reserved, c.capacity, c.committed, c.softNow, c.softPeak, c.used, c.modelVersion} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.node()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.tasks, float64(n.Queued), api.StateQueued)
	gauge(c.tasks, float64(n.Running), api.StateRunning)
	gauge(c.queueLen, float64(n.Queued))
	gauge(c.reserved, float64(n.Reserved))
	gauge(c.modelVersion, float64(n.ModelVersion))
	for dim := range resource.NumDims {
		u, ok := n.Dims[apiDimKey(dim)]
		if !ok {
			continue
		}
		k, unit := apiDimKey(dim), dimUnits[dim]
		gauge(c.capacity, u.Capacity, k, unit)
		gauge(c.committed, u.Committed, k, unit)
		gauge(c.softNow, u.SoftReserved, k, unit)
		gauge(c.softPeak, u.SoftPeak, k, unit)
		gauge(c.used, u.Used, k, unit)
	}
}

// scoreRun observes how a succeeded run compared with what it was planned
// and held by: the model that served it (v.Model; "requests" when none
// did), the relative error of its median peak, the unused share of its
// hard limits (slack) and whether its peak went above the upper quantile.
// CPU and memory are scored: the dimensions whose limits are enforced.
func (m *metrics) scoreRun(v sched.View, requests task.Limits, curve []resource.Sample) {
	if m == nil || len(curve) == 0 {
		return
	}
	model := v.Model
	var p50, hi resource.Vector
	if len(v.Curve.Steps) == 0 {
		model = "requests"
		p50 = resource.Vector{requests.CPUCores, requests.MemoryMB}
		hi = p50
	} else {
		for _, s := range v.Curve.Steps {
			for d := range resource.NumDims {
				p50[d], hi[d] = max(p50[d], s.P50[d]), max(hi[d], s.PHi[d])
			}
		}
	}
	if model == "" {
		model = "unknown"
	}
	m.predRuns.WithLabelValues(model).Inc()
	for _, d := range []resource.Dim{resource.CPU, resource.Memory} {
		key := apiDimKey(d)
		peak, seen := 0.0, false
		var slackSum float64
		var slackN int
		for _, s := range curve {
			if !s.Avail.Has(d) {
				continue
			}
			u := s.Value(d)
			peak, seen = max(peak, u), true
			if lim := limitAt(v.Allocs, s.Time).Vector()[d]; lim > 0 {
				slackSum += min(max((lim-u)/lim, 0), 1)
				slackN++
			}
		}
		if !seen {
			continue
		}
		if peak > 0 && p50[d] > 0 {
			m.predError.WithLabelValues(model, key).Observe(math.Abs(p50[d]-peak) / peak)
		}
		if slackN > 0 {
			m.predSlack.WithLabelValues(model, key).Observe(slackSum / float64(slackN))
		}
		if hi[d] > 0 && peak > hi[d]*(1+1e-9) {
			m.predUnder.WithLabelValues(model, key).Inc()
		}
	}
}

// limitAt is the hard limits in force at t by a task's allocations (in
// time order): those of the last change at or before t; none before the
// first.
func limitAt(allocs []sched.Allocation, t time.Time) task.Limits {
	var l task.Limits
	for _, a := range allocs {
		if a.At.After(t) {
			break
		}
		if a.Reason != sched.ReasonRelease {
			l = a.Limits
		}
	}
	return l
}
