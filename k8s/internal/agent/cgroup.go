package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prescient-sched/prescient/internal/profile"
)

// ErrNoCgroup reports that a pod's cgroup is not (or no longer) there.
var ErrNoCgroup = errors.New("agent: no cgroup")

// v1Controllers are the cgroup v1 hierarchies a container is sampled from.
var v1Controllers = []string{"cpuacct", "memory", "blkio"}

// hierarchy is the host's cgroup layout, under Mount.
type hierarchy struct {
	mount string
	v2    bool   // a pure cgroup v2 host (cgroup.controllers at the mount)
	root  string // the kubelet's cgroupRoot, relative; "" until found
}

// detect reads the host's layout. root is the kubelet's cgroupRoot ("" to
// search for the kubepods cgroup).
func detect(mount, root string) hierarchy {
	_, err := os.Stat(filepath.Join(mount, "cgroup.controllers"))
	return hierarchy{mount: mount, v2: err == nil, root: strings.Trim(root, "/")}
}

// primary is the directory where pod cgroups are looked for: the v2 mount,
// or the v1 memory hierarchy.
func (h *hierarchy) primary() string {
	if h.v2 {
		return h.mount
	}
	return filepath.Join(h.mount, "memory")
}

// kubepods returns the kubepods cgroup, relative to each hierarchy: under
// the configured root, else found once by a shallow search.
func (h *hierarchy) kubepods() (string, error) {
	base := h.primary()
	for _, name := range []string{"kubepods", "kubepods.slice"} {
		if h.root != "" || name == "kubepods" {
			if p := filepath.Join(h.root, name); isDir(filepath.Join(base, p)) {
				return p, nil
			}
		}
	}
	// Search: the kubelet's cgroupRoot is at most three levels down.
	var found string
	var walk func(rel string, depth int)
	walk = func(rel string, depth int) {
		if found != "" || depth > 3 {
			return
		}
		ents, err := os.ReadDir(filepath.Join(base, rel))
		if err != nil {
			return
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if e.Name() == "kubepods" || e.Name() == "kubepods.slice" {
				found = filepath.Join(rel, e.Name())
				return
			}
		}
		for _, e := range ents {
			if e.IsDir() {
				walk(filepath.Join(rel, e.Name()), depth+1)
			}
		}
	}
	walk("", 0)
	if found == "" {
		return "", fmt.Errorf("kubepods under %s: %w", base, ErrNoCgroup)
	}
	h.root = filepath.Dir(found)
	if h.root == "." {
		h.root = ""
	}
	return found, nil
}

// podDir returns pod uid's cgroup, relative to each hierarchy, for the
// cgroupfs and the systemd drivers and every QoS class.
func (h *hierarchy) podDir(uid string) (string, error) {
	kp, err := h.kubepods()
	if err != nil {
		return "", err
	}
	base := h.primary()
	u := strings.ReplaceAll(uid, "-", "_")
	for _, rel := range []string{
		filepath.Join(kp, "pod"+uid),
		filepath.Join(kp, "burstable", "pod"+uid),
		filepath.Join(kp, "besteffort", "pod"+uid),
		filepath.Join(kp, "kubepods-pod"+u+".slice"),
		filepath.Join(kp, "kubepods-burstable.slice", "kubepods-burstable-pod"+u+".slice"),
		filepath.Join(kp, "kubepods-besteffort.slice", "kubepods-besteffort-pod"+u+".slice"),
	} {
		if isDir(filepath.Join(base, rel)) {
			return rel, nil
		}
	}
	return "", fmt.Errorf("pod %s: %w", uid, ErrNoCgroup)
}

// containers lists the container cgroups of a pod (the sandbox's among
// them), by container id.
func (h *hierarchy) containers(podRel string) (map[string]string, error) {
	ents, err := os.ReadDir(filepath.Join(h.primary(), podRel))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pod cgroup %s: %w", podRel, ErrNoCgroup)
		}
		return nil, fmt.Errorf("pod cgroup %s: %w", podRel, err)
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if id := containerID(e.Name()); id != "" {
			out[id] = filepath.Join(podRel, e.Name())
		}
	}
	return out, nil
}

// containerID reads a container id from its cgroup's name: "<id>"
// (cgroupfs) or "cri-containerd-<id>.scope", "crio-<id>.scope",
// "docker-<id>.scope" (systemd).
func containerID(name string) string {
	name = strings.TrimSuffix(name, ".scope")
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		name = name[i+1:]
	}
	if len(name) < 12 {
		return ""
	}
	for _, c := range name {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return name
}

// target is the Sampler target of a container cgroup (relative path).
func (h *hierarchy) target(rel string) profile.Target {
	if h.v2 {
		return profile.Target{V2: filepath.Join(h.mount, rel)}
	}
	t := profile.Target{V1: make(map[string]string, len(v1Controllers))}
	for _, c := range v1Controllers {
		t.V1[c] = filepath.Join(h.mount, c, rel)
	}
	return t
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// trimRuntime strips the runtime's scheme from a status container id
// ("containerd://<id>").
func trimRuntime(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		return id[i+3:]
	}
	return id
}
