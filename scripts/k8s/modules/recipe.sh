# What scripts/k8s/build.sh builds, in order, with which flags; sourced by it.
# Part of the cache key: any change here rebuilds everything.
# build MODULE NAME PACKAGE [go build flags...]

kver=v1.37.2
kldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$kver -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"

export CGO_ENABLED=0
build etcd etcd go.etcd.io/etcd/server/v3 -ldflags "-s -w"
build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver -ldflags "$kldflags"
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager -ldflags "$kldflags"
build kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler -ldflags "$kldflags"
build kubernetes kubelet k8s.io/kubernetes/cmd/kubelet -ldflags "$kldflags"
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl -ldflags "$kldflags"
build cni bridge github.com/containernetworking/plugins/plugins/main/bridge -ldflags "-s -w"
build cni loopback github.com/containernetworking/plugins/plugins/main/loopback -ldflags "-s -w"
build cni host-local github.com/containernetworking/plugins/plugins/ipam/host-local -ldflags "-s -w"
export CGO_ENABLED=1
cver=v2.4.2
cldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$cver"
build containerd containerd github.com/containerd/containerd/v2/cmd/containerd -ldflags "$cldflags"
build containerd containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 -ldflags "$cldflags"
build containerd ctr github.com/containerd/containerd/v2/cmd/ctr -ldflags "$cldflags"
build runc runc github.com/opencontainers/runc -tags seccomp -ldflags "-s -w -X main.version=1.5.3"
