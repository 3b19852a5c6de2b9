package task

import (
	"testing"
	"time"
)

func TestEndOutcome(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ran := End{Started: true, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second)}
	with := func(f func(e *End)) End { e := ran; f(&e); return e }
	tests := []struct {
		name      string
		end       End
		state     State
		kind      ErrorKind
		code      int // -1: no exit code
		oom       bool
		wantError bool
	}{
		{"exit 0", ran, Succeeded, KindNone, 0, false, false},
		{"exit 3", with(func(e *End) { e.Code = 3 }), Failed, KindExit, 3, false, false},
		{"signal", with(func(e *End) { e.Code, e.Signal = -1, "SIGSEGV" }), Failed, KindSignal, -1, false, false},
		{"oom of the main process", with(func(e *End) { e.Code, e.Signal, e.OOMKills = -1, "SIGKILL", 1 }), Failed, KindOOM, -1, true, true},
		{"oom of a child, shell exits 137", with(func(e *End) { e.Code, e.OOMKills = 137, 1 }), Failed, KindOOM, 137, true, true},
		{"oom in a pipeline that exits 0", with(func(e *End) { e.OOMKills = 2 }), Failed, KindOOM, 0, true, true},
		{"not found", End{StartError: "program: no such file", StartKind: KindNotFound}, Failed, KindNotFound, -1, false, true},
		{"start failed", End{StartError: "write cpu.max: refused"}, Failed, KindStart, -1, false, true},
		{"cancelled before start", End{StartError: "cancelled", Cancelled: true}, Cancelled, KindCancelled, -1, false, true},
		{"cancelled while running", with(func(e *End) { e.Code, e.Signal, e.Killed, e.Cancelled = -1, "SIGKILL", true, true }), Cancelled, KindCancelled, -1, false, false},
		{"cancel that came too late", with(func(e *End) { e.Cancelled = true }), Succeeded, KindNone, 0, false, false},
		{"cancel beats oom", with(func(e *End) { e.Code, e.Signal, e.Killed, e.Cancelled, e.OOMKills = -1, "SIGKILL", true, true, 1 }), Cancelled, KindCancelled, -1, false, false},
		{"lost", End{Started: true, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second), Lost: "its shim died"}, Failed, KindLost, -1, false, true},
		{"lost and cancelled", End{Lost: "its shim died", Cancelled: true}, Cancelled, KindCancelled, -1, false, true},
		{"evicted", with(func(e *End) { e.Code, e.Signal, e.Killed, e.Evicted = -1, "SIGKILL", true, true }), Failed, KindEvicted, -1, false, true},
		{"wait error", with(func(e *End) { e.WaitError = "wait: boom" }), Failed, KindInternal, -1, false, true},
		{"status unknown", with(func(e *End) { e.Code, e.Unknown = -1, true }), Failed, KindLost, -1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			o := tt.end.Apply(&r)
			if o.State != tt.state || o.Kind != tt.kind || o.OOMKilled != tt.oom || (o.Error != "") != tt.wantError {
				t.Errorf("outcome = %+v, want state %s kind %q oom %v error %v", o, tt.state, tt.kind, tt.oom, tt.wantError)
			}
			switch {
			case tt.code < 0 && r.ExitCode != nil:
				t.Errorf("exit code %d, want none", *r.ExitCode)
			case tt.code >= 0 && (r.ExitCode == nil || *r.ExitCode != tt.code):
				t.Errorf("exit code %v, want %d", r.ExitCode, tt.code)
			}
			if r.State != o.State || r.ErrorKind != o.Kind || r.FinishedAt == nil {
				t.Errorf("record not written: %+v", r)
			}
			if tt.end.Started && r.DurationS != 2 {
				t.Errorf("duration %v, want 2", r.DurationS)
			}
		})
	}
}
