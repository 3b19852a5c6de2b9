package podsig

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the generated examples in docs/kubernetes.md")

const kubernetesDoc = "../../../docs/kubernetes.md"

func pod(c corev1.Container, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: ann}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

func sign(t *testing.T, s *Signer, p *corev1.Pod, owner string) Signature {
	t.Helper()
	sig, err := s.Sign(p, p.Spec.Containers[0].Name, owner)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func base() corev1.Container {
	return corev1.Container{Name: "c", Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"work"},
		Env: []corev1.EnvVar{{Name: "LANG", Value: "C"}}}
}

// Each pair must sign differently (or equally, when same is set): the
// encoding is injective and the rules keep or drop what they say.
func TestSignatureEquality(t *testing.T) {
	s, err := NewSigner(Config{})
	if err != nil {
		t.Fatal(err)
	}
	type variant struct {
		c     func(*corev1.Container)
		ann   map[string]string
		owner string
	}
	tests := []struct {
		name     string
		a, b     variant
		same     bool
		sameCode bool
	}{
		{name: "args split differently", a: variant{c: func(c *corev1.Container) { c.Args = []string{"ab", "c"} }}, b: variant{c: func(c *corev1.Container) { c.Args = []string{"a", "bc"} }}, sameCode: true},
		{name: "empty arg vs no arg", a: variant{c: func(c *corev1.Container) { c.Args = []string{""} }}, b: variant{c: func(c *corev1.Container) { c.Args = nil }}, sameCode: true},
		{name: "command vs args boundary", a: variant{c: func(c *corev1.Container) { c.Command, c.Args = []string{"sh"}, []string{"-c", "x"} }}, b: variant{c: func(c *corev1.Container) { c.Command, c.Args = []string{"sh", "-c"}, []string{"x"} }}},
		{name: "value vs reference of the same text", a: variant{c: func(c *corev1.Container) { c.Env = []corev1.EnvVar{{Name: "K", Value: "secretKeyRef:s/k"}} }}, b: variant{c: func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}}}
		}}, sameCode: true},
		{name: "env order does not matter", a: variant{c: func(c *corev1.Container) { c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}} }}, b: variant{c: func(c *corev1.Container) { c.Env = []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}} }}, same: true, sameCode: true},
		{name: "last definition wins", a: variant{c: func(c *corev1.Container) { c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}} }}, b: variant{c: func(c *corev1.Container) { c.Env = []corev1.EnvVar{{Name: "A", Value: "2"}} }}, same: true, sameCode: true},
		{name: "default deny drops TERM", a: variant{c: func(c *corev1.Container) { c.Env = append(c.Env, corev1.EnvVar{Name: "TERM", Value: "xterm"}) }}, b: variant{}, same: true, sameCode: true},
		{name: "annotation denies a run id", a: variant{c: func(c *corev1.Container) { c.Env = append(c.Env, corev1.EnvVar{Name: "RUN_ID", Value: "1"}) }, ann: map[string]string{AnnotationEnvDeny: "RUN_*"}}, b: variant{c: func(c *corev1.Container) { c.Env = append(c.Env, corev1.EnvVar{Name: "RUN_ID", Value: "2"}) }, ann: map[string]string{AnnotationEnvDeny: " RUN_* ,"}}, same: true, sameCode: true},
		{name: "run id kept without the annotation", a: variant{c: func(c *corev1.Container) { c.Env = append(c.Env, corev1.EnvVar{Name: "RUN_ID", Value: "1"}) }}, b: variant{c: func(c *corev1.Container) { c.Env = append(c.Env, corev1.EnvVar{Name: "RUN_ID", Value: "2"}) }}, sameCode: true},
		{name: "owner kind", a: variant{owner: "Job"}, b: variant{owner: "CronJob"}, sameCode: true},
		{name: "same size bucket", a: variant{ann: map[string]string{AnnotationInputs: `[{"type":"csv","size":"600Mi"}]`}}, b: variant{ann: map[string]string{AnnotationInputs: `[{"type":"csv","size":"1Gi"}]`}}, same: true, sameCode: true},
		{name: "next size bucket", a: variant{ann: map[string]string{AnnotationInputs: `[{"type":"csv","size":"1Gi"}]`}}, b: variant{ann: map[string]string{AnnotationInputs: `[{"type":"csv","size":"1025Mi"}]`}}, sameCode: true},
		{name: "input type", a: variant{ann: map[string]string{AnnotationInputs: `[{"type":"csv","size":"1Gi"}]`}}, b: variant{ann: map[string]string{AnnotationInputs: `[{"type":"parquet","size":"1Gi"}]`}}, sameCode: true},
		{name: "files bucket", a: variant{ann: map[string]string{AnnotationInputs: `[{"type":"dir:csv","size":"1Gi","files":3}]`}}, b: variant{ann: map[string]string{AnnotationInputs: `[{"type":"dir:csv","size":"1Gi","files":4}]`}}, same: true, sameCode: true},
		{name: "files bucket differs", a: variant{ann: map[string]string{AnnotationInputs: `[{"type":"dir:csv","size":"1Gi","files":4}]`}}, b: variant{ann: map[string]string{AnnotationInputs: `[{"type":"dir:csv","size":"1Gi","files":5}]`}}, sameCode: true},
		{name: "input for another container", a: variant{ann: map[string]string{AnnotationInputs: `[{"container":"other","type":"csv","size":"1Gi"}]`}}, b: variant{}, same: true, sameCode: true},
		{name: "tag latest is implied", a: variant{c: func(c *corev1.Container) { c.Image = "busybox" }}, b: variant{c: func(c *corev1.Container) { c.Image = "docker.io/library/busybox:latest" }}, same: true, sameCode: true},
		{name: "another tag", a: variant{c: func(c *corev1.Container) { c.Image = "busybox:1" }}, b: variant{c: func(c *corev1.Container) { c.Image = "busybox:2" }}},
		{name: "digest under two names", a: variant{c: func(c *corev1.Container) { c.Image = "a.io/x:1@sha256:00ff" }}, b: variant{c: func(c *corev1.Container) { c.Image = "b.io/y@sha256:00ff" }}, same: true, sameCode: true},
		{name: "envFrom source", a: variant{c: func(c *corev1.Container) {
			c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a"}}}}
		}}, b: variant{c: func(c *corev1.Container) {
			c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "a"}}}}
		}}, sameCode: true},
		{name: "working dir and name are left out", a: variant{c: func(c *corev1.Container) { c.WorkingDir = "/tmp/run-1" }}, b: variant{c: func(c *corev1.Container) { c.WorkingDir = "/tmp/run-2" }}, same: true, sameCode: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := func(v variant) Signature {
				c := base()
				if v.c != nil {
					v.c(&c)
				}
				owner := v.owner
				if owner == "" {
					owner = "Pod"
				}
				return sign(t, s, pod(c, v.ann), owner)
			}
			a, b := mk(tt.a), mk(tt.b)
			if (a.Hash == b.Hash) != tt.same {
				t.Errorf("hash equal %v, want %v", a.Hash == b.Hash, tt.same)
			}
			if (a.Code == b.Code) != tt.sameCode {
				t.Errorf("code equal %v, want %v", a.Code == b.Code, tt.sameCode)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	s, err := NewSigner(Config{EnvAllow: []string{"OMP_*"}})
	if err != nil {
		t.Fatal(err)
	}
	c := base()
	c.Env = []corev1.EnvVar{{Name: "OMP_NUM_THREADS", Value: "2"}, {Name: "LANG", Value: "C"}}
	sig := sign(t, s, pod(c, nil), "Pod")
	if strings.Join(sig.EnvKeys, ",") != "OMP_NUM_THREADS" {
		t.Errorf("env keys %v, want OMP_NUM_THREADS", sig.EnvKeys)
	}
	s2, _ := NewSigner(Config{EnvAllow: []string{"OMP_*"}, EnvDenyExtra: []string{"OMP_NUM_THREADS"}})
	if keys := sign(t, s2, pod(c, nil), "Pod").EnvKeys; len(keys) != 0 {
		t.Errorf("deny should win over allow, got %v", keys)
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"ana/tool:v1", "docker.io/ana/tool:v1"},
		{"docker.io/local/busybox:1", "docker.io/local/busybox:1"},
		{"localhost/x", "localhost/x:latest"},
		{"localhost:5000/x:2", "localhost:5000/x:2"},
		{"registry.example.com:443/a/b/c", "registry.example.com:443/a/b/c:latest"},
		{"registry.example.com/a:1@sha256:abcd", "sha256:abcd"},
		{" busybox ", "docker.io/library/busybox:latest"},
	}
	for _, tt := range tests {
		if got := NormalizeImage(tt.in); got != tt.want {
			t.Errorf("NormalizeImage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSignErrors(t *testing.T) {
	s, _ := NewSigner(Config{})
	tests := []struct {
		name      string
		ann       map[string]string
		container string
		want      error
	}{
		{"no such container", nil, "nope", ErrContainer},
		{"inputs not JSON", map[string]string{AnnotationInputs: "csv:1Gi"}, "c", ErrAnnotation},
		{"input without type", map[string]string{AnnotationInputs: `[{"size":"1Gi"}]`}, "c", ErrAnnotation},
		{"input type with spaces", map[string]string{AnnotationInputs: `[{"type":"a b","size":"1Gi"}]`}, "c", ErrAnnotation},
		{"input size not a quantity", map[string]string{AnnotationInputs: `[{"type":"csv","size":"big"}]`}, "c", ErrAnnotation},
		{"fractional size", map[string]string{AnnotationInputs: `[{"type":"csv","size":"0.5"}]`}, "c", ErrAnnotation},
		{"negative size", map[string]string{AnnotationInputs: `[{"type":"csv","size":"-1"}]`}, "c", ErrAnnotation},
		{"negative files", map[string]string{AnnotationInputs: `[{"type":"csv","size":"1","files":-1}]`}, "c", ErrAnnotation},
		{"too many inputs", map[string]string{AnnotationInputs: "[" + strings.Repeat(`{"type":"csv","size":"1"},`, maxInputs) + `{"type":"csv","size":"1"}]`}, "c", ErrAnnotation},
		{"bad deny pattern", map[string]string{AnnotationEnvDeny: "A[,B"}, "c", ErrAnnotation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Sign(pod(base(), tt.ann), tt.container, "Pod")
			if !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewSigner(Config{EnvDeny: []string{"["}}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad config pattern: err %v, want ErrConfig", err)
	}
}

func TestOwnerKind(t *testing.T) {
	yes, no := true, false
	p := &corev1.Pod{}
	if k := OwnerKind(p); k != "Pod" {
		t.Errorf("no owner: %q", k)
	}
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "Node", Controller: &no}, {Kind: "Job", Controller: &yes}}
	if k := OwnerKind(p); k != "Job" {
		t.Errorf("controller Job: %q", k)
	}
}

func FuzzParseInputs(f *testing.F) {
	f.Add(`[{"type":"csv","size":"600Mi"}]`)
	f.Add(`[{"container":"a","type":"dir:parquet","size":"1e9","files":12}]`)
	f.Add(`[{"type":"csv","size":"9223372036854775807"}]`)
	f.Fuzz(func(t *testing.T, v string) {
		ins, err := ParseInputs(v)
		if err != nil {
			return
		}
		for _, in := range ins {
			n, err := parseSize(in.Size)
			if err != nil || n < 0 || sizeBucket(n) > 63 || !validType(in.Type) {
				t.Fatalf("accepted %+v (size %d, err %v)", in, n, err)
			}
		}
	})
}

// docExamples are the worked examples of docs/kubernetes.md: pods in
// testdata/examples, signed with the default Config and the owner kind
// given here (the webhook resolves a Job to its CronJob).
var docExamples = []struct{ name, owner string }{
	{"job", "Job"},
	{"next-day", "Job"},
	{"month", "Job"},
	{"cronjob", "CronJob"},
	{"digest", "Pod"},
}

// TestDocExamples keeps the generated blocks of docs/kubernetes.md true and
// checks what the document says about them. Regenerate with
//
//	go test ./internal/podsig -run TestDocExamples -update
func TestDocExamples(t *testing.T) {
	s, err := NewSigner(Config{})
	if err != nil {
		t.Fatal(err)
	}
	sigs := map[string]Signature{}
	blocks := map[string]string{}
	for _, ex := range docExamples {
		b, err := os.ReadFile(filepath.Join("testdata/examples", ex.name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var p corev1.Pod
		if err := yaml.UnmarshalStrict(b, &p); err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		if OwnerKind(&p) != ex.owner && ex.owner != "CronJob" {
			t.Fatalf("%s: owner kind %q, example says %q", ex.name, OwnerKind(&p), ex.owner)
		}
		sig := sign(t, s, &p, ex.owner)
		sigs[ex.name] = sig
		blocks[ex.name] = renderExample(&p, sig)
	}
	// What the document claims.
	if sigs["job"].Hash != sigs["next-day"].Hash {
		t.Error("job and next-day should share a signature")
	}
	if sigs["job"].Hash == sigs["month"].Hash || sigs["job"].Code != sigs["month"].Code {
		t.Error("month should differ from job in Hash only")
	}
	if sigs["job"].Hash == sigs["cronjob"].Hash || sigs["job"].Code != sigs["cronjob"].Code {
		t.Error("cronjob should differ from job in Hash only")
	}

	doc, err := os.ReadFile(kubernetesDoc)
	if err != nil {
		t.Fatal(err)
	}
	out := string(doc)
	for _, ex := range docExamples {
		re := regexp.MustCompile("(?s)(<!-- podsig-example " + regexp.QuoteMeta(ex.name) + " -->\n```text\n)(.*?)(```\n<!-- /podsig-example -->)")
		m := re.FindStringSubmatchIndex(out)
		if m == nil {
			t.Errorf("docs/kubernetes.md has no block for example %q", ex.name)
			continue
		}
		if got := out[m[4]:m[5]]; got != blocks[ex.name] {
			if !*update {
				t.Errorf("example %q is stale (go test ./internal/podsig -run TestDocExamples -update):\n got:\n%s\nwant:\n%s", ex.name, got, blocks[ex.name])
			}
			out = out[:m[4]] + blocks[ex.name] + out[m[5]:]
		}
	}
	if *update && out != string(doc) {
		if err := os.WriteFile(kubernetesDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func renderExample(p *corev1.Pod, sig Signature) string {
	c := p.Spec.Containers[0]
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-12s %s\n", k, v) }
	row("image", c.Image)
	row("command", quoteAll(c.Command))
	row("args", quoteAll(c.Args))
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env = append(env, e.Name+"=<"+refOf(e.ValueFrom)+">")
		} else {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	row("env", strings.Join(env, " "))
	if a := p.Annotations[AnnotationInputs]; a != "" {
		row("inputs ann.", a)
	}
	if a := p.Annotations[AnnotationEnvDeny]; a != "" {
		row("env-deny", a)
	}
	b.WriteString("\n")
	row("Image", sig.Image)
	var ins []string
	for _, in := range sig.Inputs {
		s := fmt.Sprintf("%s, 2^%d (%d bytes)", in.Type, in.Bucket, in.Bytes)
		if in.Files > 0 {
			s += fmt.Sprintf(", %d files (2^%d)", in.Files, in.FilesBucket)
		}
		ins = append(ins, s)
	}
	if len(ins) == 0 {
		ins = []string{"(none)"}
	}
	row("Inputs", strings.Join(ins, "; "))
	keys := strings.Join(sig.EnvKeys, " ")
	if keys == "" {
		keys = "(none)"
	}
	row("EnvKeys", keys)
	row("Owner", sig.Owner)
	row("Code", sig.Code)
	row("Hash", sig.Hash)
	return b.String()
}

func quoteAll(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		if s == "" || strings.ContainsAny(s, " \t\"'|") {
			out[i] = fmt.Sprintf("%q", s)
		} else {
			out[i] = s
		}
	}
	return strings.Join(out, " ")
}
