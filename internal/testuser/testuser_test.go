package testuser_test

import (
	"os/exec"
	"os/user"
	"strings"
	"syscall"
	"testing"

	"github.com/prescient-sched/prescient/internal/testuser"
)

func TestNewAndGroup(t *testing.T) {
	var names []string
	t.Run("make", func(t *testing.T) {
		us := testuser.New(t, 2)
		g, gid := testuser.Group(t, us...)
		for _, u := range us {
			names = append(names, u.Name)
		}
		names = append(names, g)
		cmd := exec.Command("id", "-G")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: us[0].CredentialIn(gid)}
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(out)); len(f) != 2 {
			t.Errorf("id -G as %s: %q, want its own group and %s", us[0].Name, out, g)
		}
	})
	// Cleanup ran with the subtest.
	for _, n := range names[:2] {
		if _, err := user.Lookup(n); err == nil {
			t.Errorf("user %s still exists", n)
		}
	}
	if _, err := user.LookupGroup(names[2]); err == nil {
		t.Errorf("group %s still exists", names[2])
	}
}
