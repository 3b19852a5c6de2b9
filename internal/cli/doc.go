// Package cli is the prescient command line: flag parsing, output formats
// (human and --json) and exit codes. It holds no scheduling logic; it wires
// the internal packages together.
package cli
