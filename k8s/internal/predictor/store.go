package predictor

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/prescient-sched/prescient/k8s/internal/core"
)

// runStore keeps the recorded runs in a bbolt file: bucket "runs", key =
// signature (32 bytes) ‖ sequence (8 bytes big-endian), value = storedRun
// as JSON; at most maxRuns per signature (the oldest are deleted). A Put
// is fsync'd before it returns. bbolt serialises writers; safe for
// concurrent use.
type runStore struct {
	db      *bolt.DB
	maxRuns int
}

var (
	bucketRuns = []byte("runs")
	bucketMeta = []byte("meta")
	keyVersion = []byte("version")
)

// storeVersion is bumped on any change of the stored layout.
const storeVersion = "1"

// storedRun is a run as persisted: already at the server's step.
type storedRun struct {
	Signature  string        `json:"signature"`
	Code       string        `json:"code,omitempty"`
	InputBytes float64       `json:"inputBytes,omitempty"`
	InputType  string        `json:"inputType,omitempty"`
	Start      time.Time     `json:"start"`
	Step       time.Duration `json:"step"`
	Samples    []Sample      `json:"samples"`
}

func (r *storedRun) coreRun() core.Run {
	ss := make([]core.Sample, len(r.Samples))
	for i, s := range r.Samples {
		ss[i] = core.Sample{CPU: s.CPU, Memory: s.Memory, IO: s.IO, Network: s.Network}
	}
	return core.Run{
		Features: core.Features{Signature: r.Signature, Code: r.Code, InputBytes: r.InputBytes, InputType: r.InputType},
		Start:    r.Start, Samples: ss,
	}
}

func openStore(dir string, maxRuns int) (*runStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w: %w", dir, ErrStore, err)
	}
	path := filepath.Join(dir, "runs.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process: %w", path, ErrStore)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: %w", path, ErrStore, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRuns); err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := m.Get(keyVersion); {
		case v == nil:
			return m.Put(keyVersion, []byte(storeVersion))
		case string(v) != storeVersion:
			return fmt.Errorf("store version %q, want %q", v, storeVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w: %w", path, ErrStore, err)
	}
	return &runStore{db: db, maxRuns: maxRuns}, nil
}

// put persists r and deletes the signature's oldest runs beyond maxRuns;
// it returns the runs kept for the signature.
func (s *runStore) put(r *storedRun) (int, error) {
	sig, err := hex.DecodeString(r.Signature)
	if err != nil {
		return 0, fmt.Errorf("signature: %w: %w", ErrStore, err)
	}
	val, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode run: %w: %w", ErrStore, err)
	}
	var kept int
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(bytes.Clone(sig), seq), val); err != nil {
			return err
		}
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(sig); k != nil && bytes.HasPrefix(k, sig); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys[:max(0, len(keys)-s.maxRuns)] {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		kept = min(len(keys), s.maxRuns)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("put run: %w: %w", ErrStore, err)
	}
	return kept, nil
}

// each calls fn for every stored run, each signature's oldest first.
func (s *runStore) each(fn func(*storedRun) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			var r storedRun
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("run %x: %w: %w", k, ErrStore, err)
			}
			return fn(&r)
		})
	})
}

// list returns the kept runs of one signature, oldest first.
func (s *runStore) list(sigHex string) ([]RunInfo, error) {
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return nil, fmt.Errorf("signature: %w: %w", ErrBadRequest, err)
	}
	var out []RunInfo
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRuns).Cursor()
		for k, v := c.Seek(sig); k != nil && bytes.HasPrefix(k, sig); k, v = c.Next() {
			var r storedRun
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("run %x: %w: %w", k, ErrStore, err)
			}
			out = append(out, RunInfo{Start: r.Start, Samples: len(r.Samples)})
		}
		return nil
	})
	return out, err
}

func (s *runStore) close() error { return s.db.Close() }
