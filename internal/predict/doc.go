// Package predict predicts a task's resource curves from its signature's
// history: per resource.Dim (CPU cores, memory MiB, IO ops/s, network Mbps) a
// short-horizon curve step by step while the run goes, a whole-run curve
// by time since start and the run's duration, each point as a median and
// an upper quantile, and which model answered.
//
// Forecasters are online, one dimension of one run at a time:
//
//	LastValue          the last sample
//	WindowMax          Autopilot's moving-window max (24 steps)
//	DecayedPercentile  Kubernetes VPA's decaying exponential histogram (p95)
//	Envelope           last value corrected by the signature's same-time-of-day
//	                   history, with an online uncertainty scale
//	Seq                a GRU/LSTM (internal/rnn) over history-aware features
//	Selector           Autopilot's ML recommender: serves, per signature, the
//	                   candidate with the lowest decayed cost (under-provisioning
//	                   priced far above slack, plus a cost per limit change)
//
// Each candidate's safety margin is calibrated offline (package eval) so
// that ≤ 1 % of next-step samples exceed the allocation.
//
// Engine is the daemon's Predictor: it keeps each signature's recent runs,
// answers through the cold-start chain (exact signature → same code at
// other input sizes, scaled by a least-squares fit of usage on input size
// → same code → a global prior with a conservative margin) and follows
// live runs through Sessions. Engine is safe for concurrent use;
// forecasters and Sessions are not.
package predict
