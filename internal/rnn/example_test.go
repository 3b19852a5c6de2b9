package rnn_test

import (
	"context"
	"fmt"
	"math"

	"github.com/prescient-sched/prescient/internal/rnn"
)

// A model that predicts the p10, p50 and p90 of the next value of a series
// from its current value, trained on a few sine waves.
func Example() {
	m, err := rnn.New(rnn.Config{Inputs: 1, Hidden: 8, Outputs: 3, Seed: 1,
		Quantiles: []float64{0.1, 0.5, 0.9}})
	if err != nil {
		panic(err)
	}
	var data []rnn.Example
	for k := range 8 {
		var ex rnn.Example
		for t := range 20 {
			x := math.Sin(0.3*float64(t) + float64(k))
			ex.Seq = append(ex.Seq, []float64{x})
			ex.Target = append(ex.Target, []float64{math.Sin(0.3*float64(t+1) + float64(k))})
		}
		data = append(data, ex)
	}
	st, err := m.Train(context.Background(), data, 30, 4)
	if err != nil {
		panic(err)
	}
	fmt.Println("epochs:", st.Epochs, "improved:", st.Loss[len(st.Loss)-1] < st.Loss[0])

	// Online use: feed observations one at a time.
	s := m.NewState()
	out := make([]float64, 3)
	for _, x := range data[0].Seq[:10] {
		m.Step(s, x, out)
	}
	fmt.Println("non-crossing:", out[0] <= out[1] && out[1] <= out[2])

	// Persist and restore.
	b, _ := m.MarshalBinary()
	var restored rnn.Model
	if err := restored.UnmarshalBinary(b); err != nil {
		panic(err)
	}
	fmt.Println("params:", restored.NumParams())
	// Output:
	// epochs: 30 improved: true
	// non-crossing: true
	// params: 267
}
