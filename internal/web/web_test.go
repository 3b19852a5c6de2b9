package web

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
)

// fakeSource is a daemon of fixed tasks. Like the daemon, it answers 404
// for a task it does not have.
type fakeSource struct {
	node  api.NodeStatus
	tasks []api.Task
	curve []resource.Sample
}

func (f *fakeSource) Node() api.NodeStatus { return f.node }
func (f *fakeSource) Live(_ *http.Request, limit int) ([]api.Task, error) {
	var out []api.Task
	for _, t := range f.tasks {
		if !api.TerminalState(t.State) {
			out = append(out, t)
		}
	}
	return out, nil
}
func (f *fakeSource) Tasks(_ *http.Request, o api.ListOptions) ([]api.Task, error) {
	return f.tasks, nil
}
func (f *fakeSource) Task(_ *http.Request, id string) (*api.Task, error) {
	for _, t := range f.tasks {
		if t.ID == id {
			return &t, nil
		}
	}
	return nil, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: "no task " + id}
}
func (f *fakeSource) Samples(r *http.Request, id string) ([]resource.Sample, error) {
	if _, err := f.Task(r, id); err != nil {
		return nil, err
	}
	return f.curve, nil
}

func serve(t *testing.T, d *Dashboard, path string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	d.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestNums(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"null for NaN", nums{1, math.NaN(), 0.25, math.Inf(1)}, "[1,null,0.25,null]"},
		{"six digits", nums{123.456789, 1e-7}, "[123.457,1e-07]"},
		{"times to the millisecond", times{1764863153.0306, 5}, "[1764863153.031,5.000]"},
		{"empty", nums{}, "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.in)
			if err != nil || string(b) != tc.want {
				t.Errorf("got %s, %v; want %s", b, err, tc.want)
			}
		})
	}
}

func TestTaskReply(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	src := &fakeSource{
		tasks: []api.Task{{ID: "A", State: api.StateSucceeded}},
		curve: []resource.Sample{
			{Time: t0, CPU: 0.5, MemoryMB: 100, Avail: resource.Set(0).With(resource.CPU).With(resource.Memory)},
			{Time: t0.Add(time.Second), MemoryMB: 120, NetInMbps: 1, NetOutMbps: 2, Avail: resource.Set(0).With(resource.Memory).With(resource.Net)},
		},
	}
	d := New(src, Options{})
	rec := serve(t, d, "/v1/dashboard/task/A")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var got struct {
		Task  api.Task
		Curve map[string][]*float64
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	c := got.Curve
	if got.Task.ID != "A" || len(c["t"]) != 2 || *c["t"][1] != 1_700_000_001 || *c["cpu"][0] != 0.5 || c["cpu"][1] != nil ||
		*c["memory"][1] != 120 || c["net"][0] != nil || *c["net"][1] != 3 || c["iops"][0] != nil {
		t.Errorf("reply %s", rec.Body)
	}
	if rec := serve(t, d, "/v1/dashboard/task/B"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown task: %d", rec.Code)
	}
}

func TestUI(t *testing.T) {
	d := New(&fakeSource{}, Options{})
	for path, want := range map[string]string{"/dashboard/": "<title>Prescient</title>", "/dashboard/app.js": "window.prescient"} {
		rec := serve(t, d, path)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d, want %q in the body", path, rec.Code, want)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	if rec := serve(t, d, "/dashboard"); rec.Code != http.StatusMovedPermanently {
		t.Errorf("/dashboard: %d", rec.Code)
	}
}

func TestLive(t *testing.T) {
	now := time.Now()
	at := func(s int) *time.Time { v := now.Add(time.Duration(s) * time.Second); return &v }
	steps := []api.PredictionStep{{DurationS: 100}}
	src := &fakeSource{tasks: []api.Task{
		{ID: "waiting", State: api.StateQueued, Reservation: &api.Reservation{}},
		{ID: "reserved", State: api.StateQueued, Reservation: &api.Reservation{Held: true, Start: at(50)}, Prediction: &api.Prediction{Steps: steps}},
		{ID: "running", State: api.StateRunning, StartedAt: at(-10), Prediction: &api.Prediction{Steps: steps}},
		{ID: "done", State: api.StateSucceeded},
	}}
	rec := serve(t, New(src, Options{}), "/v1/dashboard/live")
	var got LiveReply
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, t := range got.Tasks {
		ids = append(ids, t.ID)
	}
	if strings.Join(ids, ",") != "running,reserved,waiting" {
		t.Errorf("order %v, want running, reserved, waiting", ids)
	}
	// The calendar reaches the reserved task's predicted end: 150 s.
	if got.HorizonS < 149 || got.HorizonS > 151 {
		t.Errorf("horizon %v s, want 150", got.HorizonS)
	}
	if rec := serve(t, New(src, Options{}), "/v1/dashboard/live?limit=x"); rec.Code != http.StatusBadRequest {
		t.Errorf("bad limit: %d", rec.Code)
	}
}

func TestNodeHistory(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := &fakeSource{node: api.NodeStatus{Dims: map[string]api.DimUsage{
		"cpu": {Capacity: 2, Committed: 1, SoftReserved: 0.5, Used: 0.25}, "memory": {Capacity: 1000}}}}
	d := New(src, Options{HistoryStep: 10 * time.Millisecond, HistoryLen: 3})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { d.Run(stop); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	wrapped := func() bool {
		d.hist.mu.Lock()
		defer d.hist.mu.Unlock()
		return len(d.hist.pts) == 3 && d.hist.next != 0
	}
	for !wrapped() {
		if time.Now().After(deadline) {
			t.Fatal("history never filled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	var rep NodeReply
	if err := json.Unmarshal(serve(t, d, "/v1/dashboard/node").Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.T) != 3 || rep.Cap[0][2] != 2 || rep.Commit[0][0] != 1 || rep.Soft[0][1] != 0.5 || rep.Used[0][2] != 0.25 || rep.Cap[1][0] != 1000 {
		t.Errorf("reply %+v", rep)
	}
	for i := 1; i < len(rep.T); i++ {
		if rep.T[i] < rep.T[i-1] {
			t.Errorf("times not in order: %v", rep.T)
		}
	}
}

func TestSignatures(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	end := t0.Add(10 * time.Second)
	f := func(v float64) *float64 { return &v }
	pred := &api.Prediction{Model: "history/exact", Steps: []api.PredictionStep{{DurationS: 10, P50: api.Amounts{CPUCores: 1, MemoryMB: 80}}}}
	ok := api.Task{Signature: "s1", State: api.StateSucceeded, StartedAt: &t0, FinishedAt: &end, DurationS: 10, SubmittedAt: t0,
		Prediction: pred, Peak: api.Stats{CPUPct: f(50), MemoryMB: f(100)}, Mean: api.Stats{CPUPct: f(25), MemoryMB: f(50)},
		Allocations: []api.Allocation{
			{Time: t0, Limits: api.Limits{CPUCores: 1, MemoryMB: 200}, Reason: "commit"},
			{Time: t0.Add(5 * time.Second), Limits: api.Limits{CPUCores: 1, MemoryMB: 100}, Reason: "adjust_down"},
			{Time: end, Reason: "release"},
		}}
	sigs := Signatures([]api.Task{
		{Signature: "s2", State: api.StateRunning, SubmittedAt: t0.Add(time.Minute)},
		ok,
		{Signature: "s1", State: api.StateFailed, SubmittedAt: t0.Add(-time.Minute)},
	})
	if len(sigs) != 2 || sigs[0].Signature != "s2" || sigs[0].Active != 1 || sigs[0].Model != "requests" {
		t.Fatalf("signatures %+v", sigs)
	}
	s := sigs[1]
	// Error: cpu |1 − 0.5| / 0.5 = 1, memory |80 − 100| / 100 = 0.2; slack:
	// cpu 1 − 0.25 / 1, memory 1 − 50 / 150 (200 for 5 s, 100 for 5 s).
	if s.Runs != 2 || s.Succeeded != 1 || s.Failed != 1 || s.Model != "history/exact" || s.Scored != 1 ||
		!near(float64(*s.ErrCPU), 1) || !near(float64(*s.ErrMemory), 0.2) || !near(float64(*s.SlackCPU), 0.75) || !near(float64(*s.SlackMemory), 1-50.0/150) {
		t.Errorf("signature %+v (errors %v %v, slack %v %v)", s, *s.ErrCPU, *s.ErrMemory, *s.SlackCPU, *s.SlackMemory)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGate(t *testing.T) {
	g := NewGate([]byte("secret-token-0123456789"))
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	do := func(method, target string, mod func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Host = "127.0.0.1:7071"
		if mod != nil {
			mod(r)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	rec := do(http.MethodGet, "/dashboard/?token=secret-token-0123456789&x=1", nil)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/?x=1" || len(cookies) != 1 ||
		!cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || strings.Contains(cookies[0].Value, "secret") {
		t.Fatalf("token exchange: %d %q %+v", rec.Code, rec.Header().Get("Location"), cookies)
	}
	cookie := cookies[0]
	if cookie.Name != CookieName+"_7071" {
		t.Errorf("cookie %s, want one of the port's own", cookie.Name)
	}
	tests := []struct {
		name, method, target string
		mod                  func(*http.Request)
		want                 int
	}{
		{"nothing", http.MethodGet, "/dashboard/", nil, http.StatusUnauthorized},
		{"wrong token", http.MethodGet, "/dashboard/?token=nope", nil, http.StatusUnauthorized},
		{"token on a POST", http.MethodPost, "/v1/tasks?token=secret-token-0123456789", nil, http.StatusUnauthorized},
		{"cookie", http.MethodGet, "/v1/node", func(r *http.Request) { r.AddCookie(cookie) }, http.StatusOK},
		{"cookie on a POST", http.MethodPost, "/v1/tasks", func(r *http.Request) { r.AddCookie(cookie) }, http.StatusUnauthorized},
		{"wrong cookie", http.MethodGet, "/v1/node", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: cookie.Name, Value: "x"}) }, http.StatusUnauthorized},
		{"another port's cookie", http.MethodGet, "/v1/node", func(r *http.Request) { r.Host = "127.0.0.1:7072"; r.AddCookie(cookie) }, http.StatusUnauthorized},
		{"bearer", http.MethodPost, "/v1/tasks", func(r *http.Request) { r.Header.Set("Authorization", "Bearer secret-token-0123456789") }, http.StatusOK},
		{"wrong bearer", http.MethodGet, "/v1/node", func(r *http.Request) { r.Header.Set("Authorization", "Bearer secret") }, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if rec := do(tc.method, tc.target, tc.mod); rec.Code != tc.want {
				t.Errorf("%d, want %d", rec.Code, tc.want)
			}
		})
	}
	if a, b := NewToken(), NewToken(); len(a) != 32 || a == b {
		t.Errorf("tokens %q, %q", a, b)
	}
}
