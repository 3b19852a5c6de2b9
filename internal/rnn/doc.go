// Package rnn owns a small recurrent sequence model — a GRU or LSTM cell with
// a linear output layer — trained by backpropagation through time with Adam,
// in pure Go and without cgo.
//
// It is built for per-signature resource curves: a few inputs (recent CPU,
// memory, IO, network and calendar features), a hidden state of a few dozen
// units and a handful of outputs, trained on tens to thousands of short
// sequences. At these sizes plain []float64 loops beat calling into gonum's
// BLAS (whose per-call checks dominate a 32x48 matrix-vector product) and
// let Step run with zero allocations; see dot and the *Add helpers.
//
// Losses: mean squared error by default. With Config.Quantiles set the model
// predicts, for each target, one output per quantile (output index
// target*len(Quantiles)+q) and is trained with the pinball (quantile) loss.
// At inference (Step, Forward) the quantile outputs of each target are kept
// non-crossing by sorting them (monotone rearrangement, Chernozhukov,
// Fernández-Val and Galichon 2010), which never increases the pinball loss;
// training and Loss use the raw outputs, so the objective stays exactly the
// one whose gradient is computed.
//
// Determinism: weights are initialised and minibatches shuffled from PCG
// streams seeded by Config.Seed, reductions run in a fixed order on one
// goroutine, so the same Config, data and calls give bit-identical weights
// for a given build target. (Across architectures the last bits may differ:
// math.Exp has assembly versions and the compiler fuses multiply-adds on
// arm64 and with GOAMD64=v3.) Training is single-threaded on purpose: a
// parallel reduction would make the result depend on the worker count; run
// several models (one per signature) concurrently instead.
//
// Concurrency: a Model's weights are read by Step, Forward, Loss and
// MarshalBinary, which may run concurrently with each other (each State
// belongs to one goroutine). Train and UnmarshalBinary write the weights and
// must not run concurrently with anything else on the same Model.
package rnn
