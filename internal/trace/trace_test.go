package trace

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prescient-sched/prescient/internal/resource"
)

func TestReadSamples(t *testing.T) {
	tests := []struct {
		name     string
		format   Format
		file     string
		wantRuns int
		wantLen  int // length of the first run
		dims     int
	}{
		{"google2011", Google2011, "google2011_sample.csv", 24, 288, 2},
		{"google2019", Google2019, "google2019_sample.csv", 4, 200, 2},
		{"bitbrains", Bitbrains, "bitbrains_sample.csv", 6, 576, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := ReadFile(context.Background(), tt.format, "../../testdata/traces/"+tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != tt.wantRuns {
				t.Fatalf("runs = %d, want %d", len(runs), tt.wantRuns)
			}
			if runs[0].Len() != tt.wantLen {
				t.Errorf("first run len = %d, want %d", runs[0].Len(), tt.wantLen)
			}
			for i, r := range runs {
				n := 0
				for d := range resource.NumDims {
					if r.Values[d] != nil {
						n++
						if len(r.Values[d]) != r.Len() {
							t.Fatalf("run %d dim %v: %d values, want %d", i, resource.Dim(d), len(r.Values[d]), r.Len())
						}
					}
				}
				if n != tt.dims {
					t.Fatalf("run %d has %d dims, want %d", i, n, tt.dims)
				}
				if i > 0 && runs[i-1].Start > r.Start {
					t.Fatalf("runs not sorted by start at %d", i)
				}
			}
		})
	}
}

func TestReadGoogle2011Values(t *testing.T) {
	in := "job_id,day,step_5min,cpu_util_pct,mem_util_pct\n7,2,0,10.5,3\n7,2,1,11,4\n8,1,5,1,2\n"
	runs, err := Read(context.Background(), Google2011, "x.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("got %d runs", len(runs))
	}
	r := runs[1] // job 7 day 2 starts later than job 8 day 1
	if r.Identity != "7" || r.Period != "day2" || r.Start != 86400 {
		t.Fatalf("run = %+v", r)
	}
	if got := r.Values[resource.CPU]; len(got) != 2 || got[0] != 10.5 || got[1] != 11 {
		t.Fatalf("cpu = %v", got)
	}
	if runs[0].Slot(0) != 5 || r.Slot(1) != 1 {
		t.Fatalf("slots %d %d", runs[0].Slot(0), r.Slot(1))
	}
}

func TestReadBitbrainsUnits(t *testing.T) {
	in := "vm_id,month,timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,cpu_usage_pct,mem_capacity_kb,mem_usage_kb,disk_read_kBps,disk_write_kBps,net_rx_kBps,net_tx_kBps\n" +
		"1,2013-07,1000,2,5000,100,2,8000,2048,1,2,3,4\n"
	runs, err := Read(context.Background(), Bitbrains, "b.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	r := runs[0]
	want := [resource.NumDims]float64{100, 2, 3, 7}
	for d := range resource.NumDims {
		if r.Values[d][0] != want[d] {
			t.Errorf("%v = %v, want %v", resource.Dim(d), r.Values[d][0], want[d])
		}
	}
}

func TestReadMalformed(t *testing.T) {
	const g11 = "job_id,day,step_5min,cpu_util_pct,mem_util_pct\n"
	tests := []struct {
		name   string
		format Format
		in     string
		want   string // prefix of the error
	}{
		{"bad number", Google2011, g11 + "1,1,0,1,2\n1,1,1,abc,2\n", "f.csv:3:4: cpu_util_pct: not a number"},
		{"negative", Google2011, g11 + "1,1,0,1,-2\n", "f.csv:2:5: mem_util_pct: -2 out of range"},
		{"step range", Google2011, g11 + "1,1,288,1,2\n", "f.csv:2:3: step_5min: 288 out of range"},
		{"time goes back", Google2011, g11 + "1,1,5,1,2\n1,1,4,1,2\n", "f.csv:3:3: time 1200 is not after"},
		{"field count", Google2011, g11 + "1,1,0,1\n", "f.csv:2:1: wrong number of fields"},
		{"bare quote", Google2011, g11 + "1,1,0,\"1,2\n", "f.csv:2:"},
		{"missing column", Google2019, g11, "f.csv:1:1: header lacks column \"time\""},
		{"empty", Bitbrains, "", "f.csv:1:1: empty file"},
		{"empty id", Google2011, g11 + ",1,0,1,2\n", "f.csv:2:1: job_id: bad identifier"},
		{"nan", Google2011, g11 + "1,1,0,NaN,2\n", "f.csv:2:4: cpu_util_pct: NaN out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(context.Background(), tt.format, "f.csv", strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	runs, err := ReadFile(context.Background(), Google2011, "../../testdata/traces/google2011_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := Split(runs, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range train {
		if r.Period == "day6" || r.Period == "day7" {
			t.Fatalf("train has %s", r.Period)
		}
	}
	for _, r := range test {
		if r.Period != "day6" && r.Period != "day7" {
			t.Fatalf("test has %s", r.Period)
		}
	}
	if len(train)+len(test) != len(runs) {
		t.Fatal("runs lost")
	}
	if _, _, err := Split(runs, 1.5); err == nil {
		t.Fatal("accepted frac 1.5")
	}
}

func TestSplitAtStraddle(t *testing.T) {
	r := &Run{Identity: "a", Start: 0}
	r.Values[resource.CPU] = []float64{1, 2, 3, 4, 5}
	r.Values[resource.Memory] = []float64{1, 2, 3, 4, 5}
	train, test := SplitAt([]*Run{r}, 2*StepSeconds)
	if len(train) != 1 || train[0].Len() != 2 {
		t.Fatalf("train = %+v", train)
	}
	if len(test) != 1 || test[0].Len() != 5 || test[0].ScoreFrom != 2 {
		t.Fatalf("test = %+v", test[0])
	}
	// The head must not alias appends into the original.
	train[0].Values[resource.CPU] = append(train[0].Values[resource.CPU], 99)
	if r.Values[resource.CPU][2] != 3 {
		t.Fatal("head aliases the run")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(0, "job_id,day,step_5min,cpu_util_pct,mem_util_pct\n1,1,0,1,2\n1,1,1,3,4\n")
	f.Add(1, "time,collection_id,instance_index,avg_cpu_usage,avg_memory_usage\n300000000,5,1,0.1,0.2\n")
	f.Add(2, "vm_id,month,timestamp_s,cpu_usage_mhz,mem_usage_kb,disk_read_kBps,disk_write_kBps,net_rx_kBps,net_tx_kBps\n1,2013-07,5,1,2,3,4,5,6\n")
	f.Fuzz(func(t *testing.T, which int, in string) {
		format := Formats[uint(which)%uint(len(Formats))]
		runs, err := Read(context.Background(), format, "fz.csv", strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fz.csv:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, r := range runs {
			if r.Len() == 0 {
				t.Fatal("empty run")
			}
			for _, d := range format.Dims() {
				if len(r.Values[d]) != r.Len() {
					t.Fatal("ragged run")
				}
				for _, v := range r.Values[d] {
					if v < 0 || v != v {
						t.Fatalf("bad value %v", v)
					}
				}
			}
		}
	})
}
