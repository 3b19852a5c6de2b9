package predict

import (
	"encoding/binary"
	"fmt"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/rnn"
)

// modelsMagic starts a persisted model set; modelsVersion is bumped on
// any change of layout or of the sequence model's features.
const (
	modelsMagic   = "PRSM"
	modelsVersion = 1
)

// MarshalModels persists the learned models: magic, version (uint16 LE),
// then per dimension a presence byte and, if present, the uint32 LE length
// of the rnn model's bytes and those bytes.
func (e *Engine) MarshalModels() ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := append([]byte(modelsMagic), 0, 0)
	binary.LittleEndian.PutUint16(b[4:], modelsVersion)
	for d := range resource.NumDims {
		if e.seq[d] == nil {
			b = append(b, 0)
			continue
		}
		m, err := e.seq[d].m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("marshal %s model: %w", d, err)
		}
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b, nil
}

// LoadModels replaces the learned models with persisted ones; on error
// the engine keeps the models it had.
func (e *Engine) LoadModels(b []byte) error {
	if len(b) < 6 || string(b[:4]) != modelsMagic {
		return fmt.Errorf("not a model file: %w", ErrModel)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != modelsVersion {
		return fmt.Errorf("model version %d, want %d: %w", v, modelsVersion, ErrModel)
	}
	b = b[6:]
	var seq [resource.NumDims]*Seq
	for d := range resource.NumDims {
		if len(b) < 1 {
			return fmt.Errorf("truncated at %s: %w", d, ErrModel)
		}
		present := b[0]
		b = b[1:]
		if present == 0 {
			continue
		}
		if present != 1 || len(b) < 4 {
			return fmt.Errorf("bad %s header: %w", d, ErrModel)
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return fmt.Errorf("%s model truncated: %w", d, ErrModel)
		}
		var m rnn.Model
		if err := m.UnmarshalBinary(b[:n]); err != nil {
			return fmt.Errorf("%s model: %w: %w", d, ErrModel, err)
		}
		if c := m.Config(); c.Inputs != seqInputs || c.Outputs != SeqHorizons*len(seqQuantiles) {
			return fmt.Errorf("%s model has %d inputs, %d outputs: %w", d, c.Inputs, c.Outputs, ErrModel)
		}
		seq[d] = NewSeq(&m)
		b = b[n:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%d trailing bytes: %w", len(b), ErrModel)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq = seq
	return nil
}
