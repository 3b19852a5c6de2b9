// Package testuser creates throwaway local users for tests that check what
// one user can do to another through Prescient. It is for tests only: each
// user is made with useradd, given no home, no password and no login shell,
// and removed with userdel when the test ends.
package testuser

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

// User is a throwaway local user.
type User struct {
	Name     string
	UID, GID uint32
}

// Credential is the user as exec wants it (its own group only).
func (u User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{u.GID}}
}

// SkipReason says why New cannot make users here, or "" when it can.
func SkipReason() string {
	if os.Geteuid() != 0 {
		return "needs root to create users"
	}
	for _, c := range []string{"useradd", "userdel", "groupadd", "groupdel", "gpasswd"} {
		if _, err := exec.LookPath(c); err != nil {
			return c + " not found: " + err.Error()
		}
	}
	return ""
}

// New creates n users (skipping the test when it cannot) and removes them,
// with their groups, when the test ends. Names are "pt-" and random hex, so
// parallel tests and leftovers of a killed run never collide.
func New(t testing.TB, n int) []User {
	t.Helper()
	if r := SkipReason(); r != "" {
		t.Skip(r)
	}
	out := make([]User, 0, n)
	for range n {
		name := "pt-" + randHex(6)
		if b, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, b)
		}
		t.Cleanup(func() {
			if b, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
				t.Logf("userdel %s: %v: %s", name, err, b)
			}
			_ = exec.Command("groupdel", name).Run() // gone with the user on most systems
		})
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("look up %s: %v", name, err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		out = append(out, User{Name: name, UID: uint32(uid), GID: uint32(gid)})
	}
	return out
}

// Group creates a group holding members and removes it when the test ends;
// it returns the group's name and gid.
func Group(t testing.TB, members ...User) (string, uint32) {
	t.Helper()
	if r := SkipReason(); r != "" {
		t.Skip(r)
	}
	name := "ptg-" + randHex(6)
	if b, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s: %v: %s", name, err, b)
	}
	t.Cleanup(func() { _ = exec.Command("groupdel", name).Run() })
	for _, m := range members {
		if b, err := exec.Command("gpasswd", "-a", m.Name, name).CombinedOutput(); err != nil {
			t.Fatalf("add %s to %s: %v: %s", m.Name, name, err, b)
		}
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatalf("look up group %s: %v", name, err)
	}
	gid, _ := strconv.ParseUint(g.Gid, 10, 32)
	return name, uint32(gid)
}

// CredentialIn is u with the supplementary group gid too.
func (u User) CredentialIn(gids ...uint32) *syscall.Credential {
	c := u.Credential()
	c.Groups = append(c.Groups, gids...)
	return c
}

func randHex(n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testuser: %v", err))
	}
	return hex.EncodeToString(b)
}
