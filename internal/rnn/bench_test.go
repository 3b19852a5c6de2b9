package rnn

import (
	"context"
	"math/rand/v2"
	"testing"
)

func benchModel(b *testing.B, cell string) *Model {
	m, err := New(Config{Inputs: 16, Hidden: 32, Outputs: 8, Seed: 1, Cell: cell})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchSeq(T, inputs int) [][]float64 {
	rng := rand.New(rand.NewPCG(42, 42))
	seq := make([][]float64, T)
	for t := range seq {
		seq[t] = make([]float64, inputs)
		for i := range seq[t] {
			seq[t][i] = rng.NormFloat64()
		}
	}
	return seq
}

// BenchmarkStep: one online step, Inputs 16, Hidden 32, Outputs 8.
func BenchmarkStep(b *testing.B) {
	for _, cell := range []string{CellGRU, CellLSTM} {
		b.Run(cell, func(b *testing.B) {
			m := benchModel(b, cell)
			s, out := m.NewState(), make([]float64, 8)
			seq := benchSeq(64, 16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Step(s, seq[i&63], out)
				i++
			}
		})
	}
}

// BenchmarkForward24: a 24-step sequence from a zero state.
func BenchmarkForward24(b *testing.B) {
	for _, cell := range []string{CellGRU, CellLSTM} {
		b.Run(cell, func(b *testing.B) {
			m := benchModel(b, cell)
			seq := benchSeq(24, 16)
			b.ReportAllocs()
			for b.Loop() {
				m.Forward(seq)
			}
		})
	}
}

// BenchmarkTrainEpoch: one epoch over 64 sequences of 24 steps, batch 16.
func BenchmarkTrainEpoch(b *testing.B) {
	const n, T = 64, 24
	for _, cell := range []string{CellGRU, CellLSTM} {
		b.Run(cell, func(b *testing.B) {
			m := benchModel(b, cell)
			data := make([]Example, n)
			for e := range data {
				seq := benchSeq(T, 16)
				tgt := make([][]float64, T)
				for t := range tgt {
					tgt[t] = seq[t][:8]
				}
				data[e] = Example{Seq: seq, Target: tgt}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Train(ctx, data, 1, 16); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "seqs/s")
		})
	}
}
