// Package task owns what a task is: its Spec (what to run, with which
// declared inputs and limits), its Record (what happened to it), the State
// machine between them, and its Signature — the SHA-256 key under which the
// history of "the same kind of task" is kept.
//
// A Signer computes signatures (docs/signature.md defines them): SHA-256
// over a versioned, length-prefixed encoding of the code (the executable's
// SHA-256 and, for an interpreter, its script's), the argument vector with
// declared inputs replaced by their type and power-of-two size bucket, the
// inputs' characteristics, and the environment minus volatile variables.
// Runs on different but similar inputs, from different directories or
// terminals, share a signature; a changed script or a changed setting does
// not. The Signer caches code hashes by file identity and is safe for
// concurrent use. It reads files with the rights of the thread it runs on
// (a daemon signs inside cred.Do with the caller's credential; the cache
// serves a digest only after the file was opened with those rights), and
// bounds the work of one signature (SignerConfig's MaxEntries,
// MaxCodeBytes and Timeout; a *LimitError beyond them).
//
// ParseSize, ParseCPU and ParseRate read the limit flags of the CLI.
package task
