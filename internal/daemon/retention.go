package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/internal/task"
)

// Retention (Config.LogTotalBytes) never looks at a log file per write: it
// keeps the disk use of every task's log directory in memory, re-measures
// a directory when its task ends, the running tasks' directories every
// retentionTick and all of them every retentionRescan (a user owns its log
// files and may grow them after its task ended). Measuring a directory is
// a few fstatat calls.
const (
	retentionTick   = 30 * time.Second
	retentionRescan = 10 * time.Minute
	// retentionReason is LogsDropped.Reason for a removal by the total cap.
	retentionReason = "retention"
)

// logUse is the disk use of one task's log directory.
type logUse struct {
	id    string
	bytes int64
}

// logUsage is the disk use of the log directories under root, by task id.
// It is owned by one goroutine (Daemon.retentionLoop).
type logUsage struct {
	root  string
	use   map[string]int64
	total int64
}

func newLogUsage(root string) *logUsage { return &logUsage{root: root, use: map[string]int64{}} }

// scanAll measures every task directory under root afresh.
func (u *logUsage) scanAll() error {
	rfd, err := unix.Open(u.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("scan logs: %w", err)
	}
	root := os.NewFile(uintptr(rfd), u.root)
	defer root.Close()
	names, err := root.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("scan logs: %w", err)
	}
	u.use, u.total = make(map[string]int64, len(names)), 0
	for _, id := range names {
		if !isTaskID(id) {
			continue
		}
		n, err := measureLogDir(rfd, id)
		if err != nil {
			continue // gone, or not a directory: not a task's logs
		}
		u.use[id] = n
		u.total += n
	}
	return nil
}

// update measures the directory of task id again.
func (u *logUsage) update(id string) {
	if !isTaskID(id) {
		return
	}
	rfd, err := unix.Open(u.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(rfd)
	n, err := measureLogDir(rfd, id)
	u.total -= u.use[id]
	if err != nil {
		delete(u.use, id)
		return
	}
	u.use[id] = n
	u.total += n
}

func (u *logUsage) forget(id string) {
	u.total -= u.use[id]
	delete(u.use, id)
}

// plan picks the log directories to remove so that the total fits limit:
// those of tasks that are not active, oldest first (task ids are ULIDs,
// which sort by submission time). Active tasks' directories are never
// picked, so the result may leave the total above limit.
func (u *logUsage) plan(limit int64, active func(id string) bool) []logUse {
	if limit < 0 || u.total <= limit {
		return nil
	}
	ids := make([]string, 0, len(u.use))
	for id := range u.use {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []logUse
	total := u.total
	for _, id := range ids {
		if total <= limit {
			break
		}
		if active(id) {
			continue
		}
		out = append(out, logUse{id: id, bytes: u.use[id]})
		total -= u.use[id]
	}
	return out
}

// measureLogDir is the disk use (st_blocks × 512: what a sparse file
// really occupies) of the regular files directly in root/id. It follows no
// symlink and does not descend into directories.
func measureLogDir(rootFD int, id string) (int64, error) {
	fd, err := unix.Openat(rootFD, id, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	dir := os.NewFile(uintptr(fd), id)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			n += st.Blocks * 512
		}
	}
	return n, nil
}

// isTaskID reports whether name looks like a task id (a ULID).
func isTaskID(name string) bool {
	if len(name) != 26 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			return false
		}
	}
	return true
}

// noteEnded tells the retention loop that task id ended.
func (d *Daemon) noteEnded(id string) {
	if d.cfg.LogTotalBytes < 0 {
		return
	}
	d.lmu.Lock()
	d.logEnded = append(d.logEnded, id)
	d.lmu.Unlock()
	select {
	case d.logWake <- struct{}{}:
	default:
	}
}

// retentionLoop keeps all tasks' logs under Config.LogTotalBytes (see
// pruneLogs): at start, after tasks end and every retentionTick.
func (d *Daemon) retentionLoop() {
	u := newLogUsage(d.logRoot())
	if err := u.scanAll(); err != nil {
		d.log.Warn("log retention", "err", err)
	}
	d.pruneLogs(u, time.Now())
	tick := time.NewTicker(retentionTick)
	defer tick.Stop()
	lastFull := time.Now()
	for {
		select {
		case <-d.stop:
			return
		case <-d.logWake:
			d.lmu.Lock()
			ended := d.logEnded
			d.logEnded = nil
			d.lmu.Unlock()
			for _, id := range ended {
				u.update(id)
			}
		case now := <-tick.C:
			if now.Sub(lastFull) >= retentionRescan {
				if err := u.scanAll(); err != nil {
					d.log.Warn("log retention", "err", err)
				}
				lastFull = now
				break
			}
			d.mu.Lock()
			var running []string
			for id, j := range d.jobs {
				if j.phase == phaseRunning {
					running = append(running, id)
				}
			}
			d.mu.Unlock()
			for _, id := range running {
				u.update(id)
			}
		}
		d.pruneLogs(u, time.Now())
	}
}

// pruneLogs removes whole log directories of ended tasks, oldest first,
// until the logs of all tasks fit Config.LogTotalBytes. Each removal is
// first recorded durably in the task's meta (LogsDropped: when, why, how
// much), so that logs never vanish without a word; a task whose record is
// gone has its directory removed without one.
func (d *Daemon) pruneLogs(u *logUsage, now time.Time) {
	victims := u.plan(d.cfg.LogTotalBytes, d.active)
	if len(victims) == 0 {
		return
	}
	if err := d.recordLogsRemoved(victims, now); err != nil {
		if !errors.Is(err, errStopping) {
			d.log.Warn("record log removal", "err", err)
		}
		return
	}
	var freed int64
	for _, v := range victims {
		if err := os.RemoveAll(filepath.Join(u.root, v.id)); err != nil {
			d.log.Warn("remove logs", "task", v.id, "err", err)
			u.update(v.id)
			continue
		}
		u.forget(v.id)
		freed += v.bytes
	}
	d.log.Info("removed logs of ended tasks", "tasks", len(victims), "bytes", freed,
		"total", u.total, "log_total_bytes", d.cfg.LogTotalBytes)
}

// recordLogsRemoved marks, in one commit, the meta of the victims' tasks:
// their logs are removed at now by retention.
func (d *Daemon) recordLogsRemoved(victims []logUse, now time.Time) error {
	recs := make([]*task.Record, 0, len(victims))
	metas := make([]meta, 0, len(victims))
	for _, v := range victims {
		rec, err := d.st.Tasks.Get(v.id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		a, err := d.st.Tasks.Aux(auxTable, v.id)
		if err != nil {
			return err
		}
		m, _ := decodeMeta(a[0]) // none: root's, as Get reads it
		var l api.LogsDropped
		if m.Logs != nil {
			l = *m.Logs
		}
		at := now
		l.RemovedAt, l.RemovedBytes, l.Reason, l.LogTotalBytes = &at, v.bytes, retentionReason, d.cfg.LogTotalBytes
		m.Logs = &l
		recs = append(recs, rec)
		metas = append(metas, m)
	}
	if len(recs) == 0 {
		return nil
	}
	return d.commit(recs, metas)
}
