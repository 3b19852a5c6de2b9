// Command prescient runs tasks under resource limits sized from what the
// same kind of task used before. See "prescient --help".
package main

import (
	"os"

	"github.com/prescient-sched/prescient/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
