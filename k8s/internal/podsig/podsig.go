package podsig

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/prescient-sched/prescient/k8s/internal/core"
)

// Version changes with any change of the encoding or of a rule that changes
// a hash, so that histories under old signatures are never mixed with new
// ones.
const Version = 1

// The encoding's version strings.
const (
	codeVersion      = "prescient-pod-code/v1"
	signatureVersion = "prescient-pod-signature/v1"
)

// Annotations a pod may carry to describe itself.
const (
	// AnnotationInputs declares the pod's inputs: a JSON array of Input.
	AnnotationInputs = "prescient.io/inputs"
	// AnnotationEnvDeny adds variable-name patterns (comma-separated,
	// path.Match syntax) to the deny list, for variables that change on
	// every run of otherwise identical work (a run id, a build number).
	AnnotationEnvDeny = "prescient.io/env-deny"
)

// Errors returned by this package.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("podsig: invalid config")
	// ErrAnnotation reports an annotation that cannot be read.
	ErrAnnotation = errors.New("podsig: bad annotation")
	// ErrContainer reports a container the pod does not have.
	ErrContainer = errors.New("podsig: no such container")
)

// Limits on what a pod may declare, so that a hostile annotation cannot
// make signing expensive.
const (
	maxInputs      = 64
	maxTypeLen     = 64
	maxDenyEntries = 64
)

// Input is one declared input, as written in AnnotationInputs.
type Input struct {
	// Container restricts the input to one container; empty means every
	// container of the pod.
	Container string `json:"container,omitempty"`
	// Type names the data ("csv", "parquet", "dir:csv"), as a task's input
	// type (docs/signature.md); lower-case letters, digits and ":+._-".
	Type string `json:"type"`
	// Size is a quantity of bytes ("2Gi", "1500000000").
	Size string `json:"size"`
	// Files is the number of files of a directory input; 0 otherwise.
	Files int64 `json:"files,omitempty"`
}

// InputInfo is a declared input as it enters the signature: its type and
// buckets are hashed, its exact size is a feature for the predictor.
type InputInfo struct {
	Type        string `json:"type"`
	Bucket      int    `json:"bucket"` // ceil(log2(Bytes)); 0 for 0 or 1 byte
	Bytes       int64  `json:"bytes"`
	Files       int64  `json:"files,omitempty"`
	FilesBucket int    `json:"filesBucket,omitempty"`
}

// Signature is one container's signature.
type Signature struct {
	Hash string `json:"hash"` // SHA-256 hex of everything below
	Code string `json:"code"` // SHA-256 hex of image and command alone
	// Image is the image as hashed: its digest when the reference pins
	// one, else the normalised reference (docker.io/library/busybox:latest).
	Image      string      `json:"image"`
	Command    []string    `json:"command,omitempty"`
	Args       []string    `json:"args,omitempty"`
	Inputs     []InputInfo `json:"inputs,omitempty"`
	InputBytes int64       `json:"inputBytes,omitempty"`
	EnvKeys    []string    `json:"envKeys,omitempty"` // names only: values may be secrets
	Owner      string      `json:"owner"`             // Job, CronJob, Pod, ReplicaSet …
}

// Features returns what the predictor is asked about.
func (s Signature) Features() core.Features {
	f := core.Features{Signature: s.Hash, Code: s.Code, InputBytes: float64(s.InputBytes)}
	if len(s.Inputs) > 0 {
		f.InputType = s.Inputs[0].Type
	}
	return f
}

// Config configures a Signer.
type Config struct {
	// EnvAllow lists the variable names (path.Match patterns) that may enter
	// a signature; empty means every name.
	EnvAllow []string
	// EnvDeny lists the names left out; deny wins over allow. nil means
	// core.DefaultEnvDeny(); an empty non-nil slice denies nothing.
	EnvDeny []string
	// EnvDenyExtra is added to EnvDeny (or to its default): a cluster's
	// own per-run variables.
	EnvDenyExtra []string
}

func (c *Config) validate() error {
	if c.EnvDeny == nil {
		c.EnvDeny = core.DefaultEnvDeny()
	}
	c.EnvDeny = slices.Concat(c.EnvDeny, c.EnvDenyExtra)
	for _, p := range slices.Concat(c.EnvAllow, c.EnvDeny) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("env pattern %q: %w", p, ErrConfig)
		}
	}
	return nil
}

// Signer computes pod signatures. Immutable after NewSigner: safe for
// concurrent use.
type Signer struct {
	allow, deny []string
}

// NewSigner returns a Signer for cfg.
func NewSigner(cfg Config) (*Signer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Signer{allow: slices.Clone(cfg.EnvAllow), deny: slices.Clone(cfg.EnvDeny)}, nil
}

// OwnerKind is the kind of the pod's controller ("Job", "ReplicaSet" …) or
// "Pod" for a pod nobody controls. Resolving a Job to its CronJob needs the
// API server; see the webhook's owner resolver.
func OwnerKind(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return o.Kind
		}
	}
	return "Pod"
}

// Sign returns the signature of the named container of pod (a regular
// container: init containers are not signed), with owner as the owner
// kind (OwnerKind, or the resolved one).
func (s *Signer) Sign(pod *corev1.Pod, container, owner string) (Signature, error) {
	i := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == container })
	if i < 0 {
		return Signature{}, fmt.Errorf("container %q: %w", container, ErrContainer)
	}
	c := &pod.Spec.Containers[i]
	inputs, err := ParseInputs(pod.Annotations[AnnotationInputs])
	if err != nil {
		return Signature{}, err
	}
	deny, err := parseDeny(pod.Annotations[AnnotationEnvDeny])
	if err != nil {
		return Signature{}, err
	}
	sig := Signature{Image: NormalizeImage(c.Image), Command: c.Command, Args: c.Args, Owner: owner}
	for _, in := range inputs {
		if in.Container != "" && in.Container != container {
			continue
		}
		n, _ := parseSize(in.Size) // checked by ParseInputs
		info := InputInfo{Type: in.Type, Bucket: sizeBucket(n), Bytes: n, Files: in.Files}
		if in.Files > 0 {
			info.FilesBucket = sizeBucket(in.Files)
		}
		sig.Inputs = append(sig.Inputs, info)
		sig.InputBytes += n
	}
	env := s.env(c, slices.Concat(s.deny, deny))
	for _, p := range env {
		sig.EnvKeys = append(sig.EnvKeys, p.name)
	}

	code := codeDigest(sig.Image, c.Command)
	sig.Code = hex.EncodeToString(code[:])
	h := signatureDigest(code, c.Args, sig.Inputs, env, envFromOf(c), owner)
	sig.Hash = hex.EncodeToString(h[:])
	return sig, nil
}

// ParseInputs reads an AnnotationInputs value; empty means no inputs.
func ParseInputs(v string) ([]Input, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var ins []Input
	if err := json.Unmarshal([]byte(v), &ins); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", AnnotationInputs, ErrAnnotation, err)
	}
	if len(ins) > maxInputs {
		return nil, fmt.Errorf("%s: %d inputs, at most %d: %w", AnnotationInputs, len(ins), maxInputs, ErrAnnotation)
	}
	for i, in := range ins {
		if !validType(in.Type) {
			return nil, fmt.Errorf("%s: input %d: type %q: %w", AnnotationInputs, i, in.Type, ErrAnnotation)
		}
		if _, err := parseSize(in.Size); err != nil {
			return nil, fmt.Errorf("%s: input %d: %w: %w", AnnotationInputs, i, ErrAnnotation, err)
		}
		if in.Files < 0 {
			return nil, fmt.Errorf("%s: input %d: files %d: %w", AnnotationInputs, i, in.Files, ErrAnnotation)
		}
	}
	return ins, nil
}

func parseSize(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	n, ok := q.AsInt64()
	if !ok || n < 0 {
		return 0, fmt.Errorf("size %q: not a whole number of bytes", s)
	}
	return n, nil
}

func validType(t string) bool {
	if t == "" || len(t) > maxTypeLen {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(":+._-", r)) {
			return false
		}
	}
	return true
}

func parseDeny(v string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%s: pattern %q: %w", AnnotationEnvDeny, p, ErrAnnotation)
		}
		out = append(out, p)
	}
	if len(out) > maxDenyEntries {
		return nil, fmt.Errorf("%s: %d patterns, at most %d: %w", AnnotationEnvDeny, len(out), maxDenyEntries, ErrAnnotation)
	}
	return out, nil
}

// sizeBucket is ceil(log2(n)): bucket B holds (2^(B-1), 2^B]; 0 and 1 are
// bucket 0 (the same buckets as a task's inputs).
func sizeBucket(n int64) int {
	if n <= 1 {
		return 0
	}
	return bits.Len64(uint64(n - 1))
}

// envVar is one variable as it enters the signature.
type envVar struct {
	name  string
	ref   bool   // valueFrom: the reference is hashed, not the value
	value string // the value, or the reference ("secretKeyRef:name/key")
}

const (
	tagValue = 0
	tagRef   = 1
)

// env returns c's variables that pass the allow and deny lists, the last
// definition of a name winning (as the kubelet does), sorted by name.
func (s *Signer) env(c *corev1.Container, deny []string) []envVar {
	last := map[string]envVar{}
	for _, e := range c.Env {
		v := envVar{name: e.Name, value: e.Value}
		if e.ValueFrom != nil {
			v.ref, v.value = true, refOf(e.ValueFrom)
		}
		last[e.Name] = v
	}
	out := make([]envVar, 0, len(last))
	for name, v := range last {
		if matchAny(deny, name) || len(s.allow) > 0 && !matchAny(s.allow, name) {
			continue
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b envVar) int { return strings.Compare(a.name, b.name) })
	return out
}

func matchAny(pats []string, name string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// refOf describes where a variable's value comes from: the value itself is
// not known at admission (and may be a secret).
func refOf(f *corev1.EnvVarSource) string {
	switch {
	case f.FieldRef != nil:
		return "fieldRef:" + f.FieldRef.FieldPath
	case f.ResourceFieldRef != nil:
		return "resourceFieldRef:" + f.ResourceFieldRef.ContainerName + "/" + f.ResourceFieldRef.Resource + "/" + f.ResourceFieldRef.Divisor.String()
	case f.ConfigMapKeyRef != nil:
		return "configMapKeyRef:" + f.ConfigMapKeyRef.Name + "/" + f.ConfigMapKeyRef.Key
	case f.SecretKeyRef != nil:
		return "secretKeyRef:" + f.SecretKeyRef.Name + "/" + f.SecretKeyRef.Key
	case f.FileKeyRef != nil:
		return "fileKeyRef:" + f.FileKeyRef.VolumeName + "/" + f.FileKeyRef.Path + "/" + f.FileKeyRef.Key
	}
	return "unknown"
}

// envFrom is one envFrom source: its variables are unknown at admission,
// so the source is hashed.
type envFrom struct{ kind, name, prefix string }

func envFromOf(c *corev1.Container) []envFrom {
	var out []envFrom
	for _, f := range c.EnvFrom {
		switch {
		case f.ConfigMapRef != nil:
			out = append(out, envFrom{"configMap", f.ConfigMapRef.Name, f.Prefix})
		case f.SecretRef != nil:
			out = append(out, envFrom{"secret", f.SecretRef.Name, f.Prefix})
		}
	}
	return out
}

// NormalizeImage returns the image as it enters the signature: the digest
// when the reference pins one ("sha256:…", whatever the name), else the
// reference with the registry, "library/" and the "latest" tag filled in
// as the container runtime does ("busybox" → docker.io/library/busybox:latest).
func NormalizeImage(ref string) string {
	ref = strings.TrimSpace(ref)
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		return digest
	}
	name, tag := ref, "latest"
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	domain, rest, ok := strings.Cut(name, "/")
	if !ok || !strings.ContainsAny(domain, ".:") && domain != "localhost" {
		domain, rest = "docker.io", name
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	return domain + "/" + rest + ":" + tag
}

// encoder writes the canonical encoding of docs/signature.md into a hash:
// u64 big-endian, strings length-prefixed, lists count-prefixed.
type encoder struct {
	h   hash.Hash
	buf [8]byte
}

func newEncoder() *encoder { return &encoder{h: sha256.New()} }

func (e *encoder) u64(v uint64) {
	binary.BigEndian.PutUint64(e.buf[:], v)
	e.h.Write(e.buf[:])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.h.Write([]byte(s))
}

func (e *encoder) strs(ss []string) {
	e.u64(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) sum() (d [sha256.Size]byte) {
	e.h.Sum(d[:0])
	return d
}

// codeDigest is the code part:
//
//	str("prescient-pod-code/v1") str(image) list of str(command)
func codeDigest(image string, command []string) [sha256.Size]byte {
	e := newEncoder()
	e.str(codeVersion)
	e.str(image)
	e.strs(command)
	return e.sum()
}

// signatureDigest is the signature:
//
//	str("prescient-pod-signature/v1")
//	str(code digest, 32 bytes)
//	list of str(arg)
//	list of inputs:  str(type) u64(size bucket) u64(file-count bucket)
//	list of env:     str(name) u64(tag) str(value or reference), sorted by name
//	list of envFrom: str(kind) str(name) str(prefix), in order
//	str(owner kind)
func signatureDigest(code [sha256.Size]byte, args []string, inputs []InputInfo, env []envVar, from []envFrom, owner string) [sha256.Size]byte {
	e := newEncoder()
	e.str(signatureVersion)
	e.str(string(code[:]))
	e.strs(args)
	e.u64(uint64(len(inputs)))
	for _, in := range inputs {
		e.str(in.Type)
		e.u64(uint64(in.Bucket))
		e.u64(uint64(in.FilesBucket))
	}
	e.u64(uint64(len(env)))
	for _, v := range env {
		e.str(v.name)
		if v.ref {
			e.u64(tagRef)
		} else {
			e.u64(tagValue)
		}
		e.str(v.value)
	}
	e.u64(uint64(len(from)))
	for _, f := range from {
		e.str(f.kind)
		e.str(f.name)
		e.str(f.prefix)
	}
	e.str(owner)
	return e.sum()
}
