package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeSubmit(t *testing.T) {
	small := DefaultInputLimits
	small.MaxArgs, small.MaxEnvBytes, small.MaxBodyBytes = 3, 20, 400
	tests := []struct {
		name      string
		body      string
		wantLimit string
		wantErr   bool
	}{
		{"ok", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{"cpu_cores":0.5,"memory_mb":0,"iops":0,"net_mbps":0}}}`, "", false},
		{"unknown field", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{}},"bogus":1}`, "", true},
		{"unknown nested field", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{"gpu":1}}}`, "", true},
		{"trailing data", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{}}} {}`, "", true},
		{"empty argv", `{"spec":{"argv":[],"dir":"/tmp","limits":{}}}`, "", true},
		{"relative dir", `{"spec":{"argv":["true"],"dir":"tmp","limits":{}}}`, "", true},
		{"negative limit", `{"spec":{"argv":["true"],"dir":"/tmp","limits":{"cpu_cores":-1}}}`, "", true},
		{"bad env", `{"spec":{"argv":["true"],"env":["NOEQUALS"],"dir":"/tmp","limits":{}}}`, "", true},
		{"too many args", `{"spec":{"argv":["a","b","c","d"],"dir":"/tmp","limits":{}}}`, "max_args", true},
		{"env too big", `{"spec":{"argv":["a"],"env":["A=0123456789012345678901"],"dir":"/tmp","limits":{}}}`, "max_env_bytes", true},
		{"body too big", `{"spec":{"argv":["` + strings.Repeat("x", 500) + `"],"dir":"/tmp","limits":{}}}`, "max_body_bytes", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSubmit(strings.NewReader(tt.body), small)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("err %T is not *Error", err)
			}
			if ae.Status < 400 || ae.Status > 499 {
				t.Errorf("status %d, want 4xx", ae.Status)
			}
			if ae.Limit != tt.wantLimit {
				t.Errorf("limit %q, want %q", ae.Limit, tt.wantLimit)
			}
			if tt.wantLimit != "" && !strings.Contains(ae.Message, tt.wantLimit) {
				t.Errorf("message %q does not name the limit", ae.Message)
			}
		})
	}
}

func FuzzDecodeSubmit(f *testing.F) {
	f.Add([]byte(`{"spec":{"argv":["true"],"dir":"/tmp","limits":{}}}`))
	f.Add([]byte(`{"spec":{"argv":["sh","-c","x"],"env":["A=B"],"inputs":["/x"],"dir":"/","limits":{"cpu_cores":1e300}},"requests":{"memory_mb":5}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeSubmit(bytes.NewReader(body), DefaultInputLimits)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("error %v is not a 4xx *Error", err)
			}
			return
		}
		// Whatever is accepted must round-trip and validate again.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSubmit(bytes.NewReader(b), DefaultInputLimits); err != nil {
			t.Fatalf("accepted request does not round-trip: %v", err)
		}
	})
}
