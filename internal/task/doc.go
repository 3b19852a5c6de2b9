// Package task owns what a task is: its Spec (what to run, with which
// declared inputs and limits), its Record (what happened to it), the State
// machine between them, and its Signature — the SHA-256 key under which the
// history of "the same kind of task" is kept.
package task
