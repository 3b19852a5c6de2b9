// Package core is the Kubernetes parts' only door into the main module's
// internal packages: one adapter file per concern (predict.go: the
// predictor engine; signature.go: the signature rules shared with
// internal/task). Everything else in this module speaks the types declared
// here, in the units Kubernetes uses (CPU in cores, memory in bytes, IO in
// operations per second, network in Mbps), so a change of an internal API
// is absorbed in one file.
package core
