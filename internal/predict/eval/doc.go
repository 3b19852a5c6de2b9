// Package eval is the offline evaluation behind "prescient eval": it
// replays real traces (internal/trace) through the predictor the daemon
// runs (predict.Engine) and through each of its candidates and baselines
// alone, under one protocol, so that figures are comparable and describe
// the running system.
//
// Protocol (issue #4): a test run is scored at steps t = 24 … n−7 (0-based,
// n samples); at each the model sets an allocation for step t+1 from the
// run's samples up to t, every earlier run of the same identity (from
// either file) and what it learned from the training runs. Each model's
// safety margin is set on the training runs alone so that ≤ 1 % of their
// next-step samples exceed the allocation; every allocation is at least
// predict.Config.MinAllocation of the dimension's mean training usage. On
// the test runs the report gives slack = Σ(allocation − usage)/Σ usage,
// the violation rate (usage > allocation) and the relative MAE of the p50
// forecast at horizons 1…6 (Σ|p50 − usage| / Σ usage); for the engine also
// the violation rate per signature and the enqueue-time whole-run curves
// of each whole-run model (issue #10).
//
// Run is the CLI entry point for traces; Evaluate works on runs already
// read; RunHistory replays a daemon's own history (eval --state-dir).
package eval
