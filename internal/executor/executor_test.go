package executor

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"

	"github.com/prescient-sched/prescient/internal/task"
)

func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   task.Limits
		want cgLimits
		err  error
	}{
		{name: "unlimited", in: task.Limits{}, want: cgLimits{}},
		{name: "quarter core", in: task.Limits{CPUCores: 0.25}, want: cgLimits{cpuQuotaUS: 25_000}},
		{name: "four cores", in: task.Limits{CPUCores: 4}, want: cgLimits{cpuQuotaUS: 400_000}},
		{name: "kernel minimum", in: task.Limits{CPUCores: 0.01}, want: cgLimits{cpuQuotaUS: 1_000}},
		{name: "below kernel minimum", in: task.Limits{CPUCores: 0.009}, err: ErrUnsupportedLimit},
		{name: "above kernel maximum", in: task.Limits{CPUCores: 1e9}, err: ErrUnsupportedLimit},
		{name: "memory", in: task.Limits{MemoryMB: 64}, want: cgLimits{memBytes: 64 << 20}},
		{name: "fractional memory", in: task.Limits{MemoryMB: 0.5}, want: cgLimits{memBytes: 512 << 10}},
		{name: "memory below a page", in: task.Limits{MemoryMB: 0.001}, err: ErrUnsupportedLimit},
		{name: "largest valid memory", in: task.Limits{MemoryMB: 1e12}, want: cgLimits{memBytes: 1e12 * (1 << 20)}},
		{name: "iops rounds", in: task.Limits{IOPS: 99.6}, want: cgLimits{iops: 100}},
		{name: "iops below one", in: task.Limits{IOPS: 0.4}, err: ErrUnsupportedLimit},
		{name: "iops clamps to uint32", in: task.Limits{IOPS: 1e11}, want: cgLimits{iops: math.MaxUint32}},
		{name: "pids and net pass through", in: task.Limits{Pids: 7, NetMbps: 2.5}, want: cgLimits{pids: 7, netMbps: 2.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := translate(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStartOptionsValidate(t *testing.T) {
	ok := StartOptions{ID: "01HXYZ-abc_1.2", Argv: []string{"true"}}
	for _, tc := range []struct {
		name string
		edit func(*StartOptions)
		err  error
	}{
		{"valid", func(*StartOptions) {}, nil},
		{"empty id", func(o *StartOptions) { o.ID = "" }, ErrInvalid},
		{"dot", func(o *StartOptions) { o.ID = "." }, ErrInvalid},
		{"dotdot", func(o *StartOptions) { o.ID = ".." }, ErrInvalid},
		{"slash", func(o *StartOptions) { o.ID = "a/b" }, ErrInvalid},
		{"space", func(o *StartOptions) { o.ID = "a b" }, ErrInvalid},
		{"newline", func(o *StartOptions) { o.ID = "a\nb" }, ErrInvalid},
		{"too long", func(o *StartOptions) { o.ID = strings.Repeat("a", 129) }, ErrInvalid},
		{"longest", func(o *StartOptions) { o.ID = strings.Repeat("a", 128) }, nil},
		{"no argv", func(o *StartOptions) { o.Argv = nil }, ErrInvalid},
		{"empty program", func(o *StartOptions) { o.Argv = []string{""} }, ErrInvalid},
		{"negative cpu", func(o *StartOptions) { o.Limits.CPUCores = -1 }, ErrInvalid},
		{"nan memory", func(o *StartOptions) { o.Limits.MemoryMB = math.NaN() }, ErrInvalid},
		{"negative pids", func(o *StartOptions) { o.Limits.Pids = -1 }, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			if err := o.validate(); !errors.Is(err, tc.err) {
				t.Errorf("validate = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       Config
		wantRoot string
		err      error
	}{
		{"defaults", Config{}, DefaultRoot, nil},
		{"nested root", Config{Root: "a/b"}, "a/b", nil},
		{"absolute root", Config{Root: "/a"}, "", ErrInvalid},
		{"escaping root", Config{Root: "../a"}, "", ErrInvalid},
		{"unclean root", Config{Root: "a//b"}, "", ErrInvalid},
		{"device", Config{IODevice: "253:0"}, DefaultRoot, nil},
		{"bad device", Config{IODevice: "vda"}, "", ErrInvalid},
		{"bad device numbers", Config{IODevice: "a:b"}, "", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in
			err := c.validate()
			if !errors.Is(err, tc.err) {
				t.Fatalf("validate = %v, want %v", err, tc.err)
			}
			if err == nil && (c.Root != tc.wantRoot || c.Logger == nil) {
				t.Errorf("root %q logger %v, want %q and a logger", c.Root, c.Logger, tc.wantRoot)
			}
		})
	}
}

func TestExitString(t *testing.T) {
	for _, tc := range []struct {
		x    Exit
		want string
	}{
		{Exit{Code: 0}, "exit 0"},
		{Exit{Code: 3}, "exit 3"},
		{Exit{Code: -1, Signal: syscall.SIGKILL, OOMKilled: true, OOMKills: 1}, "signal killed (OOM: 1 kill in the cgroup)"},
		{Exit{Code: 137, OOMKilled: true, OOMKills: 2}, "exit 137 (OOM: 2 kills in the cgroup)"},
		{Exit{Code: 0, OOMKilled: true}, "exit 0 (OOM)"},
		{Exit{Code: -1, Unknown: true}, "exit unknown"},
	} {
		if got := tc.x.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.x, got, tc.want)
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{V1: "v1", V2: "v2", Hybrid: "hybrid", 9: "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d) = %q, want %q", int(m), got, want)
		}
	}
}
