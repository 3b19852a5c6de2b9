package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/task"
)

// envFlags are the environment filter options shared by serve and
// signature.
type envFlags struct {
	allow     []string
	deny      []string
	noDefault bool
}

func (f *envFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.allow, "env-allow", nil, "only environment variables matching this pattern (path.Match: *, ?, [a-z]) enter signatures (repeatable; default: all not denied)")
	fl.StringArrayVar(&f.deny, "env-deny", nil, "environment variables matching this pattern never enter signatures, besides the default deny list (repeatable)")
	fl.BoolVar(&f.noDefault, "no-default-env-deny", false, "do not deny the default list (terminals, sessions, CI systems' per-run variables; see docs/signature.md)")
}

// lists returns the allow and deny lists for task.SignerConfig.
func (f *envFlags) lists() (allow, deny []string) {
	deny = []string{}
	if !f.noDefault {
		deny = task.DefaultEnvDeny()
	}
	return f.allow, append(deny, f.deny...)
}

func newSignatureCmd(g *globals) *cobra.Command {
	var (
		inputs []string
		env    envFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "signature [flags] -- CMD [ARGS...]",
		Short: "Print the signature CMD would run under, and what went into it",
		Long: `Signature computes the signature of CMD as submit or run would (in this directory, with
this environment, with the given --input files), without running anything, and prints
what went into it: the program that runs (after env(1) and #! lines), the script, the
canonical argument vector, each input's type and size bucket, the environment variables
that were hashed (names only: values may be secret) and the ones left out, with why.
Two runs with different signatures differ in one of these.

The daemon filters the environment with its own serve --env-allow/--env-deny; give the
same flags here to see what it sees.`,
		Example: `  prescient signature -- python3 train.py data.csv
  prescient signature --input data.csv --json -- ./etl data.csv | jq .env_excluded`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			allow, deny := env.lists()
			s, err := task.NewSigner(task.SignerConfig{EnvAllow: allow, EnvDeny: deny, Logger: g.logger()})
			if err != nil {
				return usageError{err}
			}
			cwd, err := os.Getwd()
			if err != nil {
				return err
			}
			x, err := s.Explain(task.Spec{Argv: args, Inputs: inputs, Env: os.Environ(), Dir: cwd})
			if err != nil {
				if errors.Is(err, task.ErrProgramNotFound) {
					return &exitError{exitNotFound, err}
				}
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, x)
			}
			printExplanation(g, x)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false) // everything after CMD belongs to it
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "a file or directory the task reads (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the explanation as JSON")
	env.register(cmd)
	return cmd
}

func printExplanation(g *globals, x task.Explanation) {
	w := g.stdout
	fmt.Fprintf(w, "signature  %s (version %d)\n", x.Hash, x.Version)
	fmt.Fprintf(w, "code       %s\n", x.Code)
	fmt.Fprintf(w, "program    %s\n", x.Program)
	if x.Script != "" || x.ScriptKind != "" {
		fmt.Fprintf(w, "script     %s (%s)\n", orDash(x.Script), x.ScriptKind)
	}
	fmt.Fprintf(w, "argv       %s\n", strings.Join(quoteAll(x.Argv), " "))
	if len(x.Inputs) > 0 {
		fmt.Fprintln(w, "inputs")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, in := range x.Inputs {
			files := ""
			if in.Files > 0 {
				files = fmt.Sprintf("%d files", in.Files)
			}
			fmt.Fprintf(tw, "  %s\t%s\tsize bucket 2^%d (%d bytes)\t%s\n", in.Path, in.Type, in.Bucket, in.Size, files)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "env hashed (%d)  %s\n", len(x.EnvKeys), strings.Join(x.EnvKeys, " "))
	if len(x.EnvExcluded) > 0 {
		fmt.Fprintf(w, "env left out (%d)\n", len(x.EnvExcluded))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, e := range x.EnvExcluded {
			fmt.Fprintf(tw, "  %s\t%s\n", e.Name, e.Reason)
		}
		tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// quoteAll quotes the arguments that need it to be read back.
func quoteAll(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			a = fmt.Sprintf("%q", a)
		}
		out[i] = a
	}
	return out
}
