package predict

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/resource"
)

func TestModelsRoundTrip(t *testing.T) {
	e, _ := NewEngine(Config{}, nil)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range 3 {
		e.AddRun(Run{Features: Features{Signature: "s"}, Start: time.Unix(int64(i)*600, 0), Samples: samples(80, rng, 10)})
	}
	if _, err := e.Train(context.Background(), TrainConfig{Seq: SeqConfig{Hidden: 4, Epochs: 1, Seed: 7}}); err != nil {
		t.Fatal(err)
	}
	b, err := e.MarshalModels()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := NewEngine(Config{}, nil)
	if err := f.LoadModels(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := f.MarshalModels()
	if string(b) != string(b2) {
		t.Fatal("round trip changed the models")
	}
	for d := range resource.NumDims {
		if f.m.seq[d] == nil || len(f.m.margin[d]) == 0 {
			t.Fatalf("%s model or margins not loaded", d)
		}
	}
	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"magic", append([]byte("XXXX"), b[4:]...)},
		{"version", append([]byte("PRSM\x09\x00"), b[6:]...)},
		{"truncated", b[:len(b)-3]},
		{"trailing", append(b[:len(b):len(b)], 0)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.LoadModels(tt.b); !errors.Is(err, ErrModel) {
				t.Fatalf("err = %v", err)
			}
			if f.m.seq[0] == nil {
				t.Fatal("failed load dropped the models")
			}
		})
	}
}

func FuzzLoadModels(f *testing.F) {
	e, _ := NewEngine(Config{}, nil)
	b, err := e.MarshalModels() // the untrained defaults
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("PRSM\x02\x00\x00\x00\x00\x00"))
	f.Add([]byte("PRSM\x02\x00\x01\x05\x00\x00\x00abcde\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, _ := NewEngine(Config{}, nil)
		if err := e.LoadModels(b); err != nil && !errors.Is(err, ErrModel) {
			t.Fatalf("error not ErrModel: %v", err)
		}
	})
}
