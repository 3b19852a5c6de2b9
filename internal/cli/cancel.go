package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID...",
		Short: "Cancel queued or running daemon tasks",
		Long: `Cancel ends tasks: a queued one is cancelled at once; a running one has every process
in its cgroup killed and is recorded as cancelled. You may cancel only your own tasks
(root: any).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, id := range args {
				t, err := c.Cancel(cmd.Context(), id)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", id, err))
					continue
				}
				if t.State == "running" {
					fmt.Fprintf(g.stdout, "%s cancelling\n", id)
				} else {
					fmt.Fprintf(g.stdout, "%s %s\n", id, t.State)
				}
			}
			return errors.Join(errs...)
		},
	}
}
