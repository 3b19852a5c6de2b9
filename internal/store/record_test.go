package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/task"
)

func TestDecodeRecord(t *testing.T) {
	good, err := encodeRecord(fullRecord("x"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"valid", good, nil},
		{"empty", nil, ErrCorrupt},
		{"unknown version", append([]byte{2}, good[1:]...), ErrCorrupt},
		{"truncated", good[:len(good)/2], ErrCorrupt},
		{"trailing data", append(bytes.Clone(good), '}'), ErrCorrupt},
		{"not an object", []byte{recordV1, '[', ']'}, ErrCorrupt},
		{"no id", []byte(string(rune(recordV1)) + `{"state":"queued"}`), ErrCorrupt},
		{"bad state", []byte(string(rune(recordV1)) + `{"id":"a","state":"zombie"}`), ErrCorrupt},
		{"wrong type", []byte(string(rune(recordV1)) + `{"id":"a","state":"queued","samples":"many"}`), ErrCorrupt},
		{"unknown field is tolerated", []byte(string(rune(recordV1)) + `{"id":"a","state":"queued","from_the_future":1}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decodeRecord(tt.in)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("decodeRecord error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && r == nil {
				t.Fatal("nil record without error")
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("a stored record reported as an invalid argument: %v", err)
			}
		})
	}
}

// FuzzDecodeRecord feeds the decoder what a crash or another version might
// leave in tasks.db. It must never panic, and whatever it accepts must
// survive a re-encode unchanged.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []*task.Record{
		fullRecord("01JDZ5Q0000000000000000000"),
		rec("a", "", task.Queued, time.Time{}),
		rec("b", "s", task.Running, time.Unix(1<<33, 0).UTC()),
	} {
		b, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{recordV1})
	f.Add([]byte{recordV1, 'n', 'u', 'l', 'l'})
	f.Add([]byte(string(rune(recordV1)) + `{"id":"a","state":"queued","exit_code":null,"peak":{"cpu_pct":1e308}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if err := validRecord(r); err != nil {
			t.Fatalf("decoded record is invalid: %v", err)
		}
		enc, err := encodeRecord(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := decodeRecord(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded record: %v", err)
		}
		enc2, err := encodeRecord(r2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", enc, enc2)
		}
	})
}
