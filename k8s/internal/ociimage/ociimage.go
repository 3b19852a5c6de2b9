// Package ociimage writes container images as OCI image-layout tarballs,
// the format `ctr images import` reads, so that the local cluster's images
// are made on the machine from files it has (Debian's busybox-static, the
// project's binaries) with no registry. The output is deterministic: the
// same files give the same digests, so a rebuilt image keeps its id.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ErrImage reports an image that cannot be written.
var ErrImage = errors.New("ociimage: bad image")

// epoch is the modification time of every file in every layer.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a layer: a directory, a symlink or a regular file.
type File struct {
	Path string // inside the image, relative ("bin/busybox")
	Mode int64  // permission bits
	Dir  bool
	Link string // symlink target; a symlink when set
	Data []byte // a regular file's contents
}

// Image is what Write writes.
type Image struct {
	// Name is the full reference containerd records ("docker.io/local/busybox:1").
	Name       string
	Layers     [][]File
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Write writes img as an OCI image-layout tarball to w and returns the
// manifest's digest.
func Write(w io.Writer, img Image) (string, error) {
	name, tag, ok := strings.Cut(img.Name[strings.LastIndexByte(img.Name, '/')+1:], ":")
	if img.Name == "" || !ok || name == "" || tag == "" || !strings.Contains(img.Name, "/") {
		return "", fmt.Errorf("name %q: want registry/repository:tag: %w", img.Name, ErrImage)
	}
	var blobs []blob
	var layers []descriptor
	var diffIDs []string
	for i, files := range img.Layers {
		b, err := layerTar(files)
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i, err)
		}
		bl := newBlob(b)
		blobs = append(blobs, bl)
		layers = append(layers, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: bl.digest, Size: int64(len(b))})
		diffIDs = append(diffIDs, bl.digest)
	}
	cfg := map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      epoch.Format(time.RFC3339),
		"config": map[string]any{
			"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": img.Env, "WorkingDir": img.WorkingDir,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	cbl := newBlob(cb)
	blobs = append(blobs, cbl)
	man := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cbl.digest, Size: int64(len(cb))},
		"layers":        layers,
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	mbl := newBlob(mb)
	blobs = append(blobs, mbl)
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: mbl.digest, Size: int64(len(mb)),
			Platform: &platform{Architecture: runtime.GOARCH, OS: "linux"},
			Annotations: map[string]string{
				"io.containerd.image.name":          img.Name,
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	}
	ib, err := json.Marshal(index)
	if err != nil {
		return "", fmt.Errorf("index: %w", err)
	}

	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return "", fmt.Errorf("write: %w", err)
		}
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	if err := add("index.json", ib); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	seen := map[string]bool{}
	for _, b := range blobs {
		if seen[b.digest] {
			continue
		}
		seen[b.digest] = true
		if err := add("blobs/sha256/"+strings.TrimPrefix(b.digest, "sha256:"), b.data); err != nil {
			return "", fmt.Errorf("write: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	return mbl.digest, nil
}

type blob struct {
	digest string
	data   []byte
}

func newBlob(b []byte) blob {
	s := sha256.Sum256(b)
	return blob{digest: "sha256:" + hex.EncodeToString(s[:]), data: b}
}

// layerTar writes files, sorted by path, with their parent directories.
func layerTar(files []File) ([]byte, error) {
	byPath := map[string]File{}
	for _, f := range files {
		p := path.Clean(strings.TrimPrefix(f.Path, "/"))
		if p == "." || strings.HasPrefix(p, "../") || p == ".." {
			return nil, fmt.Errorf("path %q: %w", f.Path, ErrImage)
		}
		f.Path = p
		byPath[p] = f
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = File{Path: d, Dir: true, Mode: 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := byPath[p]
		h := &tar.Header{Name: p, Mode: f.Mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
