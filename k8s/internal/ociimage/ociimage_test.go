package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestWriteIsDeterministicAndConsistent(t *testing.T) {
	img := Image{
		Name: "docker.io/local/busybox:1",
		Layers: [][]File{{
			{Path: "bin/busybox", Mode: 0o755, Data: []byte("\x7fELF...")},
			{Path: "bin/sh", Link: "busybox", Mode: 0o777},
			{Path: "tmp", Dir: true, Mode: 0o1777},
		}},
		Cmd: []string{"sh"},
	}
	var a, b bytes.Buffer
	da, err := Write(&a, img)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Write(&b, img)
	if err != nil {
		t.Fatal(err)
	}
	if da != db || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of one image differ")
	}
	// Every blob is stored under its own digest; the index names the image
	// and points at the manifest whose digest Write returned.
	files := map[string][]byte{}
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
	for name, data := range files {
		if hexd, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && hexd != "" {
			s := sha256.Sum256(data)
			if hex.EncodeToString(s[:]) != hexd {
				t.Errorf("blob %s has digest %x", name, s)
			}
		}
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != da || index.Manifests[0].Annotations["io.containerd.image.name"] != img.Name {
		t.Errorf("index %+v, manifest %s", index, da)
	}
	if _, ok := files["blobs/sha256/"+strings.TrimPrefix(da, "sha256:")]; !ok {
		t.Error("manifest blob missing")
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %q", files["oci-layout"])
	}
}

func TestWriteRejects(t *testing.T) {
	for _, img := range []Image{
		{Name: "busybox"},
		{Name: "docker.io/local/busybox"},
		{Name: "docker.io/local/busybox:1", Layers: [][]File{{{Path: "../etc/passwd"}}}},
	} {
		if _, err := Write(io.Discard, img); !errors.Is(err, ErrImage) {
			t.Errorf("%+v: err %v, want ErrImage", img, err)
		}
	}
}
