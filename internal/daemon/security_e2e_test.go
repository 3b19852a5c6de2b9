package daemon_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/cred"
	"github.com/prescient-sched/prescient/internal/testuser"
)

// twoUsers makes two throwaway users in one group and a daemon that lets
// that group use its socket.
func twoUsers(t *testing.T, args ...string) (*env, testuser.User, testuser.User, uint32) {
	t.Helper()
	needDaemon(t)
	us := testuser.New(t, 2)
	group, gid := testuser.Group(t, us...)
	e := newEnv(t, append([]string{"--socket-group", group}, args...)...)
	e.start()
	return e, us[0], us[1], gid
}

// TestConnectionsPerUser: one user holding many idle connections is
// refused beyond --max-conns-per-user with a 429 — and the other user's
// submits go on as before (they failed with exit 125 when one user's
// 20,000 idle connections had used up the daemon's file descriptors).
func TestConnectionsPerUser(t *testing.T) {
	e, alice, bob, gid := twoUsers(t, "--max-conns-per-user", "8")
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	refused := 0
	err := cred.Do(cred.Credential{UID: alice.UID, GID: alice.GID, Groups: []uint32{alice.GID, gid}}, func() error {
		for range 20 {
			c, err := net.Dial("unix", e.socket)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A refused connection gets its 429 at once; an admitted one is idle.
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.Contains(line, " 429 ") {
			refused++
		}
	}
	if refused != 12 {
		t.Errorf("%d of alice's 20 connections refused, want 12 (limit 8)", refused)
	}
	out, errOut, code := e.cli(bob.CredentialIn(gid), "submit", "--wait", "--", "true")
	if code != 0 {
		t.Fatalf("bob's submit while alice holds her connections: exit %d, %s %s", code, out, errOut)
	}
}

// TestPriorityCeiling: a user may not put a task ahead of everyone with
// an arbitrary priority; root may.
func TestPriorityCeiling(t *testing.T) {
	e, alice, _, gid := twoUsers(t)
	_, errOut, code := e.cli(alice.CredentialIn(gid), "submit", "--priority", "1000000", "--", "true")
	if code == 0 || !strings.Contains(errOut, "max-user-priority") {
		t.Errorf("alice --priority 1000000: exit %d, %q; want a refusal naming --max-user-priority", code, errOut)
	}
	if _, errOut, code := e.cli(alice.CredentialIn(gid), "submit", "--priority", "10", "--", "true"); code != 0 {
		t.Errorf("alice --priority 10: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.cli(nil, "submit", "--priority", "1000000", "--", "true"); code != 0 {
		t.Errorf("root --priority 1000000: exit %d, %s", code, errOut)
	}
}

// TestQueuedPerUser: one user's backlog is bounded; the other user still
// gets in.
func TestQueuedPerUser(t *testing.T) {
	e, alice, bob, gid := twoUsers(t, "--max-queued-per-user", "5", "--cpu", "0.2")
	c := e.client()
	ctx := ctxT(t, 60*time.Second)
	blocker := spec("sleep", "60")
	blocker.Requests = &api.Limits{CPUCores: 0.2, MemoryMB: 1}
	if _, err := c.Submit(ctx, blocker); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		_, errOut, code := e.cli(alice.CredentialIn(gid), "submit", "--", "sleep", "1")
		if i < 5 && code != 0 {
			t.Fatalf("alice's submit %d: exit %d %s", i, code, errOut)
		}
		if i == 5 && (code == 0 || !strings.Contains(errOut, "max_queued_per_user")) {
			t.Errorf("alice's 6th submit: exit %d, %q; want refused by max_queued_per_user", code, errOut)
		}
	}
	if _, errOut, code := e.cli(bob.CredentialIn(gid), "submit", "--", "true"); code != 0 {
		t.Errorf("bob's submit: exit %d, %s", code, errOut)
	}
}

// TestSubmitRefusesWhatCannotStart: limits no task can start under,
// arguments the kernel would refuse and bytes JSON cannot carry are
// refused at submit, not accepted to fail later.
func TestSubmitRefusesWhatCannotStart(t *testing.T) {
	needDaemon(t)
	e := newEnv(t)
	e.start()
	hc := &http.Client{Transport: unixTransport(e.socket)}
	post := func(body string) (int, api.Error) {
		resp, err := hc.Post("http://d/v1/tasks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ae api.Error
		_ = json.NewDecoder(resp.Body).Decode(&ae)
		return resp.StatusCode, ae
	}
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"cpu below the kernel minimum", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{"cpu_cores":1e-300}}}`, 400, "kernel minimum"},
		{"memory no program starts in", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{"memory_mb":0.0001}}}`, 400, "no program can start"},
		{"argument over the kernel's limit", `{"spec":{"argv":["echo","` + strings.Repeat("x", 500<<10) + `"],"dir":"/tmp","limits":{}}}`, 400, "max_string_bytes"},
		{"invalid UTF-8", "{\"spec\":{\"argv\":[\"echo\",\"\xff\xfe\"],\"dir\":\"/tmp\",\"limits\":{}}}", 400, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ae := post(tt.body)
			if status != tt.status || !strings.Contains(ae.Message+" "+ae.Limit, tt.want) {
				t.Errorf("status %d %+v, want %d mentioning %q", status, ae, tt.status, tt.want)
			}
		})
	}
	// The CLI says so before sending.
	_, errOut, code := e.cli(nil, "submit", "--", "echo", "\xff")
	if code == 0 || !strings.Contains(errOut, "UTF-8") {
		t.Errorf("submit with a non-UTF-8 argument: exit %d, %q", code, errOut)
	}
}

// TestOutsiderIsDenied: a user outside the socket's group is told
// "permission denied", not that no daemon answers.
func TestOutsiderIsDenied(t *testing.T) {
	e, _, _, _ := twoUsers(t)
	outsider := testuser.New(t, 1)[0]
	_, errOut, code := e.cli(outsider.Credential(), "ps")
	if code == 0 || !strings.Contains(errOut, "permission denied") || strings.Contains(errOut, "no prescient daemon answers") {
		t.Errorf("outsider's ps: exit %d, %q", code, errOut)
	}
}

// TestFairShareBetweenUsers: alice's backlog does not put bob's task
// behind it (it was 1,984 tasks, about 40 minutes, before fair share).
// Only the tasks of alice's still queued when bob submits count: how
// many ran before that depends on how fast the machine submits, not on
// fair share.
func TestFairShareBetweenUsers(t *testing.T) {
	e, alice, bob, gid := twoUsers(t, "--cpu", "0.2", "--policy", "fit")
	var aliceIDs []string
	for range 12 {
		out, errOut, code := e.cli(alice.CredentialIn(gid), "submit", "--cpu", "0.2", "--memory", "16M", "--", "sleep", "2")
		if code != 0 {
			t.Fatalf("alice's submit: %d %s", code, errOut)
		}
		aliceIDs = append(aliceIDs, strings.TrimSpace(out))
	}
	c := e.client()
	ctx := ctxT(t, 90*time.Second)
	var queued []string
	for _, id := range aliceIDs {
		at, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if at.StartedAt == nil {
			queued = append(queued, id)
		}
	}
	if len(queued) < 3 {
		t.Fatalf("only %d of alice's tasks still queued when bob submits; the test needs a backlog", len(queued))
	}
	out, errOut, code := e.cli(bob.CredentialIn(gid), "submit", "--wait", "--cpu", "0.2", "--memory", "16M", "--", "true")
	if code != 0 {
		t.Fatalf("bob's submit: %d %s %s", code, out, errOut)
	}
	bobID := strings.Fields(out)[0]
	bt, err := c.Get(ctx, bobID)
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for _, id := range queued {
		at, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if at.StartedAt != nil && at.StartedAt.Before(*bt.StartedAt) {
			before++
		}
	}
	// One may start between the look and bob's submit.
	if before > 1 {
		t.Errorf("%d of alice's %d queued tasks started before bob's, want at most 1", before, len(queued))
	}
}
