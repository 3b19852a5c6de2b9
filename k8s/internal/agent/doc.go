// Package agent is Prescient's node agent (a DaemonSet; `prescient-k8s
// agent`). On its node it owns three things:
//
//   - Profiling: every container of every pod the node runs is found in
//     the kubepods cgroup hierarchy (cgroup v1 controllers or cgroup v2,
//     cgroupfs or systemd naming) and sampled every Step with
//     internal/profile's Sampler; the samples go to the embedded TSDB
//     (internal/store's Samples) under the container's id and signature.
//
//   - Runs: when a container ends (its cgroup goes, or its status says it
//     terminated), its samples are reported to the predictor as a finished
//     run of its signature (podsig, the webhook's owner kind). An
//     OOM-killed container's run ends with a sample at twice the limit it
//     died at, as internal/sched sizes an OOM retry: its next run is
//     predicted larger.
//
//   - Resize: a running container whose working set reaches ResizeAt of
//     its memory limit gets its limit (and request) raised through the
//     pod's resize subresource — in place, before the kernel OOM-kills it.
//
// The flow:
//
//	informer (pods on this node) ──Sync/Forget──► Agent ◄──Tick(now)── ticker
//	                                                │
//	          kubepods/…/pod<uid>/<container id> ◄──┤ profile.Sampler per container
//	          store.Samples (TSDB)            ◄─────┤ Append per tick
//	          predictor POST /v1/runs         ◄─────┤ finished runs (retried)
//	          pods/{name}/resize              ◄─────┘ memory limit raised in place
//
// The Agent is synchronous: Sync, Forget and Tick are called by Run (or a
// test); they are safe for concurrent use (one mutex guards the state) and
// make no API call while holding it.
package agent
