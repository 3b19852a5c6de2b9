// Package e2e tests Prescient's Kubernetes parts on a real single-node
// cluster brought up by scripts/k8s/up.sh (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, runc and a kubelet,
// all built from the module proxy by scripts/k8s/build.sh). It runs under
// `make test-k8s` (PRESCIENT_K8S_E2E=1, as root) and skips, saying why,
// everywhere else. The test cluster has its own name, ports and pod
// subnet, so it runs beside a developer's `make k8s-up` cluster;
// PRESCIENT_K8S_KEEP=1 leaves it running for a look.
package e2e
