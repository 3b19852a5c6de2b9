package core

import "github.com/prescient-sched/prescient/internal/task"

// The adapter for internal/task: the signature rules a pod signature shares
// with a task signature.

// DefaultEnvDeny returns the variable-name patterns (path.Match syntax; deny
// wins over allow) left out of a signature by default: the same list as a
// task's (terminal, login session, service manager, PRESCIENT_*). A new
// slice on every call.
func DefaultEnvDeny() []string { return task.DefaultEnvDeny() }
