package cli

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain lets the test binary stand in for the prescient binary: with
// PRESCIENT_TEST_MAIN=1 it runs the command line instead of the tests, so
// end-to-end tests exercise real processes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PRESCIENT_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}
