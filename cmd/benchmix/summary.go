package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Job states in results; every state but stateSucceeded is a lost job.
const (
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateOOM       = "oom"       // killed for memory and not rerun to success
	stateCancelled = "cancelled" // ended by the benchmark's timeout, or never started
)

// jobResult is how one job of a run went.
type jobResult struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Exit      *int      `json:"exit,omitempty"`
	Submit    time.Time `json:"submit"`
	Start     time.Time `json:"start,omitzero"` // first start (Prescient: first commit)
	End       time.Time `json:"end,omitzero"`
	WaitS     float64   `json:"wait_s"`
	RunS      float64   `json:"run_s"`
	CPUS      float64   `json:"cpu_s"`                 // CPU-seconds the job used
	PeakMemMB float64   `json:"peak_mem_mb,omitempty"` // the runner's measure; see docs/benchmarks.md
	OOMKills  int       `json:"oom_kills"`
	Evictions int       `json:"evictions"`
	Detail    string    `json:"detail,omitempty"`
}

// summary is one run of the mix by one runner: the figures of the table.
type summary struct {
	Runner     string    `json:"runner"`
	Rep        int       `json:"rep"`
	Jobs       int       `json:"jobs"`
	Cores      int       `json:"cores"`
	Start      time.Time `json:"start"` // first submit
	MakespanS  float64   `json:"makespan_s"`
	CPUBusy    float64   `json:"cpu_busy"`    // mean machine CPU busy over the makespan, 0..1
	CPUSeconds float64   `json:"cpu_seconds"` // sum of the jobs' CPU-seconds
	PeakMemMB  float64   `json:"peak_mem_mb"` // peak machine memory in use (MemTotal-MemAvailable) over the makespan
	BaseMemMB  float64   `json:"base_mem_mb"` // machine memory in use at the first submit
	MeanWaitS  float64   `json:"mean_wait_s"` // over the jobs that started
	Lost       int       `json:"lost"`        // jobs not succeeded
	OOMKills   int       `json:"oom_kills"`   // kernel OOM kills, counting retried attempts
	Evictions  int       `json:"evictions"`   // Prescient evictions
	// ProbeCPUS is the speed probe's CPU-seconds (the mean of its runs
	// before and after this run; see probe.go), 0 when not run.
	ProbeCPUS float64     `json:"probe_cpu_s,omitempty"`
	Note      string      `json:"note,omitempty"`
	Results   []jobResult `json:"results"`
}

// probeMean is the speed probe's figure for a run: the mean of its
// CPU-seconds before and after, or the one that was measured.
func probeMean(before, after float64) float64 {
	switch {
	case before > 0 && after > 0:
		return round3((before + after) / 2)
	case before > 0:
		return before
	}
	return after
}

// summarize computes a run's figures from its jobs and the machine's
// samples; t0 is the first submit. It fills each job's WaitS and RunS.
func summarize(runner string, jobs []jobResult, samples []nodeSample, t0 time.Time, cores int) summary {
	s := summary{Runner: runner, Jobs: len(jobs), Cores: cores, Start: t0, Results: jobs}
	var end time.Time
	var waits float64
	var started int
	for i := range jobs {
		j := &jobs[i]
		if !j.Start.IsZero() {
			j.WaitS = round3(j.Start.Sub(j.Submit).Seconds())
			waits += j.WaitS
			started++
			if !j.End.IsZero() {
				j.RunS = round3(j.End.Sub(j.Start).Seconds())
			}
		}
		if j.End.After(end) {
			end = j.End
		}
		s.CPUSeconds += j.CPUS
		s.OOMKills += j.OOMKills
		s.Evictions += j.Evictions
		if j.State != stateSucceeded {
			s.Lost++
		}
	}
	if started > 0 {
		s.MeanWaitS = round3(waits / float64(started))
	}
	s.CPUSeconds = round3(s.CPUSeconds)
	if end.IsZero() {
		return s
	}
	s.MakespanS = round3(end.Sub(t0).Seconds())
	s.CPUBusy = round3(busyBetween(samples, t0, end))
	s.BaseMemMB, s.PeakMemMB = memBetween(samples, t0, end)
	return s
}

// busyBetween is the machine's mean CPU busy fraction from t0 to t1: from
// the last sample at or before t0 to the first at or after t1 (the nearest
// ones when the samples do not reach that far).
func busyBetween(samples []nodeSample, t0, t1 time.Time) float64 {
	if len(samples) < 2 {
		return 0
	}
	a, b := samples[0], samples[len(samples)-1]
	for _, s := range samples {
		if !s.T.After(t0) {
			a = s
		}
	}
	for i := len(samples) - 1; i >= 0; i-- {
		if !samples[i].T.Before(t1) {
			b = samples[i]
		}
	}
	if b.Total <= a.Total {
		return 0
	}
	return float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
}

// memBetween returns the memory in use (MB) at t0 (the last sample at or
// before it) and its peak over the samples in [t0, t1].
func memBetween(samples []nodeSample, t0, t1 time.Time) (base, peak float64) {
	for _, s := range samples {
		mb := float64(s.MemUsedKB) / 1024
		if !s.T.After(t0) || base == 0 {
			base = mb
		}
		if !s.T.Before(t0) && !s.T.After(t1) {
			peak = max(peak, mb)
		}
	}
	return math.Round(base), math.Round(peak)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Runner names, in the order a run of the benchmark takes them.
const (
	runSerial      = "serial"
	runAll         = "all"
	runPar         = "par"
	runPredictCold = "predict-cold"
	runPredictWarm = "predict-warm"
	runFit         = "fit"
	runSlurm       = "slurm"
	runSlurmEnough = "slurm-enough"
)

var runnerOrder = []string{runSerial, runAll, runPar, runPredictCold, runPredictWarm, runFit, runSlurm, runSlurmEnough}

// report is every run of one benchmark, with the references the ratios use.
type report struct {
	Cores      int       `json:"cores"`
	Summaries  []summary `json:"summaries"`
	Skipped    []string  `json:"skipped,omitempty"` // "runner: why"
	FloorS     float64   `json:"floor_s,omitempty"` // serial CPU-seconds / cores
	SerialCPUS float64   `json:"serial_cpu_s,omitempty"`
	SlurmS     float64   `json:"slurm_makespan_s,omitempty"`
	// SlurmEnoughS is slurm-enough's makespan: Slurm doing all of the
	// mix's work, every job declaring enough memory.
	SlurmEnoughS float64 `json:"slurm_enough_makespan_s,omitempty"`
	// ProbeSerial is the speed probe's CPU-seconds at the serial run: a
	// run whose probe took k × as long ran on a machine k × slower on
	// this kind of work, and its speed-scaled floor is k × FloorS.
	ProbeSerial float64   `json:"probe_serial_cpu_s,omitempty"`
	Medians     []summary `json:"medians,omitempty"` // per runner, when a runner ran more than once
}

// finish computes the medians (runners run more than once) and the
// references: the CPU floor (median serial CPU-seconds / cores) and Slurm's
// median makespan.
func (r *report) finish() {
	r.Medians = nil
	by := map[string][]summary{}
	for _, s := range r.Summaries {
		by[s.Runner] = append(by[s.Runner], s)
	}
	ref := map[string]summary{}
	for _, name := range runnerOrder {
		ss := by[name]
		if len(ss) == 0 {
			continue
		}
		m := ss[0]
		if len(ss) > 1 {
			m = medianOf(ss)
			r.Medians = append(r.Medians, m)
		}
		ref[name] = m
	}
	r.FloorS, r.SerialCPUS, r.SlurmS, r.SlurmEnoughS, r.ProbeSerial = 0, 0, 0, 0, 0
	if s, ok := ref[runSerial]; ok && r.Cores > 0 && s.Lost == 0 {
		r.SerialCPUS = s.CPUSeconds
		r.FloorS = round3(s.CPUSeconds / float64(r.Cores))
		r.ProbeSerial = s.ProbeCPUS
	}
	if s, ok := ref[runSlurm]; ok {
		r.SlurmS = s.MakespanS
	}
	if s, ok := ref[runSlurmEnough]; ok && s.Lost == 0 {
		r.SlurmEnoughS = s.MakespanS
	}
}

// medianOf is a summary whose every figure is the median of ss's (Rep 0).
func medianOf(ss []summary) summary {
	med := func(f func(summary) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		n := len(v)
		if n%2 == 1 {
			return v[n/2]
		}
		return round3((v[n/2-1] + v[n/2]) / 2)
	}
	return summary{
		Runner: ss[0].Runner, Jobs: ss[0].Jobs, Cores: ss[0].Cores,
		MakespanS:  med(func(s summary) float64 { return s.MakespanS }),
		CPUBusy:    med(func(s summary) float64 { return s.CPUBusy }),
		CPUSeconds: med(func(s summary) float64 { return s.CPUSeconds }),
		PeakMemMB:  med(func(s summary) float64 { return s.PeakMemMB }),
		BaseMemMB:  med(func(s summary) float64 { return s.BaseMemMB }),
		MeanWaitS:  med(func(s summary) float64 { return s.MeanWaitS }),
		Lost:       int(med(func(s summary) float64 { return float64(s.Lost) })),
		OOMKills:   int(med(func(s summary) float64 { return float64(s.OOMKills) })),
		Evictions:  int(med(func(s summary) float64 { return float64(s.Evictions) })),
		ProbeCPUS:  med(func(s summary) float64 { return s.ProbeCPUS }),
		Note:       fmt.Sprintf("median of %d runs", len(ss)),
	}
}

// label names a run in the table and the plot: the runner, with its
// repetition when there are several.
func (s summary) label(reps int) string {
	switch {
	case s.Rep == 0:
		return s.Runner + " (median)"
	case reps > 1:
		return fmt.Sprintf("%s #%d", s.Runner, s.Rep)
	}
	return s.Runner
}

// ratio is a/b to two decimals, "—" when either is unknown.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// speed is how much slower the machine was at s than at the serial run,
// by the speed probe; 0 when either was not probed.
func (r *report) speed(s summary) float64 {
	if r.ProbeSerial <= 0 || s.ProbeCPUS <= 0 {
		return 0
	}
	return s.ProbeCPUS / r.ProbeSerial
}

// writeTable writes the report as markdown: the table of runs (and
// medians), the floor and the runners skipped.
func (r *report) writeTable(w io.Writer, reps int, runnerDesc map[string]string) {
	fmt.Fprintln(w, "| runner | makespan s | CPU busy | CPU-s | peak mem GiB | mean wait s | jobs lost | OOM kills | evictions | makespan / floor | makespan / Slurm | makespan / Slurm, enough declared | CPU-s / serial | probe CPU-s (speed) | makespan / floor at speed | CPU-s / serial at speed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	rows := append(append([]summary(nil), r.Summaries...), r.Medians...)
	for _, s := range rows {
		probe, mf, cs := "—", "—", "—"
		if k := r.speed(s); k > 0 {
			probe = fmt.Sprintf("%.1f (%.2f)", s.ProbeCPUS, k)
			mf, cs = ratio(s.MakespanS, k*r.FloorS), ratio(s.CPUSeconds, k*r.SerialCPUS)
		} else if s.ProbeCPUS > 0 {
			probe = fmt.Sprintf("%.1f", s.ProbeCPUS)
		}
		fmt.Fprintf(w, "| %s | %.1f | %.0f %% | %.1f | %.2f | %.1f | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			s.label(reps), s.MakespanS, 100*s.CPUBusy, s.CPUSeconds, s.PeakMemMB/1024, s.MeanWaitS,
			s.Lost, s.OOMKills, s.Evictions,
			ratio(s.MakespanS, r.FloorS), ratio(s.MakespanS, r.SlurmS), ratio(s.MakespanS, r.SlurmEnoughS), ratio(s.CPUSeconds, r.SerialCPUS),
			probe, mf, cs)
	}
	fmt.Fprintln(w)
	if r.FloorS > 0 {
		fmt.Fprintf(w, "CPU floor: %.1f s (serial CPU-seconds %.1f / %d cores).\n", r.FloorS, r.SerialCPUS, r.Cores)
		if r.ProbeSerial > 0 {
			fmt.Fprintf(w, "Speed probe (%s, one at a time, before and after each run): %.1f CPU-s at the serial run; a run's speed is its probe's CPU-seconds over that, and the \"at speed\" ratios scale the floor and the serial CPU-seconds by it.\n", strings.Join(probeNames, ", "), r.ProbeSerial)
		}
	} else {
		fmt.Fprintln(w, "CPU floor: unknown (the serial runner did not run, or lost jobs).")
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "Skipped: %s.\n", strings.Join(r.Skipped, "; "))
	}
	if len(runnerDesc) > 0 {
		fmt.Fprintln(w)
		for _, name := range runnerOrder {
			if d, ok := runnerDesc[name]; ok {
				fmt.Fprintf(w, "- `%s`: %s\n", name, d)
			}
		}
	}
}
