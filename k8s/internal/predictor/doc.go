// Package predictor is the predictor service: the engine of
// internal/predict (through internal/core) behind a small HTTP/JSON API —
// the whole-run curve for a signature (and the node's load), and the
// recording of a finished run — with its runs persisted in a bbolt file on
// a volume, so that a restart loses no history. Server serves it, Client
// calls it (the admission webhook and, later, the node agents do). api.go
// lists the endpoints and units.
package predictor
