package task

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// The canonical encoding. Every value hashed into a signature is written as
//
//	u64(n)  — an unsigned integer, 8 bytes big-endian
//	str(s)  — u64(len(s)) followed by the bytes of s
//	list    — u64(count) followed by the items
//
// in a fixed order after a version string. Because every string carries its
// length, the encoding is injective: ["ab","c"] and ["a","bc"], or an
// argument that contains a separator character, can never encode to the same
// bytes, whatever bytes the values hold. A separator-joined form would need
// escaping rules to get the same guarantee. docs/signature.md gives the full
// layout.
const (
	codeVersion      = "prescient-code/v1"
	signatureVersion = "prescient-signature/v1"
)

// encoder writes the canonical encoding into a hash.
type encoder struct {
	h   hash.Hash
	buf [8]byte
}

func newEncoder() *encoder { return &encoder{h: sha256.New()} }

func (e *encoder) u64(v uint64) {
	binary.BigEndian.PutUint64(e.buf[:], v)
	e.h.Write(e.buf[:]) // hash.Hash.Write never fails
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.h.Write([]byte(s))
}

func (e *encoder) bytes(b []byte) {
	e.u64(uint64(len(b)))
	e.h.Write(b)
}

func (e *encoder) sum() (d [sha256.Size]byte) {
	e.h.Sum(d[:0])
	return d
}

// Script kinds, as reported in Signature.ScriptKind and used for argument roles.
const (
	kindNone   = ""
	kindFile   = "file"   // a script file; its SHA-256 is hashed
	kindInline = "inline" // program text on the command line (sh -c, python -c, perl -e …)
	kindModule = "module" // a module or class name (python -m, java Main, java -m)
)

// codeID is everything that identifies the code a task runs.
type codeID struct {
	program [sha256.Size]byte // SHA-256 of the executable's bytes
	script  []byte            // SHA-256 of the script file; nil when none
	inline  []string          // program text from the command line, in order
	module  string            // a module or class name (python -m, java Main)
}

// kind is the Signature.ScriptKind of c.
func (c *codeID) kind() string {
	switch {
	case c.script != nil:
		return kindFile
	case len(c.inline) > 0:
		return kindInline
	case c.module != "":
		return kindModule
	}
	return kindNone
}

// digest is the code part of a signature:
//
//	str("prescient-code/v1")
//	str(program digest)
//	str(script digest)       — empty when there is no script file
//	list of str(inline text) — sh -c, python -c, perl -e …, in order
//	str(module)              — python -m, java main class; empty when none
func (c *codeID) digest() [sha256.Size]byte {
	e := newEncoder()
	e.str(codeVersion)
	e.bytes(c.program[:])
	e.bytes(c.script)
	e.u64(uint64(len(c.inline)))
	for _, s := range c.inline {
		e.str(s)
	}
	e.str(c.module)
	return e.sum()
}

// canonArg is one element of the canonical argument vector. A placeholder
// (<script>, <input:csv:2^20>, --in=<input:csv:2^20>) is encoded with a
// different tag from a literal argument, so a literal argument that happens
// to read "<script>" cannot collide with one.
type canonArg struct {
	placeholder bool
	text        string
}

const (
	tagLiteral     = 0
	tagPlaceholder = 1
)

// signatureDigest is the signature:
//
//	str("prescient-signature/v1")
//	str(code digest)
//	list of argv:   u64(tag) str(text)
//	list of inputs: str(type) u64(size bucket) u64(file-count bucket)
//	list of env:    str(name) str(value), sorted by name
func signatureDigest(code [sha256.Size]byte, argv []canonArg, inputs []InputInfo, env []envPair) [sha256.Size]byte {
	e := newEncoder()
	e.str(signatureVersion)
	e.bytes(code[:])
	e.u64(uint64(len(argv)))
	for _, a := range argv {
		if a.placeholder {
			e.u64(tagPlaceholder)
		} else {
			e.u64(tagLiteral)
		}
		e.str(a.text)
	}
	e.u64(uint64(len(inputs)))
	for _, in := range inputs {
		e.str(in.Type)
		e.u64(uint64(in.Bucket))
		e.u64(uint64(filesBucket(in)))
	}
	e.u64(uint64(len(env)))
	for _, p := range env {
		e.str(p.key)
		e.str(p.value)
	}
	return e.sum()
}

// filesBucket is the file-count bucket of a directory input, 0 otherwise.
func filesBucket(in InputInfo) int {
	if !in.isDir() {
		return 0
	}
	return sizeBucket(int64(in.Files))
}
