package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/api"
)

func newTopCmd(g *globals) *cobra.Command {
	var (
		interval time.Duration
		once     bool
		asJSON   bool
		queued   int
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "A live view of the node and its tasks, like htop for the scheduler",
		Long: `Top redraws, every --interval until Ctrl-C, the daemon's node — per dimension what
running tasks use, what they hold (committed hard limits) and what queued tasks reserve,
against the capacity — then the running tasks with their use against their limits and
their last allocation change, then the head of the queue with each task's planned start.
You see your own tasks (root: all). When stdout is not a terminal, or with --once, it
prints one frame; --json prints the node and the tasks as JSON once.`,
		Example: "  prescient top\n  prescient top --interval 5s\n  prescient top --once | head -20",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usageError{errors.New("--interval must be 100ms or more")}
			}
			c, _, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			live := isTerminal(g.stdout) && !once && !asJSON
			for {
				f, err := fetchTop(ctx, c, queued)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if asJSON {
					return writeJSON(g.stdout, f)
				}
				width, height := 120, 0
				if live {
					width, height = termSize(g.stdout)
					fmt.Fprint(g.stdout, "\x1b[H\x1b[2J")
				}
				renderTop(g.stdout, f, time.Now(), width, height)
				if !live {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&interval, "interval", 2*time.Second, "time between frames")
	fl.BoolVar(&once, "once", false, "print one frame and exit")
	fl.BoolVar(&asJSON, "json", false, "print the node and the tasks as JSON once")
	fl.IntVar(&queued, "queued", 20, "queued tasks shown (the first by planned start)")
	return cmd
}

// topFrame is what one frame of top shows (and --json prints).
type topFrame struct {
	Node  *api.NodeStatus `json:"node"`
	Tasks []api.Task      `json:"tasks"` // running, then queued
}

func fetchTop(ctx context.Context, c *api.Client, queued int) (*topFrame, error) {
	n, err := c.Node(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := c.Live(ctx, max(queued, 1))
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		// A daemon without the dashboard's data: the plain lists (no use
		// now, no reservations).
		ts, err = c.List(ctx, api.ListOptions{State: api.StateRunning})
		if err == nil {
			var q []api.Task
			q, err = c.List(ctx, api.ListOptions{State: api.StateQueued, Limit: queued})
			ts = append(ts, q...)
		}
	}
	if err != nil {
		return nil, err
	}
	return &topFrame{Node: n, Tasks: ts}, nil
}

// termSize is the terminal's columns and rows (120 × 0 when unknown).
func termSize(w io.Writer) (int, int) {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col), int(ws.Row)
		}
	}
	return 120, 0
}

// renderTop writes one frame, each line cut to width; height > 0 bounds
// the lines.
func renderTop(w io.Writer, f *topFrame, now time.Time, width, height int) {
	var lines []string
	add := func(format string, a ...any) {
		s := fmt.Sprintf(format, a...)
		if r := []rune(s); len(r) > width {
			s = string(r[:width])
		}
		lines = append(lines, s)
	}
	n := f.Node
	add("prescient %s  policy %s  running %d/%d  queued %d  up %s%s", now.Format("15:04:05"), n.Policy, n.Running, n.MaxRunning,
		n.Queued, now.Sub(n.StartedAt).Round(time.Second), modelNote(n))
	barW := max(min(width-64, 40), 10)
	for _, d := range []struct{ key, name, unit, f string }{
		{"cpu", "cpu", "cores", "%.2f"}, {"memory", "mem", "MB", "%.0f"}, {"iops", "io", "ops/s", "%.0f"}, {"net", "net", "Mbps", "%.1f"},
	} {
		u, ok := n.Dims[d.key]
		if !ok {
			if d.key == "cpu" {
				u = api.DimUsage{Capacity: n.Capacity.CPUCores, Committed: n.Used.CPUCores}
			} else if d.key == "memory" {
				u = api.DimUsage{Capacity: n.Capacity.MemoryMB, Committed: n.Used.MemoryMB}
			} else {
				continue
			}
		}
		add("%-4s [%s] used "+d.f+" held "+d.f+" soft "+d.f+" of "+d.f+" %s", d.name, bar(u, barW), u.Used, u.Committed, u.SoftReserved, u.Capacity, d.unit)
	}
	add("")
	add("%-10s %6s %13s %17s %8s  %-24s %s", "TASK", "UID", "CPU use/limit", "MEM MB use/limit", "ELAPSED", "LAST CHANGE", "COMMAND")
	var q []api.Task
	for _, t := range f.Tasks {
		if t.State != api.StateRunning {
			q = append(q, t)
			continue
		}
		var use api.Amounts
		if t.Usage != nil {
			use = *t.Usage
		}
		lim, change := t.Limits, ""
		if k := len(t.Allocations); k > 0 {
			a := t.Allocations[k-1]
			lim = a.Limits
			change = fmt.Sprintf("%s %s ago", a.Reason, now.Sub(a.Time).Round(time.Second))
		}
		elapsed := ""
		if t.StartedAt != nil {
			elapsed = now.Sub(*t.StartedAt).Round(time.Second).String()
		}
		add("%-10s %6d %13s %17s %8s  %-24s %s", shortID(t.ID), t.Owner.UID,
			fmt.Sprintf("%.2f/%s", use.CPUCores, limitOr(lim.CPUCores, "%.2f")),
			fmt.Sprintf("%.0f/%s", use.MemoryMB, limitOr(lim.MemoryMB, "%.0f")), elapsed, change, strings.Join(t.Spec.Argv, " "))
	}
	if len(q) > 0 {
		add("")
		add("%-10s %6s %-20s %17s  %-14s %s", "QUEUED", "PRIO", "START", "RESERVED cpu/MB", "MODEL", "COMMAND")
		for _, t := range q {
			start, res := "waiting for room", fmt.Sprintf("%.2f/%.0f", t.Requests.CPUCores, t.Requests.MemoryMB)
			if r := t.Reservation; r != nil {
				switch {
				case r.Held && r.Start != nil:
					start = "at " + r.Start.Format("15:04:05")
					if d := r.Start.Sub(now); d > 0 {
						start += " (in " + d.Round(time.Second).String() + ")"
					}
					res = fmt.Sprintf("%.2f/%.0f", r.Soft.CPUCores, r.Soft.MemoryMB)
				case r.Deferred:
					start = "deferred"
				}
			}
			model := "requests"
			if t.Prediction != nil {
				model = t.Prediction.Model
			}
			add("%-10s %6d %-20s %17s  %-14s %s", shortID(t.ID), t.Priority, start, res, model, strings.Join(t.Spec.Argv, " "))
		}
	}
	if height > 0 && len(lines) > height-1 {
		lines = lines[:height-1]
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func modelNote(n *api.NodeStatus) string {
	if n.Policy != "predict" {
		return ""
	}
	if n.ModelVersion > 0 {
		return fmt.Sprintf("  models v%d", n.ModelVersion)
	}
	return "  models: none yet"
}

// bar draws used (█), held but unused (▒) and soft-reserved (░) against
// the capacity.
func bar(u api.DimUsage, w int) string {
	if u.Capacity <= 0 {
		return strings.Repeat(" ", w)
	}
	cells := func(v float64) int { return min(max(int(v/u.Capacity*float64(w)+0.5), 0), w) }
	used := cells(u.Used)
	held := max(cells(u.Committed), used)
	soft := max(cells(u.Committed+u.SoftReserved), held)
	return strings.Repeat("█", used) + strings.Repeat("▒", held-used) + strings.Repeat("░", soft-held) + strings.Repeat(" ", w-soft)
}

func limitOr(v float64, f string) string {
	if v == 0 {
		return "none"
	}
	return fmt.Sprintf(f, v)
}

func shortID(id string) string {
	if len(id) > 10 {
		return id[len(id)-10:]
	}
	return id
}
