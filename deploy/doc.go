// Package deploy holds what an operator installs beside the binary — the
// systemd unit, the .deb's configuration and maintainer scripts, the
// example Prometheus and Grafana files — and the tests that install the
// package built by make package and check them. It has no Go code of its
// own.
package deploy
