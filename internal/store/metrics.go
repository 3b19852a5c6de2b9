package store

import "github.com/prometheus/client_golang/prometheus"

// samplesMetrics are the sample store's own metrics; the TSDB registers its
// prometheus_tsdb_* family on the same Registerer.
type samplesMetrics struct {
	appended prometheus.Counter
	failed   prometheus.Counter
}

// newSamplesMetrics builds the sample store's metrics and registers them on
// reg (nil: unregistered).
func newSamplesMetrics(reg prometheus.Registerer) *samplesMetrics {
	m := &samplesMetrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prescient_store_samples_appended_total",
			Help: "Float samples committed to the TSDB (one per available dimension series).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prescient_store_sample_appends_failed_total",
			Help: "Append calls rolled back because a sample was rejected.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.appended, m.failed)
	}
	return m
}

// tasksMetrics are the task store's metrics.
type tasksMetrics struct {
	written prometheus.Counter
	commit  prometheus.Histogram
}

// newTasksMetrics builds the task store's metrics and registers them on reg
// (nil: unregistered).
func newTasksMetrics(reg prometheus.Registerer) *tasksMetrics {
	m := &tasksMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prescient_store_task_records_written_total",
			Help: "Task records written to tasks.db.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prescient_store_task_commit_seconds",
			Help:    "Duration of tasks.db write transactions, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.commit)
	}
	return m
}
