#!/usr/bin/env bash
# Brings up a real single-node Kubernetes cluster on this machine, offline:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd
# (+ runc, CNI bridge) and a kubelet, built by build.sh; images made locally
# and imported (no registry); then installs Prescient (install.sh) unless
# --no-prescient. Every process is started by PID under the state directory
# (see lib.sh); down.sh stops them and undoes every change to the host.
#
# Usage: scripts/k8s/up.sh [--no-prescient]      (root; cgroup v1 or v2)
# Prints, at the end, how to use the cluster.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

with_prescient=1
[[ ${1:-} == --no-prescient ]] && with_prescient=0

[[ $(id -u) == 0 ]] || die "needs root (cgroups, mounts, network namespaces, the kubelet)"
for tool in curl ip setsid flock findmnt; do
	command -v "$tool" >/dev/null || die "$tool is missing"
done
grep -qw overlay /proc/filesystems || die "the kernel has no overlay filesystem (containerd's snapshotter needs it)"

t_start=$SECONDS
"$k8s_here/build.sh"
t_built=$SECONDS

mkdir -p "$S"/{pids,logs,pki,etcd,kubelet,containerd,cni/net.d,cni/ipam,run,images,bin,prescient}
NODE_IP=$(node_ip)
echo "$NODE_IP" >"$S/node-ip"

# What the host had before the first cluster came up, for down.sh.
if [[ ! -f $HOST_ORIG ]]; then
	{
		for s in "${SYSCTLS[@]}"; do echo "sysctl $s $(cat "/proc/sys/$s")"; done
		for d in /var/log/containers /run/containerd/s /run/containerd; do
			[[ -d $d ]] && echo "dir $d yes" || echo "dir $d no"
		done
	} >"$HOST_ORIG"
fi

# --- the project's own binary (certs, images, predictor, webhook) ----------
log "building prescient-k8s"
(cd "$k8s_root/k8s" && CGO_ENABLED=0 nice -n 15 go build -trimpath -o "$S/bin/prescient-k8s" ./cmd/prescient-k8s)
log "building prescient-scheduler (kube-scheduler with the Prescient plugin)"
(cd "$k8s_root/k8s" && CGO_ENABLED=0 nice -n 15 go build -trimpath -o "$S/bin/prescient-scheduler" ./cmd/prescient-scheduler)
PK=$S/bin/prescient-k8s

# --- PKI -------------------------------------------------------------------
pki=$S/pki
if [[ ! -f $pki/ca.crt ]]; then
	log "making the cluster PKI"
	$PK certs ca --out "$pki/ca" --cn "prescient-$name-ca"
	$PK certs issue --ca "$pki/ca" --out "$pki/apiserver" --cn kube-apiserver --server \
		--ip 127.0.0.1 --ip "$NODE_IP" --ip 10.96.0.1 --dns localhost --dns kubernetes \
		--dns kubernetes.default --dns kubernetes.default.svc --dns kubernetes.default.svc.cluster.local
	$PK certs issue --ca "$pki/ca" --out "$pki/admin" --cn prescient-admin --org system:masters --client
	$PK certs issue --ca "$pki/ca" --out "$pki/apiserver-kubelet-client" --cn kube-apiserver-kubelet-client --org system:masters --client
	$PK certs issue --ca "$pki/ca" --out "$pki/controller-manager" --cn system:kube-controller-manager --client
	$PK certs issue --ca "$pki/ca" --out "$pki/scheduler" --cn system:kube-scheduler --client
	$PK certs issue --ca "$pki/ca" --out "$pki/kubelet-client" --cn "system:node:$NODE_NAME" --org system:nodes --client
	$PK certs issue --ca "$pki/ca" --out "$pki/kubelet" --cn "$NODE_NAME" --server --ip "$NODE_IP" --ip 127.0.0.1 --dns "$NODE_NAME"
	$PK certs ca --out "$pki/sa" --cn service-accounts
	$PK certs pubkey --in "$pki/sa" --out "$pki/sa.pub"
fi

kubeconfig() { # FILE CERTBASE
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: prescient-$name
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $pki/ca.crt
users:
- name: user
  user:
    client-certificate: $2.crt
    client-key: $2.key
contexts:
- name: prescient-$name
  context: {cluster: prescient-$name, user: user}
current-context: prescient-$name
EOF
}
kubeconfig "$KUBECONFIG_ADMIN" "$pki/admin"
kubeconfig "$S/controller-manager.kubeconfig" "$pki/controller-manager"
kubeconfig "$S/scheduler.kubeconfig" "$pki/scheduler"
kubeconfig "$S/kubelet.kubeconfig" "$pki/kubelet-client"

# --- control plane ---------------------------------------------------------
start etcd "$BIN/etcd" --name default --data-dir "$S/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver "$BIN/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none --secure-port "$API_PORT" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
	--service-account-issuer "https://kubernetes.default.svc.cluster.local" \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--service-cluster-ip-range "$SERVICE_CIDR" \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--enable-aggregator-routing=true --allow-privileged=true --profiling=false \
	--cert-dir "$S/run/apiserver-certs" --v 1
wait_for kube-apiserver 180 curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$API_PORT/readyz"

start kube-controller-manager "$BIN/kube-controller-manager" \
	--kubeconfig "$S/controller-manager.kubeconfig" \
	--authentication-kubeconfig "$S/controller-manager.kubeconfig" --authorization-kubeconfig "$S/controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$S/run/kcm-certs" \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
	--use-service-account-credentials=true --leader-elect=false \
	--service-cluster-ip-range "$SERVICE_CIDR" --cluster-name "prescient-$name" --profiling=false --v 1
start kube-scheduler "$BIN/kube-scheduler" \
	--kubeconfig "$S/scheduler.kubeconfig" \
	--authentication-kubeconfig "$S/scheduler.kubeconfig" --authorization-kubeconfig "$S/scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$S/run/scheduler-certs" \
	--leader-elect=false --profiling=false --v 1
wait_for kube-controller-manager 120 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler 120 curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"

# --- node: cgroups, bridge, containerd -------------------------------------
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
	mkdir -p "/sys/fs/cgroup$CGROUP_ROOT"
else
	for d in /sys/fs/cgroup/*/; do
		d=${d%/}
		[[ $(basename "$d") == unified || -f $d/cgroup.procs ]] || continue
		mkdir -p "$d$CGROUP_ROOT"
		if [[ $(basename "$d") == cpuset ]]; then
			cat "$d/cpuset.cpus" >"$d$CGROUP_ROOT/cpuset.cpus"
			cat "$d/cpuset.mems" >"$d$CGROUP_ROOT/cpuset.mems"
		fi
	done
fi

# The bridge is made here, with the gateway address, so that the CNI bridge
# plugin runs with isGateway=false and leaves ip_forward alone: pods reach
# this machine and each other, nothing beyond (no default route, no NAT).
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
	ip link add "$BRIDGE" type bridge
	ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up
cat >"$S/cni/net.d/10-prescient.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "prescient-$name",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$S/cni/ipam",
             "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "$pod_net.2", "gateway": "$BRIDGE_IP"}]]}
  }]
}
EOF

# Without CAP_SYS_RESOURCE (as in some VMs and containers, root included)
# no process may lower its oom_score_adj, and runc fails the kubelet's
# -998 for the pod sandbox; containerd then clamps it at its own.
restrict_oom=false
capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
if ((((0x$capeff >> 24) & 1) == 0)); then
	restrict_oom=true
	log "no CAP_SYS_RESOURCE: containerd restricts oom_score_adj to its own (restrict_oom_score_adj)"
fi
cat >"$S/containerd/config.toml" <<EOF
version = 3
root = "$S/containerd/root"
state = "$S/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
  "io.containerd.nri.v1.nri"]

[grpc]
  address = "$S/run/containerd.sock"
[ttrpc]
  address = "$S/run/containerd.sock.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "docker.io/local/pause:1"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = $restrict_oom
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$BIN"]
    conf_dir = "$S/cni/net.d"
    use_internal_loopback = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$BIN/runc"
        Root = "$S/run/runc"
        SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
PATH=$BIN:$PATH start containerd "$BIN/containerd" --config "$S/containerd/config.toml"
ctr() { "$BIN/ctr" --address "$S/run/containerd.sock" "$@"; }
wait_for containerd 60 ctr version

# --- images ----------------------------------------------------------------
"$k8s_here/images.sh"

# --- kubelet ---------------------------------------------------------------
cgroup_v1=false
[[ -f /sys/fs/cgroup/cgroup.controllers ]] || cgroup_v1=true
cat >"$S/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine may run cgroup v1, which the kubelet refuses unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$S/run/containerd.sock
imageServiceEndpoint: unix://$S/run/containerd.sock
podLogsDir: $S/kubelet/pod-logs
# Images are imported, never pulled: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
failSwapOn: false
# No DNS for pods: they talk to nothing beyond this machine.
resolvConf: ""
clusterDomain: cluster.local
serializeImagePulls: false
maxPods: 110
EOF
start kubelet "$BIN/kubelet" --config "$S/kubelet/config.yaml" --kubeconfig "$S/kubelet.kubeconfig" \
	--root-dir "$S/kubelet/root" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
node_ready() {
	[[ $(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
wait_for "node $NODE_NAME" 180 node_ready
t_cluster=$SECONDS

if ((with_prescient)); then
	"$k8s_here/install.sh"
fi

log "up in $((SECONDS - t_start))s (binaries $((t_built - t_start))s, cluster $((t_cluster - t_built))s, Prescient $((SECONDS - t_cluster))s)"
echo "$((t_built - t_start)) $((t_cluster - t_built)) $((SECONDS - t_cluster))" >"$S/up-times"
cat <<EOF

  Cluster "$name" is up (node $NODE_NAME, cgroup v1: $cgroup_v1).
    export KUBECONFIG=$KUBECONFIG_ADMIN
    $BIN/kubectl get nodes,pods -A
  Local images (imagePullPolicy: Never): docker.io/local/busybox:1, docker.io/local/prescient-k8s:dev
  Opt a namespace in:  kubectl label namespace NS prescient.io/predict=enabled
  Opt a pod in:        label it prescient.io/predict=true
  Place by curves:     spec.schedulerName: prescient   (calendars: curl 127.0.0.1:$SCHED_DEBUG_PORT/calendars)
  Node agent:          curl 127.0.0.1:$AGENT_PORT/stats
  Logs: $S/logs    Stop: scripts/k8s/down.sh (or make k8s-down)
EOF
