package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/predict/eval"
	"github.com/prescient-sched/prescient/internal/trace"
)

func newEvalCmd(g *globals) *cobra.Command {
	var o eval.Options
	cmd := &cobra.Command{
		Use:   "eval --format google2011|google2019|bitbrains --train FILE... [--test FILE...]",
		Short: "Evaluate the predictors against public cluster traces",
		Long:  eval.Usage,
		Example: `  prescient eval --format google2011 --train google2011_job_daily_cpu_mem.csv
  prescient eval --format bitbrains --train bitbrains_rnd_vms.csv --json --plot bitbrains.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Format == "" || len(o.Train) == 0 {
				return usageError{errors.New("eval needs --format and at least one --train file")}
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
	f.StringVar(&o.Format, "format", "", "trace format: google2011, google2019 or bitbrains")
	f.StringArrayVar(&o.Train, "train", nil, "training trace file (repeatable)")
	f.StringArrayVar(&o.Test, "test", nil, "test trace file (repeatable); none = a temporal split of --train")
	f.StringArrayVar(&o.Models, "model", nil, "evaluate only this model (repeatable)")
	f.Float64Var(&o.Split, "split", 0, "fraction of the --train periods that trains when there is no --test (default 0.7)")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	f.StringVar(&o.PlotPath, "plot", "", "write an SVG plot of slack against violations to this file")
	f.Int64Var(&o.Seed, "seed", 1, "seed of the learned model")
	return cmd
}
