package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestEvalFrontierFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"eval", "--state-dir", t.TempDir(), "--frontier"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--frontier applies to traces") {
		t.Fatalf("--frontier with --state-dir: exit %d, %q; want %d and why", code, errb.String(), exitUsage)
	}
	out.Reset()
	errb.Reset()
	args := []string{"eval", "--format", "google2011", "--train", "../../testdata/traces/google2011_sample.csv", "--model", "moving_window_max", "--frontier"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"frontier, cpu", "frontier, memory", "held-out", "in-sample", "oracle selection"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
