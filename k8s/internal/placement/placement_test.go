package placement

import (
	"errors"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Version: Version, Node: "n1", Start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), StepSeconds: 10, Source: "exact",
		Containers: []Container{{Name: "c", CPUMilli: []int64{100, 200}, MemoryMiB: []int64{800, 50}}}}
	s, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Node != "n1" || got.Step() != 10*time.Second || !got.End().Equal(r.Start.Add(20*time.Second)) {
		t.Fatalf("decoded %+v", got)
	}
	c, ok := got.Find("c")
	if !ok {
		t.Fatal("container c not found")
	}
	tests := []struct {
		name             string
		elapsed, look    time.Duration
		wantCPU, wantMem int64
		wantOK           bool
	}{
		{"first step", 0, 0, 100, 800, true},
		{"window over both", 5 * time.Second, 10 * time.Second, 200, 800, true},
		{"second step", 15 * time.Second, 0, 200, 50, true},
		{"ended", 25 * time.Second, 0, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cpu, mem, ok := c.Window(got.Step(), tc.elapsed, tc.look)
			if cpu != tc.wantCPU || mem != tc.wantMem || ok != tc.wantOK {
				t.Fatalf("Window = %d, %d, %v; want %d, %d, %v", cpu, mem, ok, tc.wantCPU, tc.wantMem, tc.wantOK)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{
		``, `{}`, `{"version":2,"node":"n","start":"2026-01-01T00:00:00Z","stepSeconds":1,"containers":[{"name":"c","cpuMilli":[1],"memoryMiB":[1]}]}`,
		`{"version":1,"node":"n","start":"2026-01-01T00:00:00Z","stepSeconds":0,"containers":[{"name":"c","cpuMilli":[1],"memoryMiB":[1]}]}`,
		`{"version":1,"node":"n","start":"2026-01-01T00:00:00Z","stepSeconds":1,"containers":[{"name":"c","cpuMilli":[1],"memoryMiB":[]}]}`,
		`{"version":1,"node":"n","start":"2026-01-01T00:00:00Z","stepSeconds":1,"containers":[{"name":"c","cpuMilli":[-1],"memoryMiB":[1]}]}`,
	} {
		if _, err := Decode(s); !errors.Is(err, ErrRecord) {
			t.Errorf("Decode(%q) = %v, want ErrRecord", s, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"version":1,"node":"n","start":"2026-01-01T00:00:00Z","stepSeconds":1,"containers":[{"name":"c","cpuMilli":[1],"memoryMiB":[1]}]}`)
	f.Add(`{"version":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Decode(s)
		if err != nil {
			return
		}
		// What decodes encodes again, and windows never panic.
		if _, err := r.Encode(); err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		for _, c := range r.Containers {
			c.Window(r.Step(), time.Hour, time.Minute)
		}
	})
}
