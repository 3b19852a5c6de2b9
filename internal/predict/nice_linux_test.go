package predict

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// lowerThread pins the calling goroutine to its thread and renices the
// thread to 10, as the daemon's trainer does.
func lowerThread() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10)
}
