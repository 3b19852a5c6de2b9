package task

import "testing"

func TestMarkOOMKilled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rec       Record
		kills     uint64
		wantState State
		wantErr   string
	}{
		{
			name: "pipeline reported success", rec: Record{State: Succeeded, Limits: Limits{MemoryMB: 64}},
			kills: 1, wantState: Failed, wantErr: "killed for memory: 1 OOM kill in the task's cgroup (limit 64 MB)",
		},
		{
			name: "shell exited 137", rec: Record{State: Failed, Limits: Limits{MemoryMB: 1228.8}},
			kills: 3, wantState: Failed, wantErr: "killed for memory: 3 OOM kills in the task's cgroup (limit 1228.8 MB)",
		},
		{
			name: "limit rounded", rec: Record{State: Failed, Limits: Limits{MemoryMB: 1229.0000004}},
			kills: 2, wantState: Failed, wantErr: "killed for memory: 2 OOM kills in the task's cgroup (limit 1229 MB)",
		},
		{
			name: "no limit", rec: Record{State: Succeeded},
			kills: 1, wantState: Failed, wantErr: "killed for memory: 1 OOM kill in the task's cgroup (no memory limit)",
		},
		{
			name: "count unknown", rec: Record{State: Failed, Limits: Limits{MemoryMB: 64}},
			kills: 0, wantState: Failed, wantErr: "killed for memory: OOM kills in the task's cgroup (limit 64 MB)",
		},
		{
			name: "cancelled stays cancelled", rec: Record{State: Cancelled, Limits: Limits{MemoryMB: 64}},
			kills: 1, wantState: Cancelled, wantErr: "killed for memory: 1 OOM kill in the task's cgroup (limit 64 MB)",
		},
		{
			name: "earlier error kept", rec: Record{State: Failed, Error: "exit status unknown", Limits: Limits{MemoryMB: 64}},
			kills: 1, wantState: Failed, wantErr: "exit status unknown; killed for memory: 1 OOM kill in the task's cgroup (limit 64 MB)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rec
			r.MarkOOMKilled(tc.kills)
			if !r.OOMKilled || r.State != tc.wantState || r.Error != tc.wantErr {
				t.Errorf("got oom_killed %v, state %s, error %q; want true, %s, %q", r.OOMKilled, r.State, r.Error, tc.wantState, tc.wantErr)
			}
		})
	}
}
