package store

import (
	"fmt"
	"io"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// holdLockEnv makes the test binary a helper process that holds the lock
// of the tasks file it names until its stdin closes (see
// TestTasksLockedByOtherProcess).
const holdLockEnv = "PRESCIENT_STORE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		os.Exit(holdLock(path))
	}
	// Every test closes what it opens, so no TSDB goroutine (compaction
	// loop, head chunk write queue, WAL) may outlive the tests.
	goleak.VerifyTestMain(m)
}

func holdLock(path string) int {
	t, err := OpenTasks(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := t.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
