//go:build !linux

package profile

import "testing"

func benchSampleCgroup(*testing.B) {}
