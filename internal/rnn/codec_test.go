package rnn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"
)

func trainedModel(t testing.TB, cfg Config) *Model {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Train(context.Background(), sineData(1, 4, 6), 2, 2); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"gru", Config{Inputs: 1, Hidden: 5, Outputs: 1, Seed: -3, L2: 0.01}},
		{"lstm quantiles", Config{Inputs: 1, Hidden: 4, Outputs: 3, Seed: 8, Cell: CellLSTM,
			Quantiles: []float64{0.05, 0.5, 0.95}, Clip: math.Inf(1), LearningRate: 0.003}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := trainedModel(t, tt.cfg)
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Model
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if gc, wc := got.Config(), m.Config(); gc.Cell != wc.Cell || gc.Seed != wc.Seed ||
				gc.LearningRate != wc.LearningRate || gc.Clip != wc.Clip || gc.L2 != wc.L2 ||
				len(gc.Quantiles) != len(wc.Quantiles) {
				t.Errorf("config %+v, want %+v", gc, wc)
			}
			b2, _ := got.MarshalBinary()
			if !bytes.Equal(b, b2) {
				t.Error("re-marshalled bytes differ")
			}
			seq := sineData(7, 1, 5)[0].Seq
			w, g := m.Forward(seq), got.Forward(seq)
			for i := range w {
				for o := range w[i] {
					if w[i][o] != g[i][o] {
						t.Fatalf("output %d,%d: %v vs %v", i, o, g[i][o], w[i][o])
					}
				}
			}
			// The decoded model trains on.
			if _, err := got.Train(context.Background(), sineData(1, 2, 3), 1, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// reseal recomputes the trailing checksum after a deliberate edit.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

func TestUnmarshalRejects(t *testing.T) {
	m := trainedModel(t, Config{Inputs: 1, Hidden: 3, Outputs: 2, Quantiles: []float64{0.2, 0.8}})
	good, _ := m.MarshalBinary()
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"short header", good[:20], ErrFormat},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrFormat},
		{"future version", edit(func(b []byte) []byte { b[4] = 2; return reseal(b) }), ErrVersion},
		{"bad cell", edit(func(b []byte) []byte { b[6] = 7; return reseal(b) }), ErrFormat},
		{"reserved set", edit(func(b []byte) []byte { b[7] = 1; return reseal(b) }), ErrFormat},
		{"zero hidden", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0); return reseal(b) }), ErrFormat},
		{"huge hidden", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<30); return reseal(b) }), ErrFormat},
		{"hidden mismatch", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 4); return reseal(b) }), ErrFormat},
		{"huge quantile count", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 1<<31); return reseal(b) }), ErrFormat},
		{"bad quantile", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[56:], math.Float64bits(1.5))
			return reseal(b)
		}), ErrFormat},
		{"zero learning rate", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[32:], 0); return reseal(b) }), ErrFormat},
		{"truncated weights", reseal(bytes.Clone(good[:len(good)-12])), ErrFormat},
		{"trailing bytes", reseal(append(bytes.Clone(good), 0, 0, 0, 0)), ErrFormat},
		{"flipped weight bit", edit(func(b []byte) []byte { b[len(b)-9] ^= 1; return b }), ErrFormat},
		{"nan weight", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[len(b)-12:], math.Float64bits(math.NaN()))
			return reseal(b)
		}), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := trainedModel(t, Config{Inputs: 1, Hidden: 2, Outputs: 1})
			before, _ := target.MarshalBinary()
			err := target.UnmarshalBinary(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if after, _ := target.MarshalBinary(); !bytes.Equal(before, after) {
				t.Error("failed UnmarshalBinary changed the model")
			}
		})
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	for _, cfg := range []Config{
		{Inputs: 1, Hidden: 2, Outputs: 1},
		{Inputs: 2, Hidden: 2, Outputs: 2, Cell: CellLSTM, Quantiles: []float64{0.1, 0.9}},
	} {
		m, _ := New(cfg)
		b, _ := m.MarshalBinary()
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("PRNN"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Model
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrVersion", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted data does not round-trip (err %v)", err)
		}
		out := make([]float64, m.cfg.Outputs)
		m.Step(m.NewState(), make([]float64, m.cfg.Inputs), out)
	})
}
