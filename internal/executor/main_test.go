package executor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperEnv makes the test binary act as a task instead of running tests:
//
//	alloc:<MB>             allocate and touch MB MiB, print "done", exit 0
//	alloc-after:<MB>:<f>   wait until file f exists, then as alloc
//	spin                   burn CPU forever
//	new:<root>             call New, print the error, exit 0 if ErrDelegation
const helperEnv = "EXECUTOR_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	goleak.VerifyTestMain(m)
}

func runHelper(h string) int {
	f := strings.Split(h, ":")
	switch f[0] {
	case "new": // New without write access must name what is not writable
		_, err := New(Config{Root: f[1]})
		fmt.Println(err)
		if errors.Is(err, ErrDelegation) {
			return 0
		}
		return 1
	case "spin":
		x := 0
		for {
			x++
		}
	case "alloc", "alloc-after":
		mb, err := strconv.Atoi(f[1])
		if err != nil {
			return 2
		}
		if f[0] == "alloc-after" {
			for {
				if _, err := os.Stat(f[2]); err == nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		var keep [][]byte
		for range mb {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("done", len(keep))
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper", h)
	return 2
}
