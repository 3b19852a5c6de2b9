package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const samples = "../../../testdata/traces/"

// TestGolden runs the whole evaluation on the small trace samples with a
// fixed seed and compares the JSON report with testdata/<format>.json.
func TestGolden(t *testing.T) {
	tests := []struct {
		format, file string
	}{
		{"google2011", "google2011_sample.csv"},
		{"bitbrains", "bitbrains_sample.csv"},
		{"google2019", "google2019_sample.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var out bytes.Buffer
			o := Options{Format: tt.format, Train: []string{samples + tt.file}, JSON: true, Seed: 1}
			if err := Run(context.Background(), o, &out); err != nil {
				t.Fatal(err)
			}
			var got Report
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, tt.format, &got)
			golden := filepath.Join("testdata", tt.format+".json")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			raw, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			var want Report
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			for model, dims := range want.Models {
				for dim, w := range dims {
					g, ok := got.Models[model][dim]
					if !ok {
						t.Errorf("%s/%s missing", model, dim)
						continue
					}
					close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(b)) }
					if !close(g.Slack, w.Slack) || !close(g.ViolationRate, w.ViolationRate) {
						t.Errorf("%s/%s: slack %v viol %v, golden %v %v", model, dim, g.Slack, g.ViolationRate, w.Slack, w.ViolationRate)
					}
					for i := range w.MAERel {
						if !close(g.MAERel[i], w.MAERel[i]) {
							t.Errorf("%s/%s: mae[%d] %v, golden %v", model, dim, i, g.MAERel[i], w.MAERel[i])
						}
					}
				}
			}
			if len(got.Models) != len(want.Models) {
				t.Errorf("%d models, golden has %d", len(got.Models), len(want.Models))
			}
		})
	}
}

// checkInvariants holds whatever the numbers: the oracle is exact, every
// model reports every dim, rates are rates.
func checkInvariants(t *testing.T, format string, r *Report) {
	t.Helper()
	dims := []string{"cpu", "memory"}
	if format == "bitbrains" {
		dims = append(dims, "io", "net") // disk and network in the trace
	}
	for _, name := range []string{"last_value", "moving_window_max", "decayed_percentile", "gru", "prescient", "oracle"} {
		ms, ok := r.Models[name]
		if !ok {
			t.Fatalf("model %s missing", name)
		}
		for _, d := range dims {
			m, ok := ms[d]
			if !ok {
				t.Fatalf("%s/%s missing", name, d)
			}
			if m.ViolationRate < 0 || m.ViolationRate > 1 || len(m.MAERel) != Horizons {
				t.Fatalf("%s/%s: %+v", name, d, m)
			}
			if name == "oracle" && (m.Slack != 0 || m.ViolationRate != 0 || m.MAERel[0] != 0) {
				t.Fatalf("oracle/%s not exact: %+v", d, m)
			}
		}
	}
}

func TestRunRefusesMalformed(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	in := "job_id,day,step_5min,cpu_util_pct,mem_util_pct\n1,1,0,1,2\n1,1,1,x,2\n"
	if err := os.WriteFile(bad, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Options{Format: "google2011", Train: []string{bad}}, &bytes.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), bad+":3:4: ") {
		t.Fatalf("err = %v, want %s:3:4: …", err, bad)
	}
}

func TestRunOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no format", Options{Train: []string{"x"}}},
		{"bad format", Options{Format: "azure", Train: []string{"x"}}},
		{"no train", Options{Format: "google2011"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Run(context.Background(), tt.o, &bytes.Buffer{}); !errors.Is(err, ErrOptions) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestTableAndPlot(t *testing.T) {
	var out bytes.Buffer
	plot := filepath.Join(t.TempDir(), "p.svg")
	o := Options{Format: "google2011", Train: []string{samples + "google2011_sample.csv"}, PlotPath: plot, Seed: 1,
		Models: []string{"moving_window_max", "oracle"}}
	if err := Run(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "moving_window_max") || strings.Contains(out.String(), "gru") {
		t.Fatalf("table:\n%s", out.String())
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("moving_window_max cpu")) {
		t.Fatalf("plot: %v\n%.200s", err, svg)
	}
}
