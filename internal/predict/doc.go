// Package predict predicts a task's resource curves from its signature's
// history and the node's load: per resource.Dim (CPU cores, memory MiB,
// IO ops/s, network Mbps) a whole-run curve by time since start with the
// run's duration, which sizes the reservation before the run starts, and a
// short-horizon curve step by step while it runs, each point as a median
// and an upper quantile (or allocation), and which model answered.
//
// Engine is the one predictor: the daemon runs it and `prescient eval`
// scores it (package eval), with the same code, margins and selection.
//
// Before a run starts (Engine.Whole), two whole-run candidates:
//
//	history   per-bucket statistics of the signature's earlier runs
//	          (median of bucket means, max of bucket maxima), durations
//	seq       RunModel: a GRU (internal/rnn) over the signature's runs that
//	          reads each run's duration, means and peaks and the node's load
//	          during it, and the load the new run starts under, and predicts
//	          quantiles of the new run's as corrections of the history
//	          statistic; the curve keeps the history's shape in progress
//	          and is stretched in time by the predicted duration (a busy node
//	          stretches a CPU-bound run and lowers its rate)
//
// AddRun scores both on every finished run (pinball loss at the upper
// quantile, decayed per signature, persisted with MarshalState) and keeps
// the margin each needed; a signature is served by its better candidate,
// with a conformal margin from its own runs (shrunk to the pooled one when
// they are few). Cold signatures borrow: exact signature → same code at
// other input sizes, scaled by a least-squares fit of usage on input size
// → same code → a global prior with a conservative margin.
//
// While a run goes (Session), per dimension, online candidates:
//
//	LastValue          the last sample
//	WindowMax          Autopilot's moving-window max (24 steps)
//	DecayedPercentile  Kubernetes VPA's decaying exponential histogram (p95)
//	Envelope           last value corrected by the signature's same-time-of-day
//	                   history, with an online uncertainty scale
//	Seq                a GRU/LSTM (internal/rnn) over history-aware features
//	                   and the node's load at each step
//	Selector           Autopilot's ML recommender: serves, per signature, the
//	                   candidate with the lowest decayed cost (under-provisioning
//	                   priced far above slack, plus a cost per limit change)
//
// Engine.Train fits the sequence models on the runs the engine keeps and
// calibrates every candidate's margin (Calibrate: ≤ Config.Violation of
// the next-step samples above the allocation) and the served allocation's
// margin per regime of relative uncertainty (RegimeMargin), and installs
// them whole; MarshalModels persists them.
//
// Engine is safe for concurrent use; forecasters and Sessions are not.
package predict
