// Package golden runs scripted test scenarios against golden transcripts:
// each testdata/NAME.txt is run by the caller's interpreter and its output
// compared with testdata/NAME.golden. `go test -update` rewrites the
// golden files. It is for tests only.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the scripts")

// Run runs every testdata/*.txt through run as a subtest named after the
// file and compares the transcript with the .golden beside it.
func Run(t *testing.T, run func(t *testing.T, src string) []byte) {
	t.Helper()
	scripts, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range scripts {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, string(src))
			golden := strings.TrimSuffix(path, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("transcript differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}
