// Package podsig computes a pod container's signature: the key under which
// Prescient keeps the history of "the same kind of work" on Kubernetes. It
// is a task signature (internal/task, docs/signature.md) read from a pod
// spec instead of a command line: the image (its digest when pinned) and
// command stand for the code; the arguments, the declared inputs (the
// prescient.io/inputs annotation: type, size bucket, file-count bucket), the
// environment (less the deny list, values of valueFrom references left
// out) and the owner kind (Job, CronJob, Pod …) complete it. The same
// length-prefixed SHA-256 encoding makes it injective. docs/kubernetes.md
// gives the layout and worked examples.
package podsig
