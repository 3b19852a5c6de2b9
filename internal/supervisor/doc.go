// Package supervisor runs one accepted task from start to its recorded end:
// it starts the process in its cgroup through the executor, samples it on a
// fixed interval into the profile store, keeps running peak and mean per
// dimension, and writes the task record at every state change, so an
// accepted task always ends in a recorded state. The CLI's local mode and
// the daemon share it.
package supervisor
