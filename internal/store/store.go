package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Store bundles the two stores of one state directory. Open sets both
// fields; they are not to be replaced.
type Store struct {
	Tasks   *Tasks
	Samples *Samples
}

// The files of a state directory.
const (
	TasksFile  = "tasks.db"
	SamplesDir = "tsdb"
)

// Open opens (creating if needed) the state directory: tasks in
// <stateDir>/tasks.db and samples in <stateDir>/tsdb/. If another process
// holds the directory, Open fails after the lock timeout with an error
// wrapping ErrLocked that names the holder's pid where it can be found.
func Open(stateDir string, opts ...Option) (*Store, error) {
	if stateDir == "" {
		return nil, fmt.Errorf("open store: empty state dir: %w", ErrInvalid)
	}
	o := buildOptions(opts)
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// tasks.db first: its lock waits (up to the lock timeout) for a
	// process that is just exiting, and guards the TSDB as well.
	tasks, err := OpenTasks(filepath.Join(stateDir, TasksFile), opts...)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	samples, err := OpenSamples(SamplesConfig{
		Dir:              filepath.Join(stateDir, SamplesDir),
		Retention:        o.retention,
		OutOfOrderWindow: o.outOfOrderWindow,
		Logger:           o.logger,
		Registerer:       o.registerer,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store: %w", err), tasks.Close())
	}
	return &Store{Tasks: tasks, Samples: samples}, nil
}

// Close closes both stores; it is idempotent.
func (s *Store) Close() error {
	return errors.Join(s.Samples.Close(), s.Tasks.Close())
}
