package cli

import (
	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/workload"
)

func newWorkloadCmd(g *globals) *cobra.Command {
	var dir string
	var quiet bool
	cmd := &cobra.Command{
		Use:    "workload SCRIPT",
		Short:  "Follow a scripted resource curve (a test workload)",
		Hidden: true,
		Long: `Workload plays SCRIPT: phases separated by ";", each "DURATION:key=value,..." with
keys cpu (cores), mem (MiB held), iops (O_DIRECT 4 KiB ops/s in --dir), net (Mbps sent to a
loopback peer it starts itself). Example: "2s:cpu=0.5,mem=300;3s:iops=200,net=40".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := workload.ParseScript(args[0])
			if err != nil {
				return usageError{err}
			}
			o := workload.Options{Dir: dir}
			if !quiet {
				o.Log = g.stdout
			}
			return workload.Run(cmd.Context(), sc, o)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the IO file (on a block device; default $TMPDIR)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "print nothing")
	return cmd
}
