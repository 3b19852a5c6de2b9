package daemon

import (
	"os"
	"path/filepath"
	"strings"
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

func TestRotator(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "stdout.log")
	r, err := newRotator(path, 10, 2, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := r.Write([]byte("0123456789abcde")); err != nil { // 15 bytes
			t.Fatal(err)
		}
	}
	r.Close()
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	if got := read(path); got != "56789abcde" {
		t.Errorf("current = %q", got)
	}
	if got := read(path + ".1"); len(got) != 10 {
		t.Errorf(".1 = %q, want 10 bytes", got)
	}
	if got := read(path + ".2"); len(got) != 10 {
		t.Errorf(".2 = %q, want 10 bytes", got)
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("kept more than 2 old files")
	}
	total := len(read(path)) + 20
	if total > 60 || !strings.HasSuffix(read(path), "abcde") {
		t.Errorf("lost or reordered output: total %d", total)
	}
}
