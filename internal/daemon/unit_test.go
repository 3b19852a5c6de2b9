package daemon

import (
	"testing"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/task"
)

func TestFitAdmitter(t *testing.T) {
	tests := []struct {
		name string
		req  task.Limits
		want bool
	}{
		{"fits", task.Limits{CPUCores: 1, MemoryMB: 100}, true},
		{"fills the rest", task.Limits{CPUCores: 1, MemoryMB: 900}, true},
		{"cpu over", task.Limits{CPUCores: 0.1, MemoryMB: 0}, false},
	}
	f := NewFitAdmitter(api.Resources{CPUCores: 2, MemoryMB: 1000})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, reason := f.Admit(string(rune('a'+i)), tt.req); got != tt.want {
				t.Errorf("Admit = %v (%s), want %v", got, reason, tt.want)
			}
		})
	}
	f.Release("a")
	f.Release("a") // idempotent
	f.Release("never")
	if _, used := f.Usage(); used.CPUCores != 1 || used.MemoryMB != 900 {
		t.Errorf("used after release = %+v, want 1 core, 900 MB", used)
	}
	if ok, _ := f.Admit("d", task.Limits{CPUCores: 1, MemoryMB: 100}); !ok {
		t.Error("released capacity not reusable")
	}
}
