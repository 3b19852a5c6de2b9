package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// InputLimits bound what one SubmitRequest may carry. Each refusal is an
// *Error with status 413 (body) or 400 (the rest) naming the limit.
type InputLimits struct {
	MaxBodyBytes int64 // the whole request body ("max_body_bytes")
	MaxArgs      int   // len(Spec.Argv) ("max_args")
	MaxArgBytes  int   // total bytes of Spec.Argv ("max_arg_bytes")
	MaxEnvVars   int   // len(Spec.Env) ("max_env_vars")
	MaxEnvBytes  int   // total bytes of Spec.Env ("max_env_bytes")
	MaxInputs    int   // len(Spec.Inputs) ("max_inputs")
	MaxPathBytes int   // each of Spec.Dir and Spec.Inputs ("max_path_bytes")
	// MaxStringBytes bounds each argument and environment string
	// ("max_string_bytes"): the kernel's MAX_ARG_STRLEN (32 pages) less
	// its NUL, beyond which execve fails with E2BIG.
	MaxStringBytes int
}

// DefaultInputLimits are the daemon's defaults, a little under what
// execve(2) accepts in total (ARG_MAX, 2 MiB on Linux).
var DefaultInputLimits = InputLimits{
	MaxBodyBytes:   2 << 20,
	MaxArgs:        4096,
	MaxArgBytes:    512 << 10,
	MaxEnvVars:     4096,
	MaxEnvBytes:    512 << 10,
	MaxInputs:      256,
	MaxPathBytes:   4096,
	MaxStringBytes: 32*4096 - 1,
}

func limitErr(status int, limit string, format string, args ...any) *Error {
	return &Error{Status: status, Code: CodeLimitExceeded, Limit: limit,
		Message: fmt.Sprintf(format, args...) + " (limit " + limit + ")"}
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// DecodeSubmit reads one SubmitRequest from r: a single JSON object, no
// unknown fields, nothing after it, within lim. Every error is an *Error.
func DecodeSubmit(r io.Reader, lim InputLimits) (*SubmitRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("read request: %v", err)
	}
	if int64(len(body)) > lim.MaxBodyBytes {
		return nil, limitErr(http.StatusRequestEntityTooLarge, "max_body_bytes", "request body is over %d bytes", lim.MaxBodyBytes)
	}
	// JSON strings carry text: invalid UTF-8 would be decoded into U+FFFD,
	// and the task would run other bytes than the user sent.
	if !utf8.Valid(body) {
		return nil, badRequest("request is not valid UTF-8: arguments, environment and paths must be UTF-8 text")
	}
	var req SubmitRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	if err := req.Validate(lim); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeStrict decodes exactly one JSON value into v, rejecting unknown
// fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid JSON: data after the object")
	}
	return nil
}

// Validate checks a request against lim and for sense: a non-empty argv
// without NUL bytes, KEY=VALUE environment entries, an absolute Dir, finite
// non-negative limits.
func (r *SubmitRequest) Validate(lim InputLimits) error {
	s := &r.Spec
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return badRequest("spec.argv is empty")
	}
	if len(s.Argv) > lim.MaxArgs {
		return limitErr(http.StatusBadRequest, "max_args", "%d arguments, at most %d allowed", len(s.Argv), lim.MaxArgs)
	}
	n := 0
	for _, a := range s.Argv {
		n += len(a) + 1
		if strings.IndexByte(a, 0) >= 0 {
			return badRequest("spec.argv holds a NUL byte")
		}
		if lim.MaxStringBytes > 0 && len(a) > lim.MaxStringBytes {
			return limitErr(http.StatusBadRequest, "max_string_bytes", "an argument of %d bytes, at most %d allowed (the kernel's limit per argument)", len(a), lim.MaxStringBytes)
		}
	}
	if n > lim.MaxArgBytes {
		return limitErr(http.StatusBadRequest, "max_arg_bytes", "arguments total %d bytes, at most %d allowed", n, lim.MaxArgBytes)
	}
	if len(s.Env) > lim.MaxEnvVars {
		return limitErr(http.StatusBadRequest, "max_env_vars", "%d environment variables, at most %d allowed", len(s.Env), lim.MaxEnvVars)
	}
	n = 0
	for _, e := range s.Env {
		n += len(e) + 1
		if strings.IndexByte(e, 0) >= 0 {
			return badRequest("spec.env holds a NUL byte")
		}
		if lim.MaxStringBytes > 0 && len(e) > lim.MaxStringBytes {
			return limitErr(http.StatusBadRequest, "max_string_bytes", "an environment string of %d bytes, at most %d allowed (the kernel's limit per string)", len(e), lim.MaxStringBytes)
		}
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return badRequest("spec.env entry %.40q is not KEY=VALUE", e)
		}
	}
	if n > lim.MaxEnvBytes {
		return limitErr(http.StatusBadRequest, "max_env_bytes", "environment totals %d bytes, at most %d allowed", n, lim.MaxEnvBytes)
	}
	if len(s.Inputs) > lim.MaxInputs {
		return limitErr(http.StatusBadRequest, "max_inputs", "%d inputs, at most %d allowed", len(s.Inputs), lim.MaxInputs)
	}
	for _, p := range append([]string{s.Dir}, s.Inputs...) {
		if len(p) > lim.MaxPathBytes {
			return limitErr(http.StatusBadRequest, "max_path_bytes", "a path of %d bytes, at most %d allowed", len(p), lim.MaxPathBytes)
		}
		if strings.IndexByte(p, 0) >= 0 {
			return badRequest("a path holds a NUL byte")
		}
	}
	if s.Dir == "" || !filepath.IsAbs(s.Dir) {
		return badRequest("spec.dir %q must be an absolute path", s.Dir)
	}
	if err := s.Limits.validate("spec.limits"); err != nil {
		return err
	}
	if r.Requests != nil {
		if err := r.Requests.validate("requests"); err != nil {
			return err
		}
	}
	return nil
}

func (l Limits) validate(what string) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"cpu_cores", l.CPUCores}, {"memory_mb", l.MemoryMB}, {"iops", l.IOPS}, {"net_mbps", l.NetMbps}} {
		if f.v < 0 || math.IsNaN(f.v) || f.v > 1e12 {
			return badRequest("%s.%s = %v is out of range", what, f.name, f.v)
		}
	}
	if l.Pids < 0 {
		return badRequest("%s.pids = %d is out of range", what, l.Pids)
	}
	return nil
}
