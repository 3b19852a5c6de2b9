package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

func TestLogUsagePlan(t *testing.T) {
	use := map[string]int64{"A1": 100, "A2": 100, "A3": 100, "A4": 100}
	tests := []struct {
		name   string
		limit  int64
		active []string
		want   []string
	}{
		{"under the cap", 400, nil, nil},
		{"no cap", -1, nil, nil},
		{"oldest first", 250, nil, []string{"A1", "A2"}},
		{"running skipped", 250, []string{"A1"}, []string{"A2", "A3"}},
		{"only running left", 0, []string{"A1", "A2", "A3", "A4"}, nil},
		{"everything ended", 0, nil, []string{"A1", "A2", "A3", "A4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &logUsage{use: use, total: 400}
			var got []string
			for _, v := range u.plan(tt.limit, func(id string) bool { return slices.Contains(tt.active, id) }) {
				got = append(got, v.id)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan = %v, want %v", got, tt.want)
			}
		})
	}
}

// testDaemon is a Daemon with a store and its committer, and nothing
// else (no executor, no loops): enough for retention.
func testDaemon(t *testing.T, cfg Config) *Daemon {
	t.Helper()
	cfg.StateDir = t.TempDir()
	st, err := store.Open(cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler), st: st,
		writes: make(chan *writeReq, 16), commitDone: make(chan struct{}), stop: make(chan struct{}),
		logWake: make(chan struct{}, 1), jobs: map[string]*job{}, subs: map[*subscriber]struct{}{}, perUser: map[uint32]int{}}
	pol, err := newFitPolicy(resource.Vector{1, 1000, 1, 1}, nil, d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.pol = pol
	zero := func() float64 { return 0 }
	d.m = newMetrics(prometheus.NewRegistry(), zero, zero)
	d.goTracked(d.committer)
	t.Cleanup(func() {
		d.stopLoops()
		d.loops.Wait()
		st.Close()
	})
	if err := secureLogRoot(d.logRoot()); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPruneLogs: over the total cap, whole log directories of ended tasks
// go, oldest first, and each task's meta says when, why and how much;
// running tasks' logs stay even when they are the oldest; a directory
// without a task record goes without a word; other names stay.
func TestPruneLogs(t *testing.T) {
	d := testDaemon(t, Config{})
	root := d.logRoot()
	type tk struct {
		id      string
		running bool
		drop    int64 // rotation drop recorded at its end
	}
	orphan := store.NewID()
	tasks := []tk{{id: store.NewID(), running: true}, {id: store.NewID()}, {id: store.NewID(), drop: 777}, {id: store.NewID()}, {id: store.NewID(), running: true}}
	now := time.Now()
	for _, x := range append([]tk{{id: orphan}}, tasks...) {
		dir := filepath.Join(root, x.id)
		must(t, os.Mkdir(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "stdout.log"), make([]byte, 8192), 0o600))
		must(t, os.WriteFile(filepath.Join(dir, "stderr.log"), nil, 0o600))
		if x.id == orphan {
			continue
		}
		rec := &task.Record{ID: x.id, State: task.Succeeded, SubmittedAt: now, LogDir: dir}
		m := meta{UID: 1000, GID: 1000, SetCred: true}
		if x.drop > 0 {
			m.Logs = &api.LogsDropped{StdoutBytes: x.drop}
		}
		if x.running {
			rec.State = task.Running
			d.jobs[x.id] = &job{id: x.id, rec: rec, meta: m, phase: phaseRunning}
		}
		must(t, d.commit([]*task.Record{rec}, []meta{m}))
	}
	must(t, os.Mkdir(filepath.Join(root, "lost+found"), 0o700))

	u := newLogUsage(root)
	must(t, u.scanAll())
	if len(u.use) != 6 {
		t.Fatalf("measured %d task directories, want 6: %v", len(u.use), u.use)
	}
	// The cap leaves room for all but the orphan and the two oldest ended.
	gone := []string{orphan, tasks[1].id, tasks[2].id}
	limit := u.total
	for _, id := range gone {
		limit -= u.use[id]
	}
	removed := map[string]int64{}
	for _, id := range gone {
		removed[id] = u.use[id]
	}
	d.cfg.LogTotalBytes = limit
	at := now.Add(time.Minute).Round(0)
	d.pruneLogs(u, at)

	if u.total != limit {
		t.Errorf("total after pruning %d, want %d", u.total, limit)
	}
	for _, id := range append([]string{orphan}, tasks[0].id, tasks[1].id, tasks[2].id, tasks[3].id, tasks[4].id) {
		_, err := os.Stat(filepath.Join(root, id))
		if want := slices.Contains(gone, id); want != os.IsNotExist(err) {
			t.Errorf("%s: removed = %v, want %v", id, os.IsNotExist(err), want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "lost+found")); err != nil {
		t.Errorf("lost+found: %v", err)
	}
	for i, x := range tasks {
		got, err := d.Get(identity{}, x.id)
		if err != nil {
			t.Fatal(err)
		}
		l := got.LogsDropped
		if !slices.Contains(gone, x.id) {
			if x.drop == 0 && l != nil || x.drop > 0 && (l == nil || l.RemovedAt != nil) {
				t.Errorf("task %d kept its logs but says %+v", i, l)
			}
			continue
		}
		if l == nil || l.RemovedAt == nil || !l.RemovedAt.Equal(at) || l.Reason != "retention" ||
			l.LogTotalBytes != limit || l.RemovedBytes != removed[x.id] || l.StdoutBytes != x.drop {
			t.Errorf("task %d: logs_dropped = %+v, want removed at %v by retention (%d bytes, cap %d), stdout drop %d kept",
				i, l, at, removed[x.id], limit, x.drop)
		}
		if got.Owner.UID != 1000 {
			t.Errorf("task %d: owner now %d", i, got.Owner.UID)
		}
	}

	// Under the cap: nothing more goes.
	d.pruneLogs(u, at)
	if _, err := os.Stat(filepath.Join(root, tasks[3].id)); err != nil {
		t.Errorf("pruned under the cap: %v", err)
	}
}
