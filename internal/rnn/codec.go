package rnn

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Binary format, little endian, version 1:
//
//	off  size  field
//	0    4     magic "PRNN"
//	4    2     version (1)
//	6    1     cell: 0 GRU, 1 LSTM
//	7    1     reserved, 0
//	8    4     Inputs   (uint32)
//	12   4     Hidden   (uint32)
//	16   4     Outputs  (uint32)
//	20   4     number of quantiles Q (uint32)
//	24   8     Seed (int64)
//	32   8     LearningRate (float64 bits)
//	40   8     Clip
//	48   8     L2
//	56   8*Q   Quantiles
//	..   8     number of parameters P (uint64), must equal NumParams
//	..   8*P   parameters in NumParams order (W, U, b, V, c; row-major)
//	..   4     CRC-32C (Castagnoli) of all preceding bytes
//
// Adam's moments and the shuffle position are training state and are not
// stored: a decoded model trains on as if new from its weights.
const (
	magic         = "PRNN"
	formatVersion = 1
	headerSize    = 56
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the configuration and weights (see the format
// above). It implements encoding.BinaryMarshaler and never fails.
func (m *Model) MarshalBinary() ([]byte, error) {
	q := m.cfg.Quantiles
	buf := make([]byte, 0, headerSize+8*len(q)+8+8*len(m.params)+4)
	buf = append(buf, magic...)
	buf = binary.LittleEndian.AppendUint16(buf, formatVersion)
	cell := byte(0)
	if m.lstm {
		cell = 1
	}
	buf = append(buf, cell, 0)
	for _, v := range []int{m.cfg.Inputs, m.cfg.Hidden, m.cfg.Outputs, len(q)} {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.cfg.Seed))
	for _, v := range []float64{m.cfg.LearningRate, m.cfg.Clip, m.cfg.L2} {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	for _, v := range q {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(m.params)))
	for _, v := range m.params {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli)), nil
}

// UnmarshalBinary replaces m with the model encoded in data by
// MarshalBinary. It checks the magic, version, sizes, configuration,
// checksum and that every weight is finite; on error (wrapping ErrFormat,
// ErrVersion or ErrConfig) m is unchanged. It does not retain data.
func (m *Model) UnmarshalBinary(data []byte) error {
	nm, err := decode(data)
	if err != nil {
		return fmt.Errorf("rnn: decode model: %w", err)
	}
	*m = *nm
	return nil
}

func decode(data []byte) (*Model, error) {
	le := binary.LittleEndian
	if len(data) < headerSize {
		return nil, fmt.Errorf("%d bytes, shorter than the %d-byte header: %w", len(data), headerSize, ErrFormat)
	}
	if string(data[:4]) != magic {
		return nil, fmt.Errorf("magic %q, want %q: %w", data[:4], magic, ErrFormat)
	}
	if v := le.Uint16(data[4:]); v != formatVersion {
		return nil, fmt.Errorf("version %d, this build reads %d: %w", v, formatVersion, ErrVersion)
	}
	var cfg Config
	switch data[6] {
	case 0:
		cfg.Cell = CellGRU
	case 1:
		cfg.Cell = CellLSTM
	default:
		return nil, fmt.Errorf("unknown cell type %d: %w", data[6], ErrFormat)
	}
	if data[7] != 0 {
		return nil, fmt.Errorf("reserved byte is %d, want 0: %w", data[7], ErrFormat)
	}
	dims := [4]uint32{le.Uint32(data[8:]), le.Uint32(data[12:]), le.Uint32(data[16:]), le.Uint32(data[20:])}
	for i, name := range []string{"inputs", "hidden", "outputs"} {
		if dims[i] < 1 || dims[i] > maxDim {
			return nil, fmt.Errorf("%s %d not in [1, %d]: %w", name, dims[i], maxDim, ErrFormat)
		}
	}
	nq := dims[3]
	if nq > maxQuantiles {
		return nil, fmt.Errorf("%d quantiles, at most %d: %w", nq, maxQuantiles, ErrFormat)
	}
	cfg.Inputs, cfg.Hidden, cfg.Outputs = int(dims[0]), int(dims[1]), int(dims[2])
	cfg.Seed = int64(le.Uint64(data[24:]))
	cfg.LearningRate = math.Float64frombits(le.Uint64(data[32:]))
	cfg.Clip = math.Float64frombits(le.Uint64(data[40:]))
	cfg.L2 = math.Float64frombits(le.Uint64(data[48:]))
	rest := data[headerSize:]
	if uint64(len(rest)) < 8*uint64(nq)+8 {
		return nil, fmt.Errorf("truncated in the quantiles: %w", ErrFormat)
	}
	if nq > 0 {
		cfg.Quantiles = make([]float64, nq)
		for i := range cfg.Quantiles {
			cfg.Quantiles[i] = math.Float64frombits(le.Uint64(rest[8*i:]))
		}
	}
	rest = rest[8*nq:]
	// Zero would mean "default" to validate; a stored model always has
	// explicit values, so refuse zeros rather than silently change them.
	if cfg.LearningRate == 0 || cfg.Clip == 0 {
		return nil, fmt.Errorf("learning rate %v and clip %v must be set: %w", cfg.LearningRate, cfg.Clip, ErrFormat)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("stored config: %w: %w", err, ErrFormat)
	}
	want := numParams(cfg.Inputs, cfg.Hidden, cfg.Outputs, gatesOf(cfg.Cell))
	if p := le.Uint64(rest); p != uint64(want) {
		return nil, fmt.Errorf("%d parameters stored, config needs %d: %w", p, want, ErrFormat)
	}
	rest = rest[8:]
	if uint64(len(rest)) != 8*uint64(want)+4 {
		return nil, fmt.Errorf("%d bytes of weights and checksum, want %d: %w", len(rest), 8*want+4, ErrFormat)
	}
	body := data[:len(data)-4]
	if got, sum := crc32.Checksum(body, castagnoli), le.Uint32(data[len(data)-4:]); got != sum {
		return nil, fmt.Errorf("checksum %08x, data has %08x: %w", got, sum, ErrFormat)
	}
	m := newModel(cfg)
	for i := range m.params {
		v := math.Float64frombits(le.Uint64(rest[8*i:]))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("parameter %d is %v: %w", i, v, ErrFormat)
		}
		m.params[i] = v
	}
	return m, nil
}
