package workload

import (
	"errors"
	"testing"
	"time"
)

func TestParseScript(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Script
		wantErr bool
	}{
		{name: "one phase", in: "2s:cpu=0.5,mem=300", want: Script{{Dur: 2 * time.Second, CPU: 0.5, MemoryMB: 300}}},
		{name: "two phases", in: "1s:iops=200; 500ms:net=40", want: Script{{Dur: time.Second, IOPS: 200}, {Dur: 500 * time.Millisecond, NetMbps: 40}}},
		{name: "idle phase", in: "3s", want: Script{{Dur: 3 * time.Second}}},
		{name: "empty", in: "", wantErr: true},
		{name: "bad duration", in: "2:cpu=1", wantErr: true},
		{name: "zero duration", in: "0s:cpu=1", wantErr: true},
		{name: "unknown key", in: "1s:gpu=1", wantErr: true},
		{name: "negative", in: "1s:cpu=-1", wantErr: true},
		{name: "nan", in: "1s:mem=NaN", wantErr: true},
		{name: "too big", in: "1s:mem=1e12", wantErr: true},
		{name: "not kv", in: "1s:cpu", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScript(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrScript) {
					t.Fatalf("ParseScript(%q) error = %v, want ErrScript", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScript(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("phase %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			// String must round-trip.
			again, err := ParseScript(got.String())
			if err != nil || len(again) != len(got) || again[0] != got[0] {
				t.Errorf("round trip of %q: %v %v", got.String(), again, err)
			}
		})
	}
}

func FuzzParseScript(f *testing.F) {
	for _, s := range []string{"2s:cpu=0.5,mem=300", "1s;2s:net=4", "1h:iops=1e6", ";;", "1s:cpu=1,cpu=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScript(s)
		if err != nil {
			return
		}
		for _, p := range sc {
			if p.Dur <= 0 || p.CPU < 0 || p.MemoryMB < 0 || p.IOPS < 0 || p.NetMbps < 0 {
				t.Fatalf("accepted invalid phase %+v from %q", p, s)
			}
		}
		if _, err := ParseScript(sc.String()); err != nil {
			t.Fatalf("String() of accepted script does not parse: %v", err)
		}
	})
}
