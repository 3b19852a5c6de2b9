package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// localStore is the state directory used without a daemon. Several
// `prescient run` processes may share one state directory, so it holds the
// stores' locks only for the moment of each write: records are written
// through (open, put, close — a few ms), samples are kept in memory during the
// run and written to the TSDB in one go at the end.
type localStore struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex // guards pending
	pending []resource.Sample
}

func openLocal(dir string, log *slog.Logger) (*localStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	s := &localStore{dir: dir, log: log}
	if err := s.withTasks(recoverOrphans); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *localStore) tasksPath() string { return filepath.Join(s.dir, "tasks.db") }
func (s *localStore) tsdbPath() string  { return filepath.Join(s.dir, "tsdb") }

// withTasks opens the task store, waiting up to lockWait for another
// prescient process to let go of it.
func (s *localStore) withTasks(fn func(*store.Tasks) error) error {
	t, err := store.OpenTasks(s.tasksPath(), store.WithLockTimeout(lockWait))
	if err != nil {
		return err
	}
	ferr := fn(t)
	if cerr := t.Close(); ferr == nil {
		ferr = cerr
	}
	return ferr
}

const lockWait = 30 * time.Second

// Put implements supervisor.RecordWriter.
func (s *localStore) Put(r *task.Record) error {
	return s.withTasks(func(t *store.Tasks) error { return t.Put(r) })
}

// Append implements supervisor.SampleWriter; samples wait in memory for flush.
func (s *localStore) Append(_, _ string, ss ...resource.Sample) error {
	s.mu.Lock()
	s.pending = append(s.pending, ss...)
	s.mu.Unlock()
	return nil
}

// flush writes the run's samples to the TSDB.
func (s *localStore) flush(r *task.Record) error {
	s.mu.Lock()
	ss := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(ss) == 0 {
		return nil
	}
	smp, err := store.OpenSamples(store.SamplesConfig{Dir: s.tsdbPath(), Logger: s.log})
	if err != nil {
		return err
	}
	aerr := smp.Append(r.ID, r.Signature, ss...)
	if cerr := smp.Close(); aerr == nil {
		aerr = cerr
	}
	return aerr
}

func (s *localStore) close() {}

// readCurve returns a stored run's samples.
func (s *localStore) readCurve(id string) ([]resource.Sample, error) {
	if _, err := os.Stat(s.tsdbPath()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	smp, err := store.OpenSamples(store.SamplesConfig{Dir: s.tsdbPath(), Logger: s.log})
	if err != nil {
		return nil, err
	}
	defer smp.Close()
	return smp.Curve(id)
}

// recoverOrphans ends, as failed, the records of local runs whose prescient
// process died before the task ended: nothing accepted is left "running".
func recoverOrphans(t *store.Tasks) error {
	for _, st := range []task.State{task.Queued, task.Running} {
		rs, err := t.List(store.Filter{State: st})
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.RunnerPID == 0 || processAlive(r.RunnerPID) {
				continue
			}
			now := time.Now()
			r.State, r.FinishedAt = task.Failed, &now
			r.Error = fmt.Sprintf("the prescient process running it (pid %d) exited before the task ended", r.RunnerPID)
			if err := t.Put(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
