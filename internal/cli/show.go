package cli

import (
	"errors"
	"fmt"
	"math"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

func newShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a stored run: its record and a sparkline per measured dimension",
		Long: `Show prints a stored run: its state and exit, signature, limits, peak and mean per
dimension, and a terminal sparkline of each measured curve (a gap where a dimension was
unavailable). With --json it prints the run as JSON, with the whole curve under "curve".`,
		Example: "  prescient show 01JD3Q5Z8M6X2C1V9B7N4K0PQR --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.daemonOrLocal(cmd.Context())
			if err != nil {
				return err
			}
			if c != nil {
				defer c.Close()
				t, err := c.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				pts, err := c.Curve(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				rec, curve := fromAPI(t), samplesFromAPI(pts)
				if asJSON {
					v := viewOf(rec, curve)
					v.Priority, v.Retries = t.Priority, t.Retries
					v.Prediction, v.Reservation, v.Allocations = t.Prediction, t.Reservation, t.Allocations
					v.CPUThrottledS, v.Stretch, v.PredictedCPUSeconds = t.CPUThrottledS, t.Stretch, t.PredictedCPUSeconds
					return writeJSON(g.stdout, v)
				}
				printShow(g, rec, curve)
				printSched(g, t)
				return nil
			}
			st, err := openLocal(g.stateDir, g.logger())
			if err != nil {
				return err
			}
			var rec *task.Record
			err = st.withTasks(func(t *store.Tasks) error {
				var err error
				rec, err = t.Get(args[0])
				return err
			})
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no task %q in %s", args[0], g.stateDir)
			}
			if err != nil {
				return err
			}
			curve, err := st.readCurve(rec.ID)
			if err != nil {
				return fmt.Errorf("read profile of %s: %w", rec.ID, err)
			}
			if asJSON {
				return writeJSON(g.stdout, viewOf(rec, curve))
			}
			printShow(g, rec, curve)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run, with its curve, as JSON")
	return cmd
}

func printShow(g *globals, r *task.Record, curve []resource.Sample) {
	w := g.stdout
	fmt.Fprintf(w, "task %s  %s (%s)\n", r.ID, r.State, describeEnd(r))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  command\t%q\n", r.Spec.Argv)
	fmt.Fprintf(tw, "  signature\t%s\n", r.Signature)
	fmt.Fprintf(tw, "  submitted\t%s\n", r.SubmittedAt.Format("2006-01-02 15:04:05"))
	fmt.Fprintf(tw, "  duration\t%.2fs, %d samples\n", r.DurationS, r.Samples)
	if r.CPUSeconds > 0 {
		fmt.Fprintf(tw, "  cpu time\t%.2fs\n", r.CPUSeconds)
	}
	fmt.Fprintf(tw, "  limits\tcpu %s, memory %s, io %s, net %s\n",
		fmtLimit(r.Limits.CPUCores, "cores"), fmtLimit(r.Limits.MemoryMB, "MB"),
		fmtLimit(r.Limits.IOPS, "ops/s"), fmtLimit(r.Limits.NetMbps, "Mbps"))
	tw.Flush()
	// Peak and mean come from the record (CPU in percent of one core, as
	// stored); the curve's shape does not depend on the unit.
	dims := []struct {
		name       string
		d          resource.Dim
		peak, mean *float64
	}{
		{"cpu %", resource.CPU, r.Peak.CPUPct, r.Mean.CPUPct},
		{"memory MB", resource.Memory, r.Peak.MemoryMB, r.Mean.MemoryMB},
		{"io ops/s", resource.IO, r.Peak.IOPS, r.Mean.IOPS},
		{"net Mbps", resource.Net, r.Peak.NetMbps, r.Mean.NetMbps},
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\n  \tpeak\tmean\tcurve\n")
	for _, d := range dims {
		vals := make([]float64, len(curve))
		any := false
		for i, s := range curve {
			vals[i] = math.NaN()
			if s.Avail.Has(d.d) {
				vals[i], any = s.Value(d.d), true
			}
		}
		line := "unavailable"
		if any {
			line = sparkline(vals, 60)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.name, fmtStat(d.peak, 1), fmtStat(d.mean, 1), line)
	}
	tw.Flush()
	if r.LogDir != "" {
		fmt.Fprintf(w, "\n  logs in %s\n", r.LogDir)
	}
}
