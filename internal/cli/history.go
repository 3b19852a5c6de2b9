package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/api"

	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "history SIGNATURE",
		Short: "List the runs of a task signature, newest first",
		Long: `History lists the stored runs whose signature is SIGNATURE (the full 64-character hex
digest that run and show print), newest first, with their state, duration and peaks.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []*task.Record
			c, err := g.daemonOrLocal(cmd.Context())
			if err != nil {
				return err
			}
			if c != nil {
				defer c.Close()
				ts, err := c.List(cmd.Context(), api.ListOptions{Signature: args[0], Limit: limit})
				if err != nil {
					return err
				}
				for i := range ts {
					rs = append(rs, fromAPI(&ts[i]))
				}
			} else {
				st, err := openLocal(g.stateDir, g.logger())
				if err != nil {
					return err
				}
				if err := st.withTasks(func(t *store.Tasks) error {
					var err error
					rs, err = t.BySignature(args[0], limit)
					return err
				}); err != nil {
					return err
				}
			}
			if asJSON {
				out := make([]taskView, 0, len(rs))
				for _, r := range rs {
					out = append(out, viewOf(r, nil))
				}
				return writeJSON(g.stdout, out)
			}
			if len(rs) == 0 {
				fmt.Fprintf(g.stderr, "no runs of signature %s\n", args[0])
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSUBMITTED\tDURATION\tPEAK CPU %\tPEAK MEM MB\tPEAK IO/s\tPEAK NET Mbps")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%s\t%s\t%s\t%s\n", r.ID, r.State,
					r.SubmittedAt.Format("2006-01-02 15:04:05"), r.DurationS,
					fmtStat(r.Peak.CPUPct, 1), fmtStat(r.Peak.MemoryMB, 1), fmtStat(r.Peak.IOPS, 1), fmtStat(r.Peak.NetMbps, 2))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as a JSON array")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many runs (0 = all)")
	return cmd
}
