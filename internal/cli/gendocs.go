package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGendocsCmd writes what the package installs beside the binary, made
// from the command line itself: a man page per command and the shell
// completions (make package runs it).
func newGendocsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "gendocs DIR",
		Short:  "Write man pages (DIR/man) and shell completions (DIR/completions) of the command line",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			man, comp := filepath.Join(args[0], "man"), filepath.Join(args[0], "completions")
			for _, d := range []string{man, comp} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			hdr := &doc.GenManHeader{Title: "PRESCIENT", Section: "1", Source: "Prescient", Manual: "Prescient Manual"}
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, hdr, man); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			for name, gen := range map[string]func(string) error{
				"prescient.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
				"_prescient":     root.GenZshCompletionFile,
				"prescient.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
			} {
				if err := gen(filepath.Join(comp, name)); err != nil {
					return fmt.Errorf("completion %s: %w", name, err)
				}
			}
			fmt.Fprintf(g.stderr, "prescient: man pages in %s, completions in %s\n", man, comp)
			return nil
		},
	}
}
