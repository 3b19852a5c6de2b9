package store

import (
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestNewID(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	const n = 20000
	prev := ""
	for i := range n {
		id := NewID()
		if len(id) != 26 {
			t.Fatalf("id %q has %d chars, want 26", id, len(id))
		}
		if id <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
	u, err := ulid.ParseStrict(prev)
	if err != nil {
		t.Fatalf("not a ULID: %v", err)
	}
	if ts := ulid.Time(u.Time()); ts.Before(before) || ts.After(time.Now().Add(time.Millisecond)) {
		t.Errorf("id time %v is not now", ts)
	}
}

func TestNewIDConcurrent(t *testing.T) {
	const workers, each = 8, 2000
	var (
		mu   sync.Mutex
		seen = make(map[string]bool, workers*each)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			local := make([]string, each)
			for i := range local {
				local[i] = NewID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}
