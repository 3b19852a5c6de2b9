package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	"github.com/prescient-sched/prescient/internal/executor"
	"github.com/prescient-sched/prescient/internal/profile"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// Config wires a Supervisor.
type Config struct {
	Executor *executor.Executor
	Net      *profile.NetMonitor // nil: network unavailable
	Records  RecordWriter
	Samples  SampleWriter
	Interval time.Duration // sampling interval; default 1 s, at least 100 ms
	LogRoot  string        // per-task log dirs are LogRoot/<id>; default <state>/logs
	Logger   *slog.Logger
	// OnSample, if set, is called after every stored sample (e.g. a live view).
	OnSample func(id string, s resource.Sample)
}

func (c *Config) validate() error {
	if c.Executor == nil || c.Records == nil || c.Samples == nil {
		return errors.New("supervisor: executor, records and samples are required")
	}
	switch {
	case c.Interval == 0:
		c.Interval = time.Second
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("supervisor: sampling interval %v is below the 100ms minimum", c.Interval)
	}
	if c.LogRoot == "" {
		return errors.New("supervisor: log root is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// RecordWriter stores task records; store.Tasks is one.
type RecordWriter interface {
	Put(r *task.Record) error
}

// SampleWriter stores samples; store.Samples is one.
type SampleWriter interface {
	Append(taskID, sig string, ss ...resource.Sample) error
}

// Supervisor runs tasks. It is safe for concurrent use: each Run owns its task.
type Supervisor struct{ cfg Config }

// New returns a Supervisor.
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Supervisor{cfg: cfg}, nil
}

// Output is where a task's stdout and stderr go besides its log files.
type Output struct{ Stdout, Stderr io.Writer }

// Run runs rec (already stored as queued) to its end and returns the final
// record, which is stored too. Cancelling ctx kills the task's whole cgroup
// and records it as cancelled. The returned error is non-nil only when the
// task could not be started or its record could not be written; the record
// then says why.
func (s *Supervisor) Run(ctx context.Context, rec *task.Record, out Output) (*task.Record, error) {
	log := s.cfg.Logger.With("task", rec.ID)
	rec.LogDir = filepath.Join(s.cfg.LogRoot, rec.ID)
	proc, err := s.cfg.Executor.Start(ctx, executor.StartOptions{
		ID:     rec.ID,
		Argv:   rec.Spec.Argv,
		Env:    rec.Spec.Env,
		Dir:    rec.Spec.Dir,
		Limits: rec.Spec.Limits,
		LogDir: rec.LogDir,
		Stdout: out.Stdout,
		Stderr: out.Stderr,
	})
	if err != nil {
		task.End{StartError: err.Error(), StartKind: executor.StartErrorKind(err), Cancelled: ctx.Err() != nil}.Apply(rec)
		if perr := s.cfg.Records.Put(rec); perr != nil {
			return rec, fmt.Errorf("%w (and recording it failed: %v)", err, perr)
		}
		return rec, err
	}
	start := time.Now()
	rec.State, rec.StartedAt, rec.Limits = task.Running, &start, rec.Spec.Limits
	if err := s.cfg.Records.Put(rec); err != nil {
		_ = proc.Kill()
		_, _ = proc.Wait()
		_ = proc.Close()
		return rec, fmt.Errorf("record start of %s: %w", rec.ID, err)
	}
	log.Debug("started", "pid", proc.Pid())

	cg := proc.Cgroups()
	var agg resource.Accumulator
	sampler, serr := profile.NewSampler(profile.Target{V1: cg.V1, V2: cg.V2, CgroupID: cg.CgroupID}, s.cfg.Net)
	if serr != nil {
		log.Warn("profiling unavailable", "err", serr)
	} else {
		sampler.Sample(start) // prime the rate counters
	}
	exited := make(chan struct{})
	var exit executor.Exit
	var werr error
	go func() {
		exit, werr = proc.Wait()
		close(exited)
	}()
	tick := time.NewTicker(s.cfg.Interval)
	last := start  // the previous sample's time
	cpuSecs := 0.0 // the cgroup's CPU counter at the latest reading
	take := func(now time.Time) {
		if sampler == nil {
			return
		}
		last = now
		smp := sampler.Sample(now)
		cpuSecs = max(cpuSecs, smp.CPUSeconds)
		agg.Add(smp)
		if err := s.cfg.Samples.Append(rec.ID, rec.Signature, smp); err != nil {
			log.Warn("store sample", "err", err)
		}
		if s.cfg.OnSample != nil {
			s.cfg.OnSample(rec.ID, smp)
		}
	}
loop:
	for {
		select {
		case now := <-tick.C:
			take(now)
		case <-exited:
			break loop
		}
	}
	tick.Stop()
	end := time.Now()
	// One last sample over the tail since the previous sample, when it is
	// long enough to say something about rates. A short tail does not: a
	// task capped at 0.25 core by CFS (25 ms a 100 ms period) may run its
	// whole 25 ms in a 55 ms tail, which reads as 45 % (this compared the
	// tail's end with the run's start, so every tail was taken).
	if end.Sub(last) >= s.cfg.Interval/2 || agg.N() == 0 {
		take(end)
	} else if sampler != nil {
		// The tail's rates say nothing, but the CPU counter is read.
		cpuSecs = max(cpuSecs, sampler.Sample(end).CPUSeconds)
	}
	if sampler != nil {
		_ = sampler.Close()
	}
	if cerr := proc.Close(); cerr != nil {
		log.Warn("remove cgroup", "err", cerr)
	}

	e := exit.End(start, end, ctx.Err() != nil)
	e.MemoryLimitMB = rec.Limits.MemoryMB
	if werr != nil {
		e.WaitError = werr.Error()
	}
	e.Apply(rec) // the same mapping the daemon uses
	sum := agg.Summary()
	rec.Samples = sum.N
	rec.Peak, rec.Mean = task.StatsOf(sum)
	rec.CPUSeconds = math.Round(cpuSecs*1000) / 1000
	if err := s.cfg.Records.Put(rec); err != nil {
		return rec, fmt.Errorf("record end of %s: %w", rec.ID, err)
	}
	log.Debug("finished", "state", rec.State, "samples", rec.Samples)
	return rec, nil
}
