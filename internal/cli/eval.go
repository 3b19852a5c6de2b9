package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/daemon"
	"github.com/prescient-sched/prescient/internal/predict"
	"github.com/prescient-sched/prescient/internal/predict/eval"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/trace"
)

func newEvalCmd(g *globals) *cobra.Command {
	var o eval.Options
	var wholeStep time.Duration
	cmd := &cobra.Command{
		Use:   "eval --format google2011|google2019|bitbrains --train FILE... [--test FILE...] | eval --state-dir DIR",
		Short: "Evaluate the predictors against public cluster traces",
		Long:  eval.Usage,
		Example: `  prescient eval --format google2011 --train google2011_job_daily_cpu_mem.csv
  prescient eval --format bitbrains --train bitbrains_rnd_vms.csv --json --plot bitbrains.svg
  prescient eval --state-dir /var/lib/prescient   (with the daemon stopped, or on a copy)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f := cmd.Flag("state-dir"); f != nil && f.Changed && o.Format == "" {
				if o.Frontier {
					return usageError{errors.New("--frontier applies to traces (--format, --train), not to --state-dir")}
				}
				return evalHistory(cmd, g, o, wholeStep)
			}
			if o.Format == "" || len(o.Train) == 0 {
				return usageError{errors.New("eval needs --format and at least one --train file, or --state-dir")}
			}
			pw := newProgress(g.stderr)
			defer pw.Stop()
			o.Progress = pw
			err := eval.Run(cmd.Context(), o, g.stdout)
			if errors.Is(err, trace.ErrMalformed) {
				return &exitError{exitUsage, err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&wholeStep, "predict-step", 0, "with --state-dir: the daemon's serve --predict-step (default 10 samples)")
	f.StringVar(&o.Format, "format", "", "trace format: google2011, google2019 or bitbrains")
	f.StringArrayVar(&o.Train, "train", nil, "training trace file (repeatable)")
	f.StringArrayVar(&o.Test, "test", nil, "test trace file (repeatable); none = a temporal split of --train")
	f.StringArrayVar(&o.Models, "model", nil, "evaluate only this model (repeatable)")
	f.BoolVar(&o.Frontier, "frontier", false, "also report other margin policies over the engine's forecasts, held out, and bounds (docs/prediction.md)")
	f.Float64Var(&o.Split, "split", 0, "fraction of the --train periods that trains when there is no --test (default 0.7)")
	f.BoolVar(&o.Validate, "validate", false, "split the training part again and score on its later part (choose methods there; score the test part once)")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	// Hidden knobs of the engine, for experiments (docs/prediction.md).
	var adapt, violation, regimeCap float64
	f.Float64Var(&regimeCap, "regime-cap", 0, "bound of each regime's margin, as a multiple of the single margin")
	var bins, seqSteps int
	f.IntVar(&seqSteps, "seq-steps", 0, "samples per dimension that train the sequence model")
	f.Float64Var(&adapt, "adapt", 0, "step of the per-signature online margin of the short horizon (0: off)")
	f.Float64Var(&violation, "violation", 0, "share of next-step samples the engine's margins allow above the allocation")
	f.IntVar(&bins, "regime-bins", 0, "regimes of relative uncertainty of the served margin (negative: one margin)")
	for _, n := range []string{"adapt", "violation", "regime-bins", "seq-steps", "regime-cap"} {
		_ = f.MarkHidden(n)
	}
	o.Tune = func(c *predict.Config) {
		c.Adapt = adapt
		if violation != 0 {
			c.Violation = violation
		}
		if bins != 0 {
			c.RegimeBins = bins
		}
		if regimeCap != 0 {
			c.RegimeCap = regimeCap
		}
		if seqSteps != 0 {
			c.MaxSeqSteps = seqSteps
		}
	}
	f.StringVar(&o.PlotPath, "plot", "", "write an SVG plot of slack against violations to this file")
	f.Int64Var(&o.Seed, "seed", 1, "seed of the learned model")
	return cmd
}

// evalHistory replays the daemon's own history (eval --state-dir).
func evalHistory(cmd *cobra.Command, g *globals, o eval.Options, wholeStep time.Duration) error {
	st, err := store.Open(g.stateDir, store.WithLogger(g.logger()))
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w (a daemon holds it: stop it, or evaluate a copy of the directory)", err)
		}
		return err
	}
	defer st.Close()
	runs, err := daemon.History(st, 0, 0)
	if err != nil {
		return err
	}
	return eval.RunHistory(cmd.Context(), eval.HistoryOptions{Runs: runs, WholeStep: wholeStep, Split: o.Split, Seed: o.Seed, JSON: o.JSON, Progress: g.stderr}, g.stdout)
}
