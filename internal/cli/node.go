package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/api"
)

func newNodeCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Show the daemon's node: capacity, committed, soft-reserved and used per dimension",
		Long: `Node prints what the daemon's scheduler sees, per dimension (cpu cores, memory MB,
block IO ops/s, network Mbps): the capacity tasks may use, what running tasks hold as
hard limits (committed), what queued tasks hold as soft reservations now and at their
peak over the planning horizon, and what running tasks measurably use; then the queue;
then the whole node's load at the daemon's last sampling tick, every process counted
(/proc/stat CPU busy, MemAvailable, runnable and blocked threads, and where the kernel
has it PSI pressure for cpu, memory and io), which the daemon also records into its
time-series store every tick and gives the predictor as an input.
With --json it prints the body of GET /v1/node.`,
		Example: "  prescient node\n  prescient node --json | jq .dims.memory",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			n, err := c.Node(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, n)
			}
			printNode(g, n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the node status as JSON")
	return cmd
}

func printNode(g *globals, n *api.NodeStatus) {
	w := g.stdout
	fmt.Fprintf(w, "policy %s, daemon pid %d up %s\n", n.Policy, n.PID, time.Since(n.StartedAt).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(n.Dims) == 0 {
		fmt.Fprintf(tw, "\tcapacity\treserved\t\n")
		fmt.Fprintf(tw, "cpu cores\t%.2f\t%.2f\t\n", n.Capacity.CPUCores, n.Used.CPUCores)
		fmt.Fprintf(tw, "memory MB\t%.0f\t%.0f\t\n", n.Capacity.MemoryMB, n.Used.MemoryMB)
	} else {
		fmt.Fprintf(tw, "\tcapacity\tcommitted\tsoft now\tsoft peak\tused\t\n")
		for _, d := range []struct{ key, name, f string }{
			{"cpu", "cpu cores", "%.2f"}, {"memory", "memory MB", "%.0f"}, {"iops", "io ops/s", "%.0f"}, {"net", "net Mbps", "%.1f"},
		} {
			u := n.Dims[d.key]
			f := d.f + "\t"
			fmt.Fprintf(tw, "%s\t"+f+f+f+f+f+"\n", d.name, u.Capacity, u.Committed, u.SoftReserved, u.SoftPeak, u.Used)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "running %d of %d, queued %d of %d", n.Running, n.MaxRunning, n.Queued, n.MaxQueue)
	if n.Dims != nil {
		fmt.Fprintf(w, " (%d holding a soft reservation)", n.Reserved)
	}
	fmt.Fprintln(w)
	printLoad(w, n.Load)
	if n.Policy == "predict" {
		if n.ModelVersion > 0 {
			fmt.Fprintf(w, "sequence models: version %d\n", n.ModelVersion)
		} else {
			fmt.Fprintln(w, "sequence models: none trained yet (history and baselines serve)")
		}
	}
}

// printLoad prints the whole node's load (all processes).
func printLoad(w io.Writer, l *api.NodeLoad) {
	if l == nil {
		return
	}
	var parts []string
	if c := l.CPU; c != nil {
		parts = append(parts, fmt.Sprintf("cpu %.2f of %.0f cores busy", c.BusyCores, c.Cores))
	}
	if m := l.Memory; m != nil {
		parts = append(parts, fmt.Sprintf("memory %.0f of %.0f MB available", m.AvailableMB, m.TotalMB))
	}
	if l.Runnable != nil {
		parts = append(parts, fmt.Sprintf("%.0f runnable, %.0f blocked", *l.Runnable, deref(l.Blocked)))
	}
	fmt.Fprintf(w, "node load (all processes, %s): %s\n", l.Time.Format("15:04:05"), strings.Join(parts, "; "))
	if len(l.Pressure) > 0 {
		var ps []string
		for _, k := range []string{"cpu", "memory", "io"} {
			if p, ok := l.Pressure[k]; ok {
				ps = append(ps, fmt.Sprintf("%s some %.1f%% full %.1f%%", k, 100*p.Some, 100*p.Full))
			}
		}
		fmt.Fprintf(w, "pressure (PSI, share of the last interval stalled): %s\n", strings.Join(ps, ", "))
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// printSched prints what the predictive scheduler planned and changed.
func printSched(g *globals, t *api.Task) {
	w := g.stdout
	if t.Prediction != nil {
		var total float64
		var peak api.Amounts
		for _, s := range t.Prediction.Steps {
			total += s.DurationS
			peak.CPUCores = max(peak.CPUCores, s.Upper.CPUCores)
			peak.MemoryMB = max(peak.MemoryMB, s.Upper.MemoryMB)
		}
		fmt.Fprintf(w, "\n  prediction  %s: %d steps over %.0fs, p%.0f peak cpu %.2f cores, memory %.0f MB\n",
			t.Prediction.Model, len(t.Prediction.Steps), total, t.Prediction.UpperQuantile*100, peak.CPUCores, peak.MemoryMB)
		if t.Stretch > 0 {
			fmt.Fprintf(w, "  contention  ran %.2f × its predicted duration; cpu time %.2fs, predicted %.2fs", t.Stretch, t.CPUSeconds, t.PredictedCPUSeconds)
			if t.CPUThrottledS > 0 {
				fmt.Fprintf(w, "; held back %.2fs by its CPU quota", t.CPUThrottledS)
			}
			fmt.Fprintln(w)
		}
	}
	if r := t.Reservation; r != nil {
		if r.Held && r.Start != nil {
			fmt.Fprintf(w, "  reservation soft, start %s, cpu %.2f cores, memory %.0f MB\n", r.Start.Format("15:04:05"), r.Soft.CPUCores, r.Soft.MemoryMB)
		} else if r.Deferred {
			fmt.Fprintln(w, "  reservation none yet: deferred behind the planned tasks (serve --plan-depth)")
		} else {
			fmt.Fprintln(w, "  reservation none yet: waiting for room")
		}
	}
	if len(t.Allocations) > 0 {
		fmt.Fprintln(w, "\n  allocations")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range t.Allocations {
			mem := fmtLimit(a.Limits.MemoryMB, "MB")
			if a.Limits.MemoryHoldMB > 0 {
				mem += fmt.Sprintf(" (held, needs up to %.0f)", a.Limits.MemoryHoldMB)
			}
			fmt.Fprintf(tw, "  %s\t%s\tcpu %s\tmemory %s\tsoft %.0f MB\t%s\n", a.Time.Format("15:04:05.000"), a.Reason,
				fmtLimit(a.Limits.CPUCores, "cores"), mem, a.SoftMemoryMB, a.Detail)
		}
		tw.Flush()
	}
}
