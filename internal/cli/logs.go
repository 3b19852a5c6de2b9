package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/api"
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
of them with --stream). With -f it follows the output until the task ends.

The daemon keeps a bounded amount of output: when a stream outgrew its rotation (serve
--log-max-bytes, --log-keep), logs prints what is left of its newest file and says on
stderr how many bytes from the start were dropped; when the logs of all tasks outgrew
serve --log-total-bytes, the logs of the oldest ended tasks were removed, and logs says
when (and exits 1).`,
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
			t, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := logsRemoved(t); err != nil {
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
			if !api.TerminalState(t.State) {
				// Followed to its end (or still running): what was dropped
				// is known once it has ended.
				if t, err = c.Get(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			for _, o := range outs {
				if n := droppedBytes(t, o.name); n > 0 {
					fmt.Fprintf(g.stderr, "prescient: the first %d bytes of %s were dropped by rotation (--log-max-bytes, --log-keep)\n", n, o.name)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing output until the task ends")
	cmd.Flags().StringVar(&stream, "stream", "both", "stdout, stderr or both")
	return cmd
}

// logsRemoved is the error for a task whose logs retention removed.
func logsRemoved(t *api.Task) error {
	l := t.LogsDropped
	if l == nil || l.RemovedAt == nil {
		return nil
	}
	why := l.Reason
	if l.Reason == "retention" {
		why = fmt.Sprintf("retention (--log-total-bytes %d)", l.LogTotalBytes)
	}
	return fmt.Errorf("logs of task %s were removed on %s by %s", t.ID, l.RemovedAt.Local().Format(time.RFC3339), why)
}

// droppedBytes is how many bytes from the start of stream rotation dropped.
func droppedBytes(t *api.Task, stream string) int64 {
	if t.LogsDropped == nil {
		return 0
	}
	if stream == "stderr" {
		return t.LogsDropped.StderrBytes
	}
	return t.LogsDropped.StdoutBytes
}
