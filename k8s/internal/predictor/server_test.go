package predictor

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sigOf(c byte) string { return strings.Repeat(string(c), 64) }

// run is a run whose memory climbs to peakMiB MiB and whose CPU holds cores.
func run(sig string, start time.Time, n int, cores, peakMiB float64) RunRequest {
	r := RunRequest{Signature: sig, Code: sigOf('c'), Start: start, StepSeconds: 1}
	for i := range n {
		r.Samples = append(r.Samples, Sample{CPU: cores, Memory: peakMiB * float64(i+1) / float64(n) * (1 << 20)})
	}
	return r
}

func open(t *testing.T, dir string) (*Server, *Client) {
	t.Helper()
	s, err := Open(Config{Dir: dir, MaxRuns: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, NewClient(hs.URL, hs.Client())
}

// A restart replays the store: the same prediction, the same kept runs.
func TestRestartLosesNoHistory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, c := open(t, dir)
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := range 5 { // MaxRuns 3: the first two are dropped
		resp, err := c.Record(ctx, run(sigOf('a'), start.Add(time.Duration(i)*time.Hour), 30, 0.5, float64(100+10*i)))
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, 3); resp.Runs != want {
			t.Errorf("record %d: runs %d, want %d", i, resp.Runs, want)
		}
	}
	if _, err := c.Record(ctx, run(sigOf('b'), start, 20, 2, 50)); err != nil {
		t.Fatal(err)
	}
	before, err := c.Predict(ctx, PredictRequest{Signature: sigOf('a')})
	if err != nil {
		t.Fatal(err)
	}
	if before.Source != "exact" {
		t.Errorf("source %q, want exact", before.Source)
	}
	// Kept: runs 2, 3, 4 → peaks 120, 130, 140 MiB (rising 10 a run);
	// the upper peak covers the largest, with the engine's margin.
	if got, want := before.Memory.Peak.Upper, 140.0*(1<<20); got < want*0.999 || got > want*1.25 {
		t.Errorf("memory upper peak %v, want %v to 1.25 × that", got, want)
	}
	if got := before.CPU.Peak.P50; got < 0.499 || got > 0.501 {
		t.Errorf("cpu p50 peak %v, want 0.5", got)
	}
	infoBefore := getInfo(t, c, sigOf('a'))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}

	_, c2 := open(t, dir)
	after, err := c2.Predict(ctx, PredictRequest{Signature: sigOf('a')})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("prediction changed across restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(infoBefore, getInfo(t, c2, sigOf('a'))); diff != "" {
		t.Errorf("kept runs changed across restart (-before +after):\n%s", diff)
	}
	if len(infoBefore.Runs) != 3 {
		t.Errorf("kept %d runs, want 3", len(infoBefore.Runs))
	}
	if _, err := c2.Predict(ctx, PredictRequest{Signature: sigOf('b')}); err != nil {
		t.Errorf("signature b after restart: %v", err)
	}
}

func getInfo(t *testing.T, c *Client, sig string) SignatureInfo {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+"/v1/signatures/"+sig, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info SignatureInfo
	if err := decodeJSON(resp.Body, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestPredictUnknownIsNoHistory(t *testing.T) {
	_, c := open(t, t.TempDir())
	_, err := c.Predict(context.Background(), PredictRequest{Signature: sigOf('e')})
	if !errors.Is(err, ErrNoHistory) {
		t.Fatalf("err %v, want ErrNoHistory", err)
	}
}

// Another signature of the same code is predicted from that code's runs.
func TestPredictColdStartByCode(t *testing.T) {
	_, c := open(t, t.TempDir())
	ctx := context.Background()
	if _, err := c.Record(ctx, run(sigOf('a'), time.Now(), 10, 1, 64)); err != nil {
		t.Fatal(err)
	}
	p, err := c.Predict(ctx, PredictRequest{Signature: sigOf('d'), Code: sigOf('c')})
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != "code" {
		t.Errorf("source %q, want code", p.Source)
	}
}

func TestRecordRejects(t *testing.T) {
	_, c := open(t, t.TempDir())
	good := run(sigOf('a'), time.Now(), 3, 1, 10)
	tests := []struct {
		name string
		edit func(r *RunRequest)
	}{
		{"short signature", func(r *RunRequest) { r.Signature = "abc" }},
		{"non-hex signature", func(r *RunRequest) { r.Signature = sigOf('z') }},
		{"bad code", func(r *RunRequest) { r.Code = "x" }},
		{"no samples", func(r *RunRequest) { r.Samples = nil }},
		{"zero step", func(r *RunRequest) { r.StepSeconds = 0 }},
		{"huge step", func(r *RunRequest) { r.StepSeconds = 1e9 }},
		{"no start", func(r *RunRequest) { r.Start = time.Time{} }},
		{"negative memory", func(r *RunRequest) { r.Samples[1].Memory = -1 }},
		{"negative input", func(r *RunRequest) { r.InputBytes = -5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			r.Samples = append([]Sample(nil), good.Samples...)
			tt.edit(&r)
			if _, err := c.Record(context.Background(), r); !errors.Is(err, ErrBadRequest) {
				t.Errorf("err %v, want ErrBadRequest", err)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown field", "POST", "/v1/predict", `{"signature":"` + sigOf('a') + `","bogus":1}`, 400},
		{"trailing data", "POST", "/v1/predict", `{"signature":"` + sigOf('a') + `"} {}`, 400},
		{"not json", "POST", "/v1/runs", `nope`, 400},
		{"no history", "POST", "/v1/predict", `{"signature":"` + sigOf('a') + `"}`, 404},
		{"bad path signature", "GET", "/v1/signatures/xyz", ``, 400},
		{"unknown signature", "GET", "/v1/signatures/" + sigOf('a'), ``, 404},
		{"wrong method", "GET", "/v1/predict", ``, 405},
		{"too large", "POST", "/v1/runs", `{"samples":[` + strings.Repeat(`{"cpu":1,"memory":1},`, maxBodyBytes/20) + `]}`, 413},
		{"health", "GET", "/healthz", ``, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, bytes.NewBufferString(tt.body)))
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

func TestResample(t *testing.T) {
	s := func(v ...float64) []Sample {
		out := make([]Sample, len(v))
		for i, x := range v {
			out[i] = Sample{CPU: x, Memory: x}
		}
		return out
	}
	tests := []struct {
		name     string
		in       []Sample
		from, to time.Duration
		want     []Sample
	}{
		{"same step", s(1, 2, 3), time.Second, time.Second, s(1, 2, 3)},
		{"down by 2, max wins", s(1, 5, 3, 2, 7), time.Second, 2 * time.Second, s(5, 3, 7)},
		{"up by 2, repeated", s(1, 4), 2 * time.Second, time.Second, s(1, 1, 4, 4)},
		{"down 1.5, overlap", s(1, 2, 3), 2 * time.Second, 3 * time.Second, s(2, 3)},
		{"empty", nil, time.Second, 2 * time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, resample(tt.in, tt.from, tt.to)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResampleTailKeepsTheEnd(t *testing.T) {
	in := []Sample{{CPU: 1}, {CPU: 2}, {CPU: 3}}
	got := resampleTail(in, time.Hour, time.Second, 5)
	want := []Sample{{CPU: 3}, {CPU: 3}, {CPU: 3}, {CPU: 3}, {CPU: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got = resampleTail([]Sample{{CPU: 1}, {CPU: 2}, {CPU: 3}, {CPU: 4}}, time.Second, time.Second, 2)
	if diff := cmp.Diff([]Sample{{CPU: 3}, {CPU: 4}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A second server on the same directory is refused while the first holds it.
func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(Config{Dir: dir}, nil); !errors.Is(err, ErrStore) {
		t.Fatalf("second open: err %v, want ErrStore", err)
	}
}

func FuzzDecodeRun(f *testing.F) {
	f.Add([]byte(`{"signature":"` + sigOf('a') + `","start":"2026-11-01T10:00:00Z","stepSeconds":1,"samples":[{"cpu":1,"memory":2}]}`))
	f.Add([]byte(`{"samples":[{"cpu":1e308,"memory":-0}],"stepSeconds":1e-300}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r RunRequest
		if decodeJSON(bytes.NewReader(b), &r) != nil {
			return
		}
		if validateRun(&r) != nil {
			return
		}
		step := time.Duration(r.StepSeconds * float64(time.Second))
		out := resampleTail(r.Samples, step, time.Second, 4096)
		if len(out) == 0 || len(out) > 4096 {
			t.Fatalf("valid run of %d samples resampled to %d", len(r.Samples), len(out))
		}
	})
}
