package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/api"
)

func newCancelCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cancel ID...",
		Short: "Cancel queued or running daemon tasks",
		Long: `Cancel ends tasks: a queued one is cancelled at once; a running one has every process
in its cgroup killed and is recorded as cancelled. You may cancel only your own tasks
(root: any). With --json it prints the tasks as a JSON array (state "running" for one
whose processes are being killed).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			done := []*api.Task{}
			for _, id := range args {
				t, err := c.Cancel(cmd.Context(), id)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", id, err))
					continue
				}
				done = append(done, t)
				if asJSON {
					continue
				}
				if t.State == "running" {
					fmt.Fprintf(g.stdout, "%s cancelling\n", id)
				} else {
					fmt.Fprintf(g.stdout, "%s %s\n", id, t.State)
				}
			}
			if asJSON {
				if err := writeJSON(g.stdout, done); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cancelled tasks as a JSON array")
	return cmd
}
