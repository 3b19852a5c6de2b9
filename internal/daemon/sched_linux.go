package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/prescient-sched/prescient/internal/executor"
)

// setSoftMemory sets the soft memory limit: memory.soft_limit_in_bytes on
// a v1 memory controller, memory.high on v2. Written here rather than in
// the executor, which sets hard limits only.
func setSoftMemory(cg executor.CgroupDirs, mb float64) error {
	v := strconv.FormatInt(int64(mb*(1<<20)), 10)
	if dir := cg.V1["memory"]; dir != "" {
		return os.WriteFile(filepath.Join(dir, "memory.soft_limit_in_bytes"), []byte(v), 0)
	}
	if cg.V2 != "" {
		return os.WriteFile(filepath.Join(cg.V2, "memory.high"), []byte(v), 0)
	}
	return os.ErrNotExist
}

// lowerPriority pins the calling goroutine to its thread and renices the
// thread to 10, so background training yields to tasks and the daemon.
// The thread ends with the goroutine.
func lowerPriority(log *slog.Logger) {
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10); err != nil {
		log.Debug("renice trainer", "err", err)
	}
}
