// Package scheduler is Prescient's plugin for the kube-scheduler framework
// (k8s.io/kube-scheduler/framework), compiled into cmd/prescient-scheduler
// as a second scheduler profile that pods opt into by schedulerName.
//
// It places pods by their predicted curves (time-aware packing): each node
// has a calendar (core.Calendar, over internal/ledger) of the plans of the
// pods on it — a curve anchored at the pod's start for a pod with a
// trusted prediction, its requests held flat for any other — and a pod
// fits a node when its own curve, started now, fits beside them at every
// instant. Two pods whose peaks do not overlap share a node that neither
// declared requests nor whole-run predictions would let them share.
//
//	PreFilter  plan: predictor → per-container curves → core.Plan (or requests)
//	Filter     calendar(node).Fits(plan, now): fits started now? (no search for later)
//	PostFilter a pod that fits nowhere: earliest fit where only time collides → retrier
//	Score      pack (default) or spread, by the room left at the pod's peaks
//	Reserve    calendar(node).Reserve       soft reservation
//	Unreserve  calendar(node).Release       idempotent
//	Permit     calendar(node).Commit        curve kept for the pod's life / requests hard
//	Bind       binding + placement.Annotation in one API call (requests: DefaultBinder)
//
// The calendars follow the scheduler's own view of each node (its NodeInfo
// snapshot): pods they do not hold are adopted, pods gone are released, so
// a restart rebuilds them from the pods' placement records.
package scheduler
