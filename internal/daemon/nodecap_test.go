package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestNodeIOPS measures the disk under a temporary directory for real:
// a positive figure, kept in node-io.json for the next start, and no
// probe file left behind.
func TestNodeIOPS(t *testing.T) {
	dir := t.TempDir()
	ops, err := measureIOPS(dir)
	if err != nil {
		t.Skipf("this file system cannot be measured (%v): nodeIOPS falls back to its default", err)
	}
	if ops <= 0 {
		t.Fatalf("measured %v ops/s", ops)
	}
	t.Logf("measured %.0f random 4 KiB reads/s", ops)
	measuredIOPS.Clear()
	got, from := nodeIOPS(dir)
	if got <= 0 || from != "measured now" {
		t.Fatalf("nodeIOPS = %v (%s)", got, from)
	}
	var c ioCache
	b, err := os.ReadFile(filepath.Join(dir, ioCacheFile))
	if err != nil || json.Unmarshal(b, &c) != nil || c.OpsPerS != got {
		t.Fatalf("cache %s (%v), want %v ops/s", b, err, got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left in the state directory: %v, want only %s", ents, ioCacheFile)
	}
	// The next start (a new process) reads the cache, whatever it says.
	measuredIOPS.Clear()
	c.OpsPerS = 1234
	b, _ = json.Marshal(c)
	os.WriteFile(filepath.Join(dir, ioCacheFile), b, 0o644)
	if got, _ := nodeIOPS(dir); got != 1234 {
		t.Errorf("with a cache of 1234 ops/s: %v", got)
	}
	// A cache from another device is measured again.
	measuredIOPS.Clear()
	c.Dev++
	b, _ = json.Marshal(c)
	os.WriteFile(filepath.Join(dir, ioCacheFile), b, 0o644)
	if got, from := nodeIOPS(dir); got == 1234 || from != "measured now" {
		t.Errorf("with a cache of another device: %v (%s)", got, from)
	}
	if got, from := nodeIOPS(filepath.Join(dir, "missing")); got != DefaultIOPS {
		t.Errorf("missing directory: %v (%s), want the default", got, from)
	}
}

// TestNodeNetMbps reads link speeds from a sysfs tree as the kernel lays it
// out: physical interfaces that are up count, virtual ones (no device),
// links down and links of unknown speed (virtio's -1) do not.
func TestNodeNetMbps(t *testing.T) {
	root := t.TempDir()
	iface := func(name, state, speed string, device bool) {
		d := filepath.Join(root, name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "operstate"), []byte(state+"\n"), 0o644)
		if speed != "" {
			os.WriteFile(filepath.Join(d, "speed"), []byte(speed+"\n"), 0o644)
		}
		if device {
			os.Symlink(root, filepath.Join(d, "device"))
		}
	}
	iface("lo", "unknown", "", false)
	iface("eth0", "up", "-1", true) // virtio
	if got, from := nodeNetMbps(root); got != DefaultNetMbps {
		t.Errorf("virtio only: %v (%s), want the default", got, from)
	}
	iface("eno1", "up", "10000", true)
	iface("eno2", "up", "1000", true)
	iface("eno3", "down", "25000", true)
	iface("veth0", "up", "10000", false)
	if got, from := nodeNetMbps(root); got != 11000 {
		t.Errorf("two physical links up: %v (%s), want 11000", got, from)
	}
	if got, _ := nodeNetMbps(filepath.Join(root, "missing")); got != DefaultNetMbps {
		t.Errorf("no sysfs: %v", got)
	}
}
