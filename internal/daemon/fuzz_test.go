package daemon

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary requests — method, path, query, body — to the
// daemon's whole HTTP API (every decoder of outside input behind it) on a
// fake runner, as a non-root caller: nothing may panic, every answer is a
// well-formed status, a server error is never the answer to bad input, and
// the daemon keeps serving.
func FuzzAPI(f *testing.F) {
	seeds := []struct{ method, target, body string }{
		{"POST", "/v1/tasks", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{}}}`},
		{"POST", "/v1/tasks", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{"cpu_cores":0.5}},"requests":{"memory_mb":5},"priority":3}`},
		{"POST", "/v1/tasks", `{"spec":{"argv":["sh","-c","x"],"env":["A=B"],"inputs":["/nonexistent"],"dir":"/","limits":{}}}`},
		{"POST", "/v1/tasks", "{\"spec\":{\"argv\":[\"\xff\"],\"dir\":\"/tmp\",\"limits\":{}}}"},
		{"GET", "/v1/tasks?state=queued&limit=3", ""},
		{"GET", "/v1/tasks?limit=-1&signature=%00", ""},
		{"GET", "/v1/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV", ""},
		{"GET", "/v1/tasks/..%2f..%2fetc%2fpasswd/logs?stream=stdout", ""},
		{"GET", "/v1/tasks/x/logs?stream=../../x&follow=1", ""},
		{"POST", "/v1/tasks/x/cancel", ""},
		{"GET", "/v1/tasks/x/curve", ""},
		{"GET", "/v1/node", ""},
		{"DELETE", "/v1/tasks", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, []byte(s.body))
	}
	fx := newFuzzDaemon(f)
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") || method == "" || strings.ContainsAny(method, " \r\n\t/") {
			return // not an HTTP request line at all
		}
		req, err := http.NewRequestWithContext(context.Background(), method, "http://d"+target, bytes.NewReader(body))
		if err != nil || strings.Contains(req.URL.RawQuery, "follow") {
			return // follow streams until the task ends: not a decoder
		}
		req = req.WithContext(context.WithValue(req.Context(), identityKey, identity{UID: 65534, GID: 65534}))
		rec := httptest.NewRecorder()
		fx.handler().ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("%s %s: status %d", method, target, rec.Code)
		}
		if rec.Code >= 500 && rec.Code != http.StatusInsufficientStorage {
			t.Fatalf("%s %s %q: status %d for outside input: %s", method, target, body, rec.Code, rec.Body)
		}
	})
}

// newFuzzDaemon is a running daemon on a fake runner whose tasks never
// start (no room), for FuzzAPI.
func newFuzzDaemon(f *testing.F) *Daemon {
	f.Helper()
	d, err := New(Config{StateDir: f.TempDir(), Policy: PolicyFit, ShimCommand: []string{"/bin/false"}, runner: newFakeRunner(), CPU: 1, MemoryMB: 1000})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		<-done
		_ = d.Close()
	})
	return d
}
