package task

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SignatureVersion is the version of the canonical encoding behind
// Signature.Hash. It changes whenever the encoding or the meaning of a
// field does, so histories kept under old signatures are never mixed with
// new ones.
const SignatureVersion = 1

// DefaultPATH resolves programs when neither SignerConfig.PATH nor this
// process's $PATH is set.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Defaults of SignerConfig.
const (
	DefaultCacheEntries  = 1024
	DefaultMaxSniffFiles = 256
	// DefaultMaxEntries bounds the directory entries one Sign walks, over
	// all its inputs: what a large source tree or dataset directory holds;
	// walking that many takes 0.5–1 s of CPU when the metadata is cached.
	DefaultMaxEntries = 100_000
	// DefaultMaxCodeBytes bounds the bytes of code (the program that runs
	// and its script, after env and #! levels) one Sign hashes: larger than
	// any but the largest static binaries; hashing it takes about 1 s.
	DefaultMaxCodeBytes = 1 << 30
	// DefaultTimeout bounds the time one Sign takes.
	DefaultTimeout = 10 * time.Second
)

// SignerConfig configures a Signer. The zero value is usable.
type SignerConfig struct {
	// EnvAllow lists patterns (path.Match syntax: *, ?, [a-z]) of the
	// environment variable names that may enter a signature. Empty allows
	// every name.
	EnvAllow []string
	// EnvDeny lists patterns of names that never enter a signature; deny
	// wins over allow. Nil means DefaultEnvDeny(); an empty non-nil slice
	// denies nothing. To add to the defaults:
	// append(task.DefaultEnvDeny(), "MY_RUN_ID").
	EnvDeny []string
	// PATH resolves an Argv[0] without a slash. It should be the PATH the
	// executor resolves programs with. Empty means this process's $PATH, or
	// DefaultPATH when that is empty too. (Programs that the task itself
	// starts — env's command, perl -S scripts — are looked up in the task's
	// PATH when Spec.Env has one.)
	PATH string
	// CacheEntries bounds the code-hash cache (one entry per file).
	// 0 means DefaultCacheEntries.
	CacheEntries int
	// MaxSniffFiles bounds how many files of one directory input are typed
	// by content; the rest are typed by extension. 0 means
	// DefaultMaxSniffFiles.
	MaxSniffFiles int
	// MaxEntries bounds the directory entries one Sign walks, over all of
	// its directory inputs (every entry counts: files, directories,
	// symlinks); beyond it Sign fails with a *LimitError. 0 means
	// DefaultMaxEntries.
	MaxEntries int
	// MaxCodeBytes bounds the total size of the code files one Sign hashes
	// (the program and its script, at every env and #! level) — counted
	// whether or not the digest is cached, so that whether a task can be
	// signed does not depend on the cache; beyond it Sign fails with a
	// *LimitError. 0 means DefaultMaxCodeBytes.
	MaxCodeBytes int64
	// Timeout bounds the time one Sign takes; beyond it Sign fails with a
	// *LimitError. It is checked between steps (each directory entry, each
	// MiB hashed), so a single system call that blocks (a hung network
	// filesystem) is not cut short. 0 means DefaultTimeout.
	Timeout time.Duration
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
}

// validate checks c and fills in its defaults.
func (c *SignerConfig) validate() error {
	for _, list := range []struct {
		name string
		pats []string
	}{{"EnvAllow", c.EnvAllow}, {"EnvDeny", c.EnvDeny}} {
		for _, p := range list.pats {
			if p == "" {
				return fmt.Errorf("%s: empty pattern: %w", list.name, ErrConfig)
			}
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%s pattern %q: %w: %w", list.name, p, ErrConfig, err)
			}
		}
	}
	c.EnvAllow = slices.Clone(c.EnvAllow)
	if c.EnvDeny == nil {
		c.EnvDeny = DefaultEnvDeny()
	} else {
		c.EnvDeny = slices.Clone(c.EnvDeny)
	}
	if c.PATH == "" {
		c.PATH = os.Getenv("PATH")
	}
	if c.PATH == "" {
		c.PATH = DefaultPATH
	}
	if c.CacheEntries < 0 {
		return fmt.Errorf("CacheEntries %d is negative: %w", c.CacheEntries, ErrConfig)
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.MaxSniffFiles < 0 {
		return fmt.Errorf("MaxSniffFiles %d is negative: %w", c.MaxSniffFiles, ErrConfig)
	}
	if c.MaxSniffFiles == 0 {
		c.MaxSniffFiles = DefaultMaxSniffFiles
	}
	switch {
	case c.MaxEntries < 0:
		return fmt.Errorf("MaxEntries %d is negative: %w", c.MaxEntries, ErrConfig)
	case c.MaxEntries == 0:
		c.MaxEntries = DefaultMaxEntries
	}
	switch {
	case c.MaxCodeBytes < 0:
		return fmt.Errorf("MaxCodeBytes %d is negative: %w", c.MaxCodeBytes, ErrConfig)
	case c.MaxCodeBytes == 0:
		c.MaxCodeBytes = DefaultMaxCodeBytes
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("Timeout %v is negative: %w", c.Timeout, ErrConfig)
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Signature identifies "the same kind of task": the key under which the
// history of runs is kept and predictions are made. docs/signature.md
// defines it.
type Signature struct {
	// Hash is the signature: hex SHA-256 of the canonical encoding of the
	// code, the canonical argument vector, the input characteristics and
	// the selected environment.
	Hash string `json:"hash"`
	// Code is hex SHA-256 of the code part alone (program, script, inline
	// text, module): tasks with equal Code run the same code on possibly
	// different inputs.
	Code string `json:"code"`
	// Program is the absolute, symlink-free path of the executable that
	// runs — after env(1) and #! lines are followed, so for `./job.py` with
	// `#!/usr/bin/env python3` it is the python3 binary. Executors should
	// run Spec.Argv, not this.
	Program string `json:"program"`
	// Script is the absolute, symlink-free path of the script the
	// interpreter runs, or "".
	Script string `json:"script,omitempty"`
	// ScriptKind is "file" (Script is set), "inline" (sh -c, python -c,
	// perl -e …), "module" (python -m, a java main class) or "".
	ScriptKind string `json:"script_kind,omitempty"`
	// Argv is the canonical argument vector as hashed: the program's base
	// name, then its arguments with the script, inline text, module and
	// declared inputs replaced by placeholders.
	Argv []string `json:"argv"`
	// Inputs describes the declared inputs, in declared order.
	Inputs []InputInfo `json:"inputs,omitempty"`
	// InputBytes is the exact total size of the inputs: not hashed, a
	// feature for the predictor (see Record.InputBytes).
	InputBytes int64 `json:"input_bytes"`
	// EnvKeys are the names of the environment variables that were hashed,
	// sorted. Their values are hashed but not reported: they may be secret.
	EnvKeys []string `json:"env_keys,omitempty"`
}

// Signer computes task signatures. It caches the SHA-256 of executables and
// scripts by (path, device, inode, size, mtime, ctime). A Signer is safe for
// concurrent use; it holds no goroutines and needs no Close.
//
// Sign reads files with the rights of the thread it runs on and starts no
// goroutines, so a daemon signs for a user by calling it inside cred.Do
// with the user's credential: every file is then opened, stat'ed and
// listed as that user, and a cached digest is served only after the file
// was opened for reading with those rights (see codeCache.digest).
type Signer struct {
	cfg   SignerConfig
	env   envMatcher
	log   *slog.Logger
	cache *codeCache
	now   func() time.Time // the clock of Timeout
}

// NewSigner validates cfg and returns a Signer. Errors wrap ErrConfig.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Signer{
		cfg:   cfg,
		env:   newEnvMatcher(cfg.EnvAllow, cfg.EnvDeny),
		log:   cfg.Logger,
		cache: newCodeCache(cfg.CacheEntries, time.Now),
		now:   time.Now,
	}, nil
}

// CacheStats reports the code-hash cache's hits, misses and size.
func (s *Signer) CacheStats() CacheStats { return s.cache.stats() }

// Sign computes the signature of spec. Relative paths in spec (Argv[0] with
// a slash, scripts, inputs) are taken from spec.Dir, or from this process's
// working directory when spec.Dir is empty; the directory itself is not part
// of the signature. Spec.Limits are not either: they are what is predicted.
//
// Errors wrap ErrSpec, ErrProgramNotFound, ErrScript or ErrInput, and the
// underlying fs error (fs.ErrNotExist, fs.ErrPermission); a Sign that goes
// over MaxEntries, MaxCodeBytes or Timeout fails with a *LimitError
// (ErrLimit).
func (s *Signer) Sign(spec Spec) (Signature, error) {
	sig, _, err := s.sign(spec)
	return sig, err
}

// Explanation is a signature with what went into it: the Signature (its
// program, script, canonical argv, inputs and the names of the variables
// hashed) and the variables of the task's environment that were left out,
// each with the reason.
type Explanation struct {
	Signature
	// Version is SignatureVersion: signatures of other versions never match.
	Version int `json:"version"`
	// EnvExcluded are the task's variables (after env(1) is applied) that
	// did not enter the signature, sorted by name.
	EnvExcluded []EnvExcluded `json:"env_excluded,omitempty"`
}

// EnvExcluded is one variable left out of a signature.
type EnvExcluded struct {
	Name   string `json:"name"`
	Reason string `json:"reason"` // "denied by PATTERN", or not allowed
}

// Explain signs spec like Sign and says what went into the signature, so
// that a user can see why two runs differ. Errors are Sign's.
func (s *Signer) Explain(spec Spec) (Explanation, error) {
	sig, env, err := s.sign(spec)
	if err != nil {
		return Explanation{}, err
	}
	x := Explanation{Signature: sig, Version: SignatureVersion}
	for k := range env {
		if why := s.env.why(k, s.cfg.EnvAllow, s.cfg.EnvDeny); why != "" {
			x.EnvExcluded = append(x.EnvExcluded, EnvExcluded{Name: k, Reason: why})
		}
	}
	slices.SortFunc(x.EnvExcluded, func(a, b EnvExcluded) int { return strings.Compare(a.Name, b.Name) })
	return x, nil
}

// sign is Sign, also returning the environment the program runs with.
func (s *Signer) sign(spec Spec) (Signature, envSet, error) {
	if len(spec.Argv) == 0 {
		return Signature{}, nil, specErrorf("argv is empty")
	}
	dir, err := workDir(spec.Dir)
	if err != nil {
		return Signature{}, nil, err
	}
	env, err := parseEnv(spec.Env)
	if err != nil {
		return Signature{}, nil, err
	}
	b := s.newBudget()
	inv, err := s.resolve(spec.Argv, dir, env, b)
	if err != nil {
		return Signature{}, nil, err
	}
	sig := Signature{Program: inv.program, Script: inv.script, ScriptKind: inv.code.kind()}
	for _, p := range spec.Inputs {
		in, err := s.describeInput(p, dir, b)
		if err != nil {
			return Signature{}, nil, err
		}
		sig.Inputs = append(sig.Inputs, in)
		sig.InputBytes += in.Size
	}
	argv := canonicalArgv(inv, sig.Inputs, dir)
	sig.Argv = make([]string, len(argv))
	for i, a := range argv {
		sig.Argv[i] = a.text
	}
	pairs := s.env.filter(inv.env)
	for _, p := range pairs {
		sig.EnvKeys = append(sig.EnvKeys, p.key)
	}
	code := inv.code.digest()
	h := signatureDigest(code, argv, sig.Inputs, pairs)
	sig.Code = hex.EncodeToString(code[:])
	sig.Hash = hex.EncodeToString(h[:])
	s.log.Debug("signed task", "signature", sig.Hash, "program", sig.Program, "script", sig.Script)
	return sig, inv.env, nil
}

// workDir is the absolute directory relative paths of a Spec are taken from.
func workDir(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("working directory: %w", err)
		}
		return wd, nil
	}
	if filepath.IsAbs(dir) {
		return filepath.Clean(dir), nil
	}
	a, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("working directory %q: %w", dir, err)
	}
	return a, nil
}

// canonicalArgv builds the argument vector that is hashed: the base name of
// the program's argv[0], then each argument — the script, inline text and
// module as <script>, <inline>, <module> (after any attached option, as in
// -c<inline>), an argument equal to a declared input's path as that input's
// placeholder, an argument NAME=PATH (--in=PATH, if=PATH) as
// NAME=<placeholder>, and any other argument as itself.
func canonicalArgv(inv *invocation, inputs []InputInfo, dir string) []canonArg {
	out := make([]canonArg, 0, len(inv.args)+1)
	out = append(out, canonArg{text: filepath.Base(inv.name)})
	for i, a := range inv.args {
		r := inv.roles[i]
		if r.kind != kindNone {
			out = append(out, canonArg{placeholder: true, text: r.prefix + rolePlaceholder[r.kind]})
			continue
		}
		if in, ok := matchInput(a, inputs, dir); ok {
			out = append(out, canonArg{placeholder: true, text: in.placeholder()})
			continue
		}
		if k, v, ok := strings.Cut(a, "="); ok {
			if in, ok := matchInput(v, inputs, dir); ok {
				out = append(out, canonArg{placeholder: true, text: k + "=" + in.placeholder()})
				continue
			}
		}
		out = append(out, canonArg{text: a})
	}
	return out
}

var rolePlaceholder = map[string]string{kindFile: "<script>", kindInline: "<inline>", kindModule: "<module>"}

// matchInput finds the declared input whose path a names (both taken
// relative to dir and cleaned).
func matchInput(a string, inputs []InputInfo, dir string) (InputInfo, bool) {
	if a == "" || len(inputs) == 0 {
		return InputInfo{}, false
	}
	p := absIn(a, dir)
	for _, in := range inputs {
		if in.Path == p {
			return in, true
		}
	}
	return InputInfo{}, false
}
