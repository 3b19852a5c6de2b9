package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// runner runs the mix once, the jobs submitted at once, and says how each
// job went; t0 is the time of its first submit. A runner must leave nothing
// running when it returns, whatever ctx does.
type runner interface {
	run(ctx context.Context, e *runEnv) (jobs []jobResult, t0 time.Time, err error)
}

// runEnv is what a runner needs for one run.
type runEnv struct {
	mix     string // the mix directory: jobs.tsv, data/, src/; jobs run here
	dir     string // this run's output directory
	jobs    []job
	tools   tools
	cores   int
	capMB   int           // memory every runner is given: MemTotal - 1 GiB
	timeout time.Duration // the longest a run may take; its jobs are ended then
	probe   bool          // run the speed probe before and after the run
	log     *slog.Logger
}

// prepare puts the mix in the same state before every run: outputs
// removed, dirty pages written back, every input read once (page cache warm).
func prepare(mix string) error {
	for _, d := range []string{"out", "tmp"} {
		p := filepath.Join(mix, d)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	syscall.Sync()
	ents, err := os.ReadDir(filepath.Join(mix, "data"))
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(mix, "data", ent.Name()))
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

// runOnce prepares the mix, runs r with the node sampler around it and
// writes the run's summary.json and samples.tsv under e.dir.
func runOnce(ctx context.Context, name string, rep int, r runner, e *runEnv) (summary, []nodeSample, error) {
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return summary{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	var before, after float64
	if e.probe {
		var err error
		if before, err = probe(ctx, e, "before"); err != nil {
			return summary{}, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := prepare(e.mix); err != nil {
		return summary{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	smp := startSampler(nil, time.Second)
	defer smp.Stop()
	sleepCtx(ctx, 1500*time.Millisecond) // a sample before the first submit
	jobs, t0, err := r.run(ctx, e)
	if err != nil {
		return summary{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	sleepCtx(ctx, 1500*time.Millisecond) // a sample after the last end
	samples := smp.Stop()
	s := summarize(name, jobs, samples, t0, e.cores)
	s.Rep = rep
	if e.probe && ctx.Err() == nil {
		var err error
		if after, err = probe(ctx, e, "after"); err != nil {
			e.log.Warn("speed probe after the run failed", "err", err)
		}
		s.ProbeCPUS = probeMean(before, after)
		e.log.Info("speed probe", "before_cpu_s", before, "after_cpu_s", after)
	}
	if err := writeJSONFile(filepath.Join(e.dir, "summary.json"), s); err != nil {
		return s, samples, err
	}
	f, err := os.Create(filepath.Join(e.dir, "samples.tsv"))
	if err != nil {
		return s, samples, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	if err := writeSamples(f, samples); err != nil {
		return s, samples, fmt.Errorf("%s: %w", name, err)
	}
	return s, samples, f.Close()
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// sleepCtx sleeps d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
