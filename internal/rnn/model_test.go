package rnn

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	base := Config{Inputs: 2, Hidden: 3, Outputs: 4}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   error
		check  func(*testing.T, Config)
	}{
		{"defaults", func(*Config) {}, nil, func(t *testing.T, c Config) {
			if c.Cell != CellGRU || c.LearningRate != DefaultLearningRate || c.Clip != DefaultClip {
				t.Errorf("defaults not filled: %+v", c)
			}
		}},
		{"lstm upper case", func(c *Config) { c.Cell = "LSTM" }, nil, func(t *testing.T, c Config) {
			if c.Cell != CellLSTM {
				t.Errorf("cell %q", c.Cell)
			}
		}},
		{"quantiles", func(c *Config) { c.Quantiles = []float64{0.1, 0.9} }, nil, nil},
		{"no clip", func(c *Config) { c.Clip = math.Inf(1) }, nil, nil},
		{"zero inputs", func(c *Config) { c.Inputs = 0 }, ErrConfig, nil},
		{"negative hidden", func(c *Config) { c.Hidden = -1 }, ErrConfig, nil},
		{"huge outputs", func(c *Config) { c.Outputs = maxDim + 1 }, ErrConfig, nil},
		{"too many params", func(c *Config) { c.Hidden = maxDim }, ErrConfig, nil},
		{"negative lr", func(c *Config) { c.LearningRate = -1 }, ErrConfig, nil},
		{"nan lr", func(c *Config) { c.LearningRate = math.NaN() }, ErrConfig, nil},
		{"negative clip", func(c *Config) { c.Clip = -1 }, ErrConfig, nil},
		{"negative l2", func(c *Config) { c.L2 = -1 }, ErrConfig, nil},
		{"unknown cell", func(c *Config) { c.Cell = "rnn" }, ErrConfig, nil},
		{"quantile 0", func(c *Config) { c.Quantiles = []float64{0, 0.5} }, ErrConfig, nil},
		{"quantile 1", func(c *Config) { c.Quantiles = []float64{0.5, 1} }, ErrConfig, nil},
		{"quantiles unsorted", func(c *Config) { c.Quantiles = []float64{0.9, 0.1} }, ErrConfig, nil},
		{"quantiles repeated", func(c *Config) { c.Quantiles = []float64{0.5, 0.5} }, ErrConfig, nil},
		{"outputs not multiple", func(c *Config) { c.Quantiles = []float64{0.1, 0.5, 0.9} }, ErrConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mutate(&cfg)
			m, err := New(cfg)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && tt.check != nil {
				tt.check(t, m.Config())
			}
		})
	}
}

func TestConfigDoesNotAliasQuantiles(t *testing.T) {
	q := []float64{0.1, 0.9}
	m, err := New(Config{Inputs: 1, Hidden: 2, Outputs: 2, Quantiles: q})
	if err != nil {
		t.Fatal(err)
	}
	q[0] = 0.95
	if got := m.Config().Quantiles[0]; got != 0.1 {
		t.Errorf("model quantile changed with caller's slice: %v", got)
	}
}

func TestNumParams(t *testing.T) {
	tests := []struct {
		cell string
		want int
	}{
		{CellGRU, 3*32*(16+32+1) + 8*(32+1)},
		{CellLSTM, 4*32*(16+32+1) + 8*(32+1)},
	}
	for _, tt := range tests {
		t.Run(tt.cell, func(t *testing.T) {
			m, _ := New(Config{Inputs: 16, Hidden: 32, Outputs: 8, Cell: tt.cell})
			if got := m.NumParams(); got != tt.want {
				t.Errorf("NumParams = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStepMatchesForward(t *testing.T) {
	for _, cell := range []string{CellGRU, CellLSTM} {
		t.Run(cell, func(t *testing.T) {
			m, _ := New(Config{Inputs: 3, Hidden: 7, Outputs: 2, Seed: 9, Cell: cell})
			rng := rand.New(rand.NewPCG(3, 4))
			seq := make([][]float64, 12)
			for i := range seq {
				seq[i] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
			}
			want := m.Forward(seq)
			// The training forward pass must agree too.
			ws := m.newWorkspace(len(seq))
			m.forwardSeq(seq, &ws)
			s := m.NewState()
			out := make([]float64, 2)
			for round := range 2 { // second round checks Reset
				for i, x := range seq {
					m.Step(s, x, out)
					for o := range out {
						if out[o] != want[i][o] || ws.ys[i*2+o] != want[i][o] {
							t.Fatalf("round %d step %d output %d: Step %v, train %v, Forward %v",
								round, i, o, out[o], ws.ys[i*2+o], want[i][o])
						}
					}
				}
				m.Reset(s)
			}
		})
	}
}

func TestStateClone(t *testing.T) {
	m, _ := New(Config{Inputs: 1, Hidden: 4, Outputs: 1, Seed: 2, Cell: CellLSTM})
	s := m.NewState()
	m.Step(s, []float64{1}, nil)
	c := s.Clone()
	a, b := make([]float64, 1), make([]float64, 1)
	m.Step(s, []float64{0.5}, a)
	m.Step(c, []float64{0.5}, b)
	if a[0] != b[0] {
		t.Errorf("clone diverged: %v vs %v", a[0], b[0])
	}
	m.Step(c, []float64{0.5}, b)
	m.Step(s, []float64{-3}, a)
	if a[0] == b[0] {
		t.Error("clone shares state with its original")
	}
}

func TestQuantileOutputsSorted(t *testing.T) {
	m, _ := New(Config{Inputs: 2, Hidden: 4, Outputs: 6, Seed: 1, Quantiles: []float64{0.1, 0.5, 0.9}})
	// Make the raw outputs cross on purpose: reversed biases.
	copy(m.c, []float64{3, 2, 1, 30, 20, 10})
	for _, y := range m.Forward([][]float64{{0.1, 0.2}, {-1, 1}}) {
		for g := 0; g < 6; g += 3 {
			if !(y[g] <= y[g+1] && y[g+1] <= y[g+2]) {
				t.Errorf("target %d quantiles cross: %v", g/3, y[g:g+3])
			}
		}
	}
}

func TestStepAllocs(t *testing.T) {
	for _, cell := range []string{CellGRU, CellLSTM} {
		m, _ := New(Config{Inputs: 16, Hidden: 32, Outputs: 8, Cell: cell, Quantiles: []float64{0.5, 0.9}})
		s, x, out := m.NewState(), make([]float64, 16), make([]float64, 8)
		if n := testing.AllocsPerRun(100, func() { m.Step(s, x, out) }); n != 0 {
			t.Errorf("%s: Step allocates %v times", cell, n)
		}
	}
}

func TestStepPanics(t *testing.T) {
	m, _ := New(Config{Inputs: 2, Hidden: 3, Outputs: 1})
	other, _ := New(Config{Inputs: 2, Hidden: 4, Outputs: 1})
	tests := []struct {
		name string
		f    func()
	}{
		{"short input", func() { m.Step(m.NewState(), []float64{1}, nil) }},
		{"short output", func() { m.Step(m.NewState(), []float64{1, 2}, []float64{}) }},
		{"foreign state", func() { m.Step(other.NewState(), []float64{1, 2}, nil) }},
		{"nil state", func() { m.Step(nil, []float64{1, 2}, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}

// TestMatVecAddMatchesDot checks the two-row matVecAdd against dot row by
// row, bit for bit, for odd and even row counts and row lengths.
func TestMatVecAddMatchesDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct{ rows, cols int }{{1, 1}, {1, 5}, {7, 3}, {12, 12}, {36, 14}, {48, 16}, {5, 30}} {
		t.Run("", func(t *testing.T) {
			mat := make([]float64, tc.rows*tc.cols)
			x := make([]float64, tc.cols)
			dst := make([]float64, tc.rows)
			for i := range mat {
				mat[i] = rng.NormFloat64()
			}
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			for i := range dst {
				dst[i] = rng.NormFloat64()
			}
			want := make([]float64, tc.rows)
			for r := range want {
				want[r] = dst[r] + dot(mat[r*tc.cols:(r+1)*tc.cols], x)
			}
			matVecAdd(dst, mat, x)
			for r := range want {
				if dst[r] != want[r] {
					t.Errorf("%dx%d row %d: %v, want %v", tc.rows, tc.cols, r, dst[r], want[r])
				}
			}
		})
	}
}

func TestStateCopyFrom(t *testing.T) {
	m, err := New(Config{Inputs: 3, Hidden: 4, Outputs: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.NewState(), m.NewState()
	x := []float64{0.5, -1, 2}
	m.Step(a, x, nil)
	b.CopyFrom(a)
	oa, ob := make([]float64, 2), make([]float64, 2)
	m.Step(a, x, oa)
	m.Step(b, x, ob)
	if oa[0] != ob[0] || oa[1] != ob[1] {
		t.Fatalf("copied state diverged: %v vs %v", oa, ob)
	}
	if allocs := testing.AllocsPerRun(10, func() { b.CopyFrom(a) }); allocs != 0 {
		t.Fatalf("CopyFrom allocates %v", allocs)
	}
	other, _ := New(Config{Inputs: 3, Hidden: 5, Outputs: 2})
	defer func() {
		if recover() == nil {
			t.Fatal("CopyFrom across shapes did not panic")
		}
	}()
	other.NewState().CopyFrom(a)
}
