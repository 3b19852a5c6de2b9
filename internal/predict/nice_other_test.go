//go:build !linux

package predict

import "time"

func lowerThread() {}

func cpuTime() time.Duration { return 0 }
