package profile

import (
	"errors"
	"math"
	"testing"
)

func TestNewNetLimit(t *testing.T) {
	for _, c := range []struct {
		name    string
		mbps    float64
		wantErr bool
		cost    uint64 // ns per byte << 16
		tau     uint64
	}{
		{"8 Mbit/s: 1000 ns per byte", 8, false, 1000 << 16, uint64(netBurstBytes * 1000)},
		{"1 Gbit/s: 8 ns per byte, burst by time", 1000, false, 8 << 16, uint64(netBurstTime)},
		{"minimum", MinNetLimitMbps, false, 8e6 << 16, uint64(netBurstBytes * 8e6)},
		{"maximum", MaxNetLimitMbps, false, 524, uint64(netBurstTime)},
		{"zero", 0, true, 0, 0},
		{"negative", -1, true, 0, 0},
		{"too high", 2e6, true, 0, 0},
		{"NaN", math.NaN(), true, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := newNetLimit(c.mbps)
			if (err != nil) != c.wantErr || (err != nil && !errors.Is(err, ErrBadLimit)) {
				t.Fatalf("err = %v, want ErrBadLimit %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if got.CostQ16 != c.cost || got.TauNs != c.tau || got.TatIn != 0 || got.TatOut != 0 {
				t.Errorf("got %+v, want cost %d tau %d", got, c.cost, c.tau)
			}
		})
	}
}
