// Command benchmix is the real-job-mix benchmark of Prescient (make
// bench-mix; docs/benchmarks.md, "Real job mix").
//
// It generates a mix of 24 real programs (compressors, sorts, checksums,
// stress-ng CPU and memory jobs, python memory ramps, a Go build, a shell
// pipeline) deterministically into a scratch directory, each job declaring
// what a typical user declares (memory about twice its real peak, three
// jobs too little), and runs it, one runner at a time, through:
//
//	serial        no scheduler, one job at a time (each job alone: the CPU floor)
//	all           no scheduler, every job at once
//	par           no scheduler, at most --parallel jobs at a time
//	predict-cold  prescient serve --policy predict on an empty state directory
//	predict-warm  the same daemon state again: history of every job
//	fit           prescient serve --policy fit (declared requests)
//	slurm         Slurm through the shared harness's run_slurm.sh, when installed
//
// Before each run the outputs are removed and every input is read once, so
// all runners start with the same page cache; a sampler reads the machine's
// CPU busy and memory in use every second. Each run writes a summary.json;
// the whole benchmark writes results.md (the table, the CPU floor and the
// ratios the targets use), results.json and plot.svg (CPU and memory in use
// over time, one line per run) into the output directory.
//
// It needs root (cgroups) and the machine to itself: a full run takes about
// 30 minutes of both cores.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	Mix, Out, Prescient, Harness string
	Runners, Jobs, ServeArgs     []string
	Parallel, Repeat, Cores      int
	MemoryMB                     int
	Timeout                      time.Duration
	GenerateOnly, Probe          bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "benchmix:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var runners, jobs, serveArgs string
	fs := flag.NewFlagSet("benchmix", flag.ContinueOnError)
	fs.SetOutput(stderr)
	harness := os.Getenv("JOBMIX_HARNESS")
	if harness == "" {
		harness = "../shared/jobmix"
	}
	fs.StringVar(&c.Mix, "mix", "/var/tmp/prescient-benchmix", "scratch directory of the mix, on disk (not tmpfs: its files would count as memory in use); inputs ~1.4 GB, outputs ~1 GB")
	fs.StringVar(&c.Out, "out", "", "output directory (default MIX/results/<UTC time>)")
	fs.StringVar(&c.Prescient, "prescient", "bin/prescient", "the prescient binary")
	fs.StringVar(&c.Harness, "slurm-harness", harness, "directory of the shared harness's run_slurm.sh (env JOBMIX_HARNESS)")
	fs.StringVar(&runners, "runners", strings.Join(runnerOrder, ","), "runners to run, comma separated; they run in the order "+strings.Join(runnerOrder, ","))
	fs.StringVar(&jobs, "jobs", "", "only these jobs of the mix, comma separated (default all 24; for smoke tests)")
	fs.IntVar(&c.Parallel, "parallel", 2, "jobs at a time of the par runner")
	fs.IntVar(&c.Repeat, "repeat", 1, "run every runner this many times (in turn); the table adds medians")
	fs.IntVar(&c.Cores, "cores", runtime.NumCPU(), "cores the machine gives the mix (serve --cpu; the floor's divisor)")
	fs.StringVar(&serveArgs, "serve-args", "", "more flags for the Prescient runners' prescient serve, space separated (e.g. \"--cpu-overcommit 1.25\")")
	fs.IntVar(&c.MemoryMB, "memory", 0, "MB of memory the naive runners' jobs (one parent cgroup) and Prescient (serve --memory) are given (default MemTotal - 1 GiB, what the harness gives Slurm's node; Slurm keeps its own)")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Minute, "longest one run may take; its jobs are ended then (and lost)")
	fs.BoolVar(&c.Probe, "probe", true, "run the speed probe (four of the mix's jobs, one at a time, ≈ 25 CPU-s) before and after every run, and give the ratios against the floor scaled to the machine's speed at each run too")
	fs.BoolVar(&c.GenerateOnly, "generate-only", false, "write the mix (jobs.tsv, src/, data/) and stop")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: benchmix [flags]\n\nRuns the real job mix through Prescient and its peers; see docs/benchmarks.md.\nRunners: %s.\n\nFlags:\n", strings.Join(runnerOrder, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Runners = splitList(runners)
	c.Jobs = splitList(jobs)
	c.ServeArgs = strings.Fields(serveArgs)
	for _, r := range c.Runners {
		if !slices.Contains(runnerOrder, r) {
			return c, fmt.Errorf("--runners: no runner %q (have %s)", r, strings.Join(runnerOrder, ", "))
		}
	}
	if slices.Contains(c.Runners, runPredictWarm) && !slices.Contains(c.Runners, runPredictCold) {
		return c, errors.New("--runners: predict-warm runs on predict-cold's state: select both")
	}
	if c.Parallel < 1 || c.Repeat < 1 || c.Cores < 1 || c.Timeout <= 0 || c.MemoryMB < 0 {
		return c, errors.New("--parallel, --repeat, --cores and --timeout must be positive, --memory not negative")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	jobs, err := selectJobs(c.Jobs)
	if err != nil {
		return err
	}
	tl, err := findTools()
	if err != nil {
		return err
	}
	if c.Mix, err = filepath.Abs(c.Mix); err != nil {
		return err
	}
	if err := generate(c.Mix, jobs, tl, func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }); err != nil {
		return err
	}
	log.Info("mix ready", "dir", c.Mix, "jobs", len(jobs))
	if c.GenerateOnly {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("the runners need root (cgroups, prescient serve)")
	}
	if c.Prescient, err = filepath.Abs(c.Prescient); err != nil {
		return err
	}
	if c.Out == "" {
		c.Out = filepath.Join(c.Mix, "results", time.Now().UTC().Format("20060102T150405Z"))
	}
	if c.Out, err = filepath.Abs(c.Out); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	capMB, err := memCapMB()
	if err != nil {
		return err
	}
	if c.MemoryMB > 0 {
		if c.MemoryMB > capMB {
			return fmt.Errorf("--memory %d MB: over the %d MB the machine can give (MemTotal - 1 GiB)", c.MemoryMB, capMB)
		}
		capMB = c.MemoryMB
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := report{Cores: c.Cores}
	desc := map[string]string{}
	var slurm slurmRunner
	if slices.Contains(c.Runners, runSlurm) || slices.Contains(c.Runners, runSlurmEnough) {
		var why string
		if slurm, why = slurmAvailable(c.Harness, os.Getenv); why != "" {
			log.Warn("slurm runners skipped", "why", why)
			rep.Skipped = append(rep.Skipped, "slurm: "+why)
		}
	}
	type plotted struct {
		s       summary
		samples []nodeSample
	}
	var runs []plotted
	for r := 1; r <= c.Repeat; r++ {
		for _, name := range runnerOrder {
			if !slices.Contains(c.Runners, name) || ctx.Err() != nil {
				continue
			}
			var rn runner
			stateDir := filepath.Join(c.Out, fmt.Sprintf("state-predict-%d", r))
			switch name {
			case runSerial:
				rn, desc[name] = naiveRunner{parallel: 1}, "no scheduler, one job at a time in mix order: each job alone (the CPU floor's CPU-seconds)"
			case runAll:
				rn, desc[name] = naiveRunner{}, "no scheduler, every job started at once"
			case runPar:
				rn, desc[name] = naiveRunner{parallel: c.Parallel}, fmt.Sprintf("no scheduler, at most %d jobs at a time in mix order", c.Parallel)
			case runPredictCold:
				rn, desc[name] = prescientRunner{Bin: c.Prescient, Policy: "predict", StateDir: stateDir, Extra: c.ServeArgs}, "`prescient serve --policy predict` on an empty state directory; jobs declare --cpu/--memory as in jobs.tsv"
			case runPredictWarm:
				rn, desc[name] = prescientRunner{Bin: c.Prescient, Policy: "predict", StateDir: stateDir, Extra: c.ServeArgs}, "the same, again on predict-cold's state directory: history of every job"
			case runFit:
				rn, desc[name] = prescientRunner{Bin: c.Prescient, Policy: "fit", StateDir: filepath.Join(c.Out, fmt.Sprintf("state-fit-%d", r)), Extra: c.ServeArgs}, "`prescient serve --policy fit` on an empty state directory: the declarations are the requests"
			case runSlurm:
				if slurm.Harness == "" {
					continue
				}
				rn, desc[name] = slurm, "Slurm through the shared harness (`run_slurm.sh`: sbatch --cpus-per-task --mem --time, cgroup cpusets and memory limits)"
			case runSlurmEnough:
				if slurm.Harness == "" {
					continue
				}
				enough := slurm
				enough.Enough = true
				rn, desc[name] = enough, "the same, every job declaring enough memory: the under-declared jobs declare by the rule the others follow (about twice the real peak), as their users would after the OOM kills: the mix's whole work, nothing lost"
			}
			dir := filepath.Join(c.Out, name)
			if c.Repeat > 1 {
				dir = fmt.Sprintf("%s-%d", dir, r)
			}
			log.Info("run", "runner", name, "rep", r, "dir", dir)
			e := &runEnv{mix: c.Mix, dir: dir, jobs: jobs, tools: tl, cores: c.Cores, capMB: capMB, timeout: c.Timeout, probe: c.Probe, log: log.With("runner", name)}
			s, samples, err := runOnce(ctx, name, r, rn, e)
			if err != nil {
				log.Error("run failed", "runner", name, "rep", r, "err", err)
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s #%d: %v", name, r, err))
				continue
			}
			log.Info("run done", "runner", name, "rep", r, "makespan_s", s.MakespanS, "cpu_busy", s.CPUBusy, "lost", s.Lost)
			rep.Summaries = append(rep.Summaries, s)
			runs = append(runs, plotted{s, samples})
		}
	}
	rep.finish()

	var md strings.Builder
	fmt.Fprintf(&md, "# benchmix: %d jobs, %d cores, memory cap %d MB, %s\n\n", len(jobs), c.Cores, capMB, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	if len(c.ServeArgs) > 0 {
		fmt.Fprintf(&md, "Prescient runners: `prescient serve ... %s`\n\n", strings.Join(c.ServeArgs, " "))
	}
	fmt.Fprintf(&md, "`benchmix %s`\n\n", strings.Join(args, " "))
	rep.writeTable(&md, c.Repeat, desc)
	if err := os.WriteFile(filepath.Join(c.Out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := writeJSONFile(filepath.Join(c.Out, "results.json"), rep); err != nil {
		return err
	}
	var ss []series
	for _, p := range runs {
		ss = append(ss, seriesOf(p.s.label(c.Repeat), p.samples, p.s))
	}
	pf, err := os.Create(filepath.Join(c.Out, "plot.svg"))
	if err != nil {
		return err
	}
	defer pf.Close()
	if err := writePlot(pf, fmt.Sprintf("benchmix: %d jobs on %d cores", len(jobs), c.Cores), ss); err != nil {
		return err
	}
	if err := pf.Close(); err != nil {
		return err
	}
	fmt.Fprint(stdout, md.String())
	fmt.Fprintf(stdout, "\nresults in %s (results.md, results.json, plot.svg)\n", c.Out)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// memCapMB is the memory every runner is given: MemTotal - 1 GiB, what the
// shared harness gives Slurm's node.
func memCapMB() (int, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	totalKB, _, err := parseMeminfo(b)
	if err != nil {
		return 0, err
	}
	return int(totalKB/1024) - 1024, nil
}
