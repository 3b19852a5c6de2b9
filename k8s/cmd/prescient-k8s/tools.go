package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/prescient-sched/prescient/k8s/internal/certs"
	"github.com/prescient-sched/prescient/k8s/internal/ociimage"
	"github.com/prescient-sched/prescient/k8s/internal/podsig"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// runCerts:
//
//	certs ca     --out BASE --cn NAME
//	certs issue  --ca BASE --out BASE --cn CN [--org O]... [--dns D]... [--ip IP]... [--server] [--client]
//	certs pubkey --in BASE --out FILE
func runCerts(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("certs ca|issue|pubkey: %w", errUsage)
	}
	fs := flag.NewFlagSet("certs "+args[0], flag.ContinueOnError)
	out := fs.String("out", "", "output: BASE.crt and BASE.key (pubkey: the file)")
	cn := fs.String("cn", "", "common name")
	caBase := fs.String("ca", "", "CA to sign with (BASE.crt, BASE.key)")
	in := fs.String("in", "", "pair whose public key to export (BASE)")
	validity := fs.Duration("validity", 365*24*time.Hour, "validity")
	server := fs.Bool("server", false, "server certificate")
	client := fs.Bool("client", false, "client certificate")
	var orgs, dns, ips list
	fs.Var(&orgs, "org", "organisation (repeatable; Kubernetes groups)")
	fs.Var(&dns, "dns", "DNS subject alternative name (repeatable)")
	fs.Var(&ips, "ip", "IP subject alternative name (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	switch args[0] {
	case "ca":
		if *out == "" || *cn == "" {
			return fmt.Errorf("ca needs --out and --cn: %w", errUsage)
		}
		ca, err := certs.NewCA(*cn, *validity)
		if err != nil {
			return err
		}
		return ca.Write(*out)
	case "issue":
		if *out == "" || *caBase == "" {
			return fmt.Errorf("issue needs --ca and --out: %w", errUsage)
		}
		ca, err := certs.Load(*caBase)
		if err != nil {
			return err
		}
		req := certs.Request{CommonName: *cn, Organizations: orgs, DNSNames: dns, Server: *server, Client: *client, Validity: *validity}
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil {
				return fmt.Errorf("--ip %q: not an IP: %w", s, errUsage)
			}
			req.IPs = append(req.IPs, ip)
		}
		p, err := ca.Issue(req)
		if err != nil {
			return err
		}
		return p.Write(*out)
	case "pubkey":
		if *in == "" || *out == "" {
			return fmt.Errorf("pubkey needs --in and --out: %w", errUsage)
		}
		p, err := certs.Load(*in)
		if err != nil {
			return err
		}
		b, err := p.PublicKeyPEM()
		if err != nil {
			return err
		}
		return os.WriteFile(*out, b, 0o644)
	}
	return fmt.Errorf("certs %q: %w", args[0], errUsage)
}

// runMkimage writes an image: a busybox layer (the binary and a link per
// applet, /etc/passwd, /tmp) when --busybox is given, and one layer with
// the --add files.
func runMkimage(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	name := fs.String("name", "", "full reference, e.g. docker.io/local/busybox:1")
	out := fs.String("out", "", "output tarball")
	busybox := fs.String("busybox", "", "a static busybox binary for the base layer")
	entrypoint := fs.String("entrypoint", "", "entrypoint as a JSON array")
	cmd := fs.String("cmd", "", "command as a JSON array")
	var adds, envs list
	fs.Var(&adds, "add", "SRC:DST file added (mode 0755) in a second layer (repeatable)")
	fs.Var(&envs, "env", "KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *name == "" || *out == "" {
		return fmt.Errorf("--name and --out are required: %w", errUsage)
	}
	img := ociimage.Image{Name: *name, Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, envs...)}
	for _, p := range []struct {
		s   string
		dst *[]string
	}{{*entrypoint, &img.Entrypoint}, {*cmd, &img.Cmd}} {
		if p.s != "" {
			if err := json.Unmarshal([]byte(p.s), p.dst); err != nil {
				return fmt.Errorf("entrypoint/cmd %q: want a JSON array: %w", p.s, errUsage)
			}
		}
	}
	if *busybox != "" {
		layer, err := busyboxLayer(*busybox)
		if err != nil {
			return err
		}
		img.Layers = append(img.Layers, layer)
	}
	var layer []ociimage.File
	for _, a := range adds {
		src, dst, ok := strings.Cut(a, ":")
		if !ok {
			return fmt.Errorf("--add %q: want SRC:DST: %w", a, errUsage)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		layer = append(layer, ociimage.File{Path: dst, Mode: 0o755, Data: b})
	}
	if len(layer) > 0 {
		img.Layers = append(img.Layers, layer)
	}
	var buf bytes.Buffer
	digest, err := ociimage.Write(&buf, img)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

func busyboxLayer(bin string) ([]ociimage.File, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	list, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	files := []ociimage.File{
		{Path: "bin/busybox", Mode: 0o755, Data: b},
		{Path: "tmp", Dir: true, Mode: 0o1777},
		{Path: "root", Dir: true, Mode: 0o700},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "bin/busybox" {
			continue
		}
		rel, err := filepath.Rel(filepath.Dir(applet), "bin/busybox")
		if err != nil {
			return nil, err
		}
		files = append(files, ociimage.File{Path: applet, Mode: 0o777, Link: rel})
	}
	return files, nil
}

// runSign prints the signature of each container of a pod given as JSON or
// YAML (a Pod, or any object with a pod template is not read: give the pod).
func runSign(args []string) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	file := fs.String("f", "", "pod manifest (JSON or YAML); - for stdin")
	owner := fs.String("owner", "", "owner kind to sign with (default: the pod's controller kind, or Pod)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var b []byte
	var err error
	if *file == "-" {
		b, err = readAll(os.Stdin)
	} else if *file != "" {
		b, err = os.ReadFile(*file)
	} else {
		return fmt.Errorf("-f is required: %w", errUsage)
	}
	if err != nil {
		return err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(b, &pod); err != nil {
		return fmt.Errorf("decode pod: %w", err)
	}
	s, err := podsig.NewSigner(podsig.Config{})
	if err != nil {
		return err
	}
	kind := *owner
	if kind == "" {
		kind = podsig.OwnerKind(&pod)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	for _, c := range pod.Spec.Containers {
		sig, err := s.Sign(&pod, c.Name, kind)
		if err != nil {
			return err
		}
		if err := enc.Encode(map[string]any{"container": c.Name, "signature": sig}); err != nil {
			return err
		}
	}
	return nil
}

func readAll(f *os.File) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
}
