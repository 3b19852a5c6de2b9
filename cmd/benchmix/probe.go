package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
)

// probeNames are the jobs of the speed probe: four of the mix's own
// programs (a compressor, sort, gzip and an integer-only CPU job, ≈ 25
// CPU-seconds alone on the reference machine), run one at a time on the
// idle machine before and after every run.
//
// Why: this machine is a VM whose memory system is shared with other
// tenants, and the same job alone costs a different number of
// CPU-seconds from hour to hour. Measured on the mix's own serial runs
// (2026-12-04/05): xz8_20m 19.8–31.9 CPU-s, xz6_12m 9.8–14.6, sort_nums
// 4.2–4.9 and 7.7 at another hour, while cpu_int (integer only) stayed
// within 6.2–6.6. A ratio against a floor measured twenty minutes
// earlier then moves ±15 % with the machine, not with the scheduler.
// The probe measures the machine's speed on the kind of work the mix does
// at the time of each run, so the report can also give the ratios with
// the floor scaled to it (see report.finish).
var probeNames = []string{"xz6_12m", "sort_nums", "gzip6_96m", "cpu_int"}

// probeJobs are the probe's jobs present in jobs (a --jobs subset may
// leave some out; then the probe is what is left, or nothing).
func probeJobs(jobs []job) []job {
	var out []job
	for _, j := range jobs {
		if slices.Contains(probeNames, j.Name) {
			out = append(out, j)
		}
	}
	return out
}

// probe runs the probe jobs one at a time, each measured like the serial
// runner's (its cgroup's cpuacct.usage), and returns their CPU-seconds.
// Its outputs go to e.dir/probe-<when>.
func probe(ctx context.Context, e *runEnv, when string) (float64, error) {
	pj := probeJobs(e.jobs)
	if len(pj) == 0 {
		return 0, nil
	}
	pe := *e
	pe.jobs, pe.dir = pj, filepath.Join(e.dir, "probe-"+when)
	if err := prepare(e.mix); err != nil {
		return 0, err
	}
	res, _, err := naiveRunner{parallel: 1}.run(ctx, &pe)
	if err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	var cpu float64
	for _, r := range res {
		if r.State != stateSucceeded {
			return 0, errors.New("probe: " + r.Name + " " + r.State + " " + r.Detail)
		}
		cpu += r.CPUS
	}
	return round3(cpu), nil
}
