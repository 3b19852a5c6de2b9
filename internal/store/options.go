package store

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option sets a rarely needed setting of Open or OpenTasks. Options that
// do not concern the store being opened are ignored.
type Option func(*options)

type options struct {
	logger           *slog.Logger
	registerer       prometheus.Registerer
	retention        time.Duration
	outOfOrderWindow time.Duration
	lockTimeout      time.Duration
}

func buildOptions(opts []Option) options {
	o := options{lockTimeout: DefaultLockTimeout}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the store's and the TSDB's metrics on r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithRetention sets how long samples are kept (default DefaultRetention).
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithOutOfOrderWindow sets SamplesConfig.OutOfOrderWindow.
func WithOutOfOrderWindow(d time.Duration) Option {
	return func(o *options) { o.outOfOrderWindow = d }
}

// WithLockTimeout sets how long opening waits for the lock on tasks.db
// (default DefaultLockTimeout; at least 1 ms).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = max(d, time.Millisecond) }
}
