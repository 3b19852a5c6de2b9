package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
