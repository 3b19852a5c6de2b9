package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/prescient-sched/prescient/internal/predict"
)

func TestOracleSelection(t *testing.T) {
	// 100 rows at 10 that candidate a (10.5) covers, 2 rows at 11 that only
	// b (12) covers; a budget of 1 leaves one of those to a.
	var rows []*frontierRow
	for i := range 102 {
		y := 10.0
		if i >= 100 {
			y = 11
		}
		rows = append(rows, &frontierRow{y: y, cands: []predict.Candidate{{Name: "a", Alloc: 10.5}, {Name: "b", Alloc: 12}}})
	}
	e := oracleSelection(rows, 0.01)
	want := (100*0.5 + 1 + (10.5 - 11)) / (100*10 + 2*11)
	if math.Abs(e.Slack-want) > 1e-12 || e.ViolationRate != 1.0/102 {
		t.Fatalf("oracle slack %v, violations %v; want %v, %v", e.Slack, e.ViolationRate, want, 1.0/102)
	}
}

// The frontier is computed on exactly the rows the engine's figures are:
// its served entry is the report's prescient row; held-out and in-sample
// fits keep to the budget; nothing beats the in-sample fit of the same
// binning on its own rows.
func TestFrontierOnSample(t *testing.T) {
	var out bytes.Buffer
	o := Options{Format: "bitbrains", Train: []string{samples + "bitbrains_sample.csv"}, JSON: true, Seed: 1, Frontier: true,
		Models: []string{"moving_window_max"}}
	if err := Run(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Frontier) != 4 {
		t.Fatalf("frontier for %d dimensions; want 4", len(rep.Frontier))
	}
	for dim, es := range rep.Frontier {
		kinds := map[string]int{}
		for _, e := range es {
			kinds[e.Kind]++
			switch e.Kind {
			case "served":
				p := rep.Models["prescient"][dim]
				if math.Abs(e.Slack-p.Slack) > 1e-9 || math.Abs(e.ViolationRate-p.ViolationRate) > 1e-9 {
					t.Errorf("%s: served %+v; the report's prescient %+v", dim, e, p)
				}
			case "held-out":
				// Too few rows may leave even the smallest budget tried
				// above the target out of sample; it is reported as such.
				if e.ViolationRate > 0.0101 && math.Abs(e.FitShare-0.0025) > 1e-9 {
					t.Errorf("%s: %s %q at %.4f violations with a fit share of %v", dim, e.Kind, e.Policy, e.ViolationRate, e.FitShare)
				}
			case "oracle":
				if e.ViolationRate > 0.0101 {
					t.Errorf("%s: %s %q at %.4f violations, above the 1 %% budget", dim, e.Kind, e.Policy, e.ViolationRate)
				}
			}
			if math.IsNaN(e.Slack) || math.IsInf(e.Slack, 0) {
				t.Errorf("%s: %+v", dim, e)
			}
		}
		if kinds["served"] != 1 || kinds["candidate"] < 3 || kinds["held-out"] != 6 || kinds["in-sample"] != 5 || kinds["oracle"] != 1 {
			t.Errorf("%s: entries by kind %v", dim, kinds)
		}
	}
}
