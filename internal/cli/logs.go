package cli

import (
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow bool
		stream string
	)
	cmd := &cobra.Command{
		Use:   "logs [-f] ID",
		Short: "Print a daemon task's output (stdout to stdout, stderr to stderr)",
		Long: `Logs prints what a task wrote: its stdout on stdout and its stderr on stderr (or one
of them with --stream). With -f it follows the output until the task ends.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			type out struct {
				name string
				w    io.Writer
			}
			var outs []out
			switch stream {
			case "", "both":
				outs = []out{{"stdout", g.stdout}, {"stderr", g.stderr}}
			case "stdout":
				outs = []out{{"stdout", g.stdout}}
			case "stderr":
				outs = []out{{"stderr", g.stdout}}
			default:
				return usageError{fmt.Errorf("--stream %q: want stdout, stderr or both", stream)}
			}
			// Check the task exists first, for a clear error.
			if _, err := c.Get(cmd.Context(), args[0]); err != nil {
				return err
			}
			var wg sync.WaitGroup
			errs := make([]error, len(outs))
			for i, o := range outs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rc, err := c.Logs(cmd.Context(), args[0], o.name, follow)
					if err != nil {
						errs[i] = err
						return
					}
					defer rc.Close()
					_, errs[i] = io.Copy(o.w, rc)
				}()
			}
			wg.Wait()
			for _, e := range errs {
				if e != nil {
					return e
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing output until the task ends")
	cmd.Flags().StringVar(&stream, "stream", "both", "stdout, stderr or both")
	return cmd
}
