package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/api"
)

func newPsCmd(g *globals) *cobra.Command {
	var (
		all, asJSON bool
		state       string
		limit       int
	)
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the daemon's tasks: queued and running, or all with --all",
		Long: `Ps lists your tasks on the daemon (every user's as root), newest first: queued and
running ones, or with --all also ended ones. --json prints an array of task objects
(id, state, signature, submitted_at, started_at, finished_at and the rest of the task).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var ts []api.Task
			switch {
			case state != "":
				ts, err = c.List(cmd.Context(), api.ListOptions{State: state, Limit: limit})
			case all:
				ts, err = c.List(cmd.Context(), api.ListOptions{Limit: limit})
			default:
				for _, s := range []string{api.StateRunning, api.StateQueued} {
					part, lerr := c.List(cmd.Context(), api.ListOptions{State: s, Limit: limit})
					if lerr != nil {
						err = lerr
						break
					}
					ts = append(ts, part...)
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				if ts == nil {
					ts = []api.Task{}
				}
				return writeJSON(g.stdout, ts)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSUBMITTED\tRUNTIME\tEXIT\tCOMMAND")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.State, t.SubmittedAt.Local().Format("01-02 15:04:05"),
					runtimeOf(&t), exitOf(&t), shorten(strings.Join(t.Spec.Argv, " "), 60))
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "include ended tasks")
	fl.StringVar(&state, "state", "", "only tasks in this state (queued, running, succeeded, failed, cancelled)")
	fl.IntVar(&limit, "limit", 100, "at most this many per state (0 = all)")
	fl.BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func runtimeOf(t *api.Task) string {
	switch {
	case t.StartedAt == nil:
		return "-"
	case t.FinishedAt == nil:
		return time.Since(*t.StartedAt).Truncate(100 * time.Millisecond).String()
	}
	return t.FinishedAt.Sub(*t.StartedAt).Truncate(time.Millisecond).String()
}

func exitOf(t *api.Task) string {
	switch {
	case t.OOMKilled:
		return "oom"
	case t.ExitCode != nil:
		return itoa(*t.ExitCode)
	case t.Signal != "":
		return t.Signal
	}
	return "-"
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
