package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// DefaultConfigFile is where the packaged service reads serve's settings
// (deploy/systemd/prescient.service passes it with --config).
const DefaultConfigFile = "/etc/prescient/config.yaml"

// configSkip are flags of serve that are not settings.
var configSkip = []string{"config", "print-config", "help", "local"}

// configFlags are the flags a config file may set: every flag of cmd
// (its own and those it inherits: state-dir, socket, log-level) but
// configSkip, sorted by name.
func configFlags(cmd *cobra.Command) []*pflag.Flag {
	var out []*pflag.Flag
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if !seen[f.Name] && !f.Hidden && !slices.Contains(configSkip, f.Name) {
			seen[f.Name] = true
			out = append(out, f)
		}
	}
	cmd.LocalFlags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// errConfigFile marks a config file that cannot be used.
var errConfigFile = errors.New("config file")

// applyConfig sets cmd's flags from a YAML file of "flag-name: value"
// pairs. A flag given on the command line keeps its value: the command
// line overrides the file, which overrides the environment and the
// defaults. An unknown key, or a value the flag refuses, is an error
// naming the key.
func applyConfig(cmd *cobra.Command, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfigFile, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%w %s: %w", errConfigFile, path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("%w %s: want a mapping of serve's flag names to values", errConfigFile, path)
	}
	known := map[string]*pflag.Flag{}
	for _, f := range configFlags(cmd) {
		known[f.Name] = f
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		f, ok := known[k.Value]
		if !ok {
			return fmt.Errorf("%w %s:%d: unknown setting %q (the settings are serve's flags; see prescient serve --print-config)", errConfigFile, path, k.Line, k.Value)
		}
		if seen[k.Value] {
			return fmt.Errorf("%w %s:%d: %q set twice", errConfigFile, path, k.Line, k.Value)
		}
		seen[k.Value] = true
		if sv, ok := f.Value.(pflag.SliceValue); ok && v.Kind == yaml.SequenceNode {
			// A repeatable flag takes a list, every item a scalar.
			var items []string
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("%w %s:%d: %s: want a list of single values", errConfigFile, path, it.Line, k.Value)
				}
				items = append(items, it.Value)
			}
			if f.Changed {
				continue // the command line wins
			}
			if err := sv.Replace(items); err != nil {
				return fmt.Errorf("%w %s:%d: %s: %w", errConfigFile, path, v.Line, k.Value, err)
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%w %s:%d: %s: want a single value", errConfigFile, path, v.Line, k.Value)
		}
		if f.Changed {
			continue // the command line wins
		}
		val := v.Value
		if v.Tag == "!!null" {
			val = ""
		}
		if err := f.Value.Set(val); err != nil {
			return fmt.Errorf("%w %s:%d: %s: %w", errConfigFile, path, v.Line, k.Value, err)
		}
	}
	return nil
}

// printConfig writes the settings in force as a config file: every flag
// of configFlags with its value and, as a comment, its help.
func printConfig(w io.Writer, cmd *cobra.Command) error {
	var m yaml.Node
	m.Kind = yaml.MappingNode
	for _, f := range configFlags(cmd) {
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name, HeadComment: strings.TrimSpace(f.Usage)}
		v := &yaml.Node{Kind: yaml.ScalarNode, Value: f.Value.String()}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, it := range sv.GetSlice() {
				v.Content = append(v.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: it})
			}
			m.Content = append(m.Content, k, v)
			continue
		}
		switch f.Value.Type() {
		case "bool":
			v.Tag = "!!bool"
		case "int", "int64", "uint", "uint32", "uint64":
			v.Tag = "!!int"
		case "float64", "float32":
			v.Tag = "!!float"
		default:
			v.Tag = "!!str" // durations, sizes and names stay strings
		}
		m.Content = append(m.Content, k, v)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# prescient serve settings: each key is a flag of `prescient serve`; the\n# command line overrides this file (--config %s).\n", DefaultConfigFile)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&m); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
