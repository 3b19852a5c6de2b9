package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackage builds the .deb with the project's own `make package`,
// installs it for real with dpkg, checks what it put in place — the unit
// passes `systemd-analyze verify`, the installed config round-trips
// through `prescient serve --print-config`, man pages and completions are
// there — and purges it.
func TestPackage(t *testing.T) {
	switch {
	case os.Geteuid() != 0:
		t.Skip("needs root: installs the package with dpkg")
	case testing.Short():
		t.Skip("-short: building the package takes a while")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "make", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH", tool)
		}
	}
	if _, err := os.Stat("../bin/nfpm"); err != nil {
		t.Skip("no bin/nfpm (scripts/test-deps.sh, which make test runs, installs it from the Go module proxy)")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "prescient").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("a prescient package is installed on this machine: not touching it")
	}
	make := exec.Command("make", "-C", "..", "package")
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob("../dist/prescient_*.deb")
	if len(debs) != 1 {
		t.Fatalf("make package made %v, want one .deb", debs)
	}
	deb := debs[0]
	contents := run(t, "dpkg-deb", "--contents", deb)
	for _, want := range []string{"./usr/bin/prescient", "./lib/systemd/system/prescient.service", "./etc/prescient/config.yaml",
		"./usr/share/man/man1/prescient-serve.1.gz", "./usr/share/bash-completion/completions/prescient",
		"./usr/share/zsh/vendor-completions/_prescient", "./usr/share/fish/vendor_completions.d/prescient.fish",
		"./usr/share/doc/prescient/examples/prometheus.yml"} {
		if !strings.Contains(contents, want+"\n") {
			t.Errorf("the package lacks %s", want)
		}
	}
	if info := run(t, "dpkg-deb", "--field", deb, "Package", "Architecture"); !strings.Contains(info, "Package: prescient") {
		t.Errorf("control: %s", info)
	}
	if conf := run(t, "dpkg-deb", "--ctrl-tarfile", deb); conf == "" {
		t.Error("no control archive")
	}

	run(t, "dpkg", "-i", deb)
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "prescient").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, out)
		}
		for _, p := range []string{"/usr/bin/prescient", "/lib/systemd/system/prescient.service", "/etc/prescient/config.yaml"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left after purge", p)
			}
		}
	})
	if st := run(t, "dpkg-query", "-W", "-f=${Status}", "prescient"); st != "install ok installed\n" {
		t.Fatalf("dpkg status %q", st)
	}
	// The unit, as systemd itself reads it (offline: no systemd needs to
	// run); it also checks that ExecStart's binary and the man pages of
	// Documentation= are in place.
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		cmd := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/prescient.service")
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
		if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("no systemd-analyze: the unit's keys checked by hand only")
	}
	unit, err := os.ReadFile("/lib/systemd/system/prescient.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/prescient serve --config /etc/prescient/config.yaml", "Delegate=yes",
		"KillMode=process", "StateDirectory=prescient", "WantedBy=multi-user.target"} {
		if !strings.Contains(string(unit), want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	// The installed config is serve's defaults as root and round-trips.
	conf, err := os.ReadFile("/etc/prescient/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/prescient", "serve", "--config", "/etc/prescient/config.yaml", "--print-config")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("prescient serve --config --print-config: %v", err)
	}
	if string(out) != string(conf) {
		t.Errorf("the installed config does not round-trip:\n--- file\n%s\n--- print-config\n%s", conf, out)
	}
	for _, want := range []string{"state-dir: /var/lib/prescient\n", "policy: predict\n", "dashboard: true\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("installed config lacks %q", strings.TrimSpace(want))
		}
	}
	if out := run(t, "/usr/bin/prescient", "--help"); !strings.Contains(out, "dashboard") {
		t.Errorf("prescient --help:\n%s", out)
	}
	if _, err := exec.LookPath("man"); err == nil {
		if out, err := exec.Command("man", "-P", "cat", "prescient-serve").CombinedOutput(); err != nil || !strings.Contains(string(out), "--print-config") {
			t.Errorf("man prescient-serve: %v\n%.300s", err, out)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out)) + "\n"
}
