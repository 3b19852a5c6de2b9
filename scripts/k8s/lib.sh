# Shared by scripts/k8s/{up,down,install}.sh: names, paths, ports and the
# start/stop-by-PID helpers of one local cluster. Sourced, not run.
#
# A cluster is named (PRESCIENT_K8S_NAME, default "local"); everything it
# owns is under its state directory, and its ports, node name, cgroup root,
# bridge and pod subnet derive from the name's settings, so two clusters
# (a developer's and the tests') can run side by side.
#
#   PRESCIENT_K8S_NAME       cluster name (default local)
#   PRESCIENT_K8S_STATE      state root (default ${XDG_STATE_HOME:-$HOME/.local/state}/prescient-k8s)
#   PRESCIENT_K8S_PORT_BASE  first of 12 TCP ports (default 16400; the tests use 26400)
#   PRESCIENT_K8S_POD_NET    pod subnet prefix, a /24 (default 10.88.0; the tests use 10.89.0)

k8s_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
k8s_root=$(cd "$k8s_here/../.." && pwd)

name=${PRESCIENT_K8S_NAME:-local}
if ! [[ $name =~ ^[a-z0-9]{1,10}$ ]]; then
	echo "PRESCIENT_K8S_NAME=$name: want 1-10 lower-case letters or digits" >&2
	exit 2
fi
state_root=${PRESCIENT_K8S_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/prescient-k8s}
S=$state_root/$name
BIN=$k8s_root/bin/k8s

port_base=${PRESCIENT_K8S_PORT_BASE:-16400}
ETCD_PORT=$((port_base + 0))
ETCD_PEER_PORT=$((port_base + 1))
API_PORT=$((port_base + 2))
KUBELET_PORT=$((port_base + 3))
KUBELET_HEALTHZ_PORT=$((port_base + 4))
KCM_PORT=$((port_base + 5))
SCHED_PORT=$((port_base + 6))
WEBHOOK_PORT=$((port_base + 7))
PREDICTOR_PORT=$((port_base + 8))
PSCHED_PORT=$((port_base + 9))      # prescient-scheduler's health/metrics
SCHED_DEBUG_PORT=$((port_base + 10)) # the Prescient plugin's calendars (JSON)
AGENT_PORT=$((port_base + 11))       # the node agent's /stats

pod_net=${PRESCIENT_K8S_POD_NET:-10.88.0}
POD_CIDR=$pod_net.0/24
BRIDGE_IP=$pod_net.1
SERVICE_CIDR=10.96.0.0/24
NODE_NAME=prescient-$name
BRIDGE=pk8s-$name
CGROUP_ROOT=/prescient-k8s-$name
KUBECONFIG_ADMIN=$S/kubeconfig

# The kernel settings the kubelet (and nothing else here) may change;
# up.sh records them and down.sh restores them.
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward)

# HOST_ORIG records what the host had before the first of the clusters
# under the state root came up; the last one down restores it.
HOST_ORIG=$state_root/host.orig

# others_running: another cluster under the state root has a live kubelet
# or containerd.
others_running() {
	local d n pid
	for d in "$state_root"/*/; do
		[[ ${d%/} == "$S" ]] && continue
		for n in kubelet containerd; do
			[[ -f $d/pids/$n.pid ]] || continue
			pid=$(<"$d/pids/$n.pid")
			[[ -n $pid && -d /proc/$pid ]] && return 0
		done
	done
	return 1
}

log() { printf '%s k8s[%s]: %s\n' "$(date +%T)" "$name" "$*"; }
die() {
	log "FAILED: $*" >&2
	exit 1
}

# node_ip is the machine's own IPv4 address on its default-route interface
# (the kubelet refuses a loopback node IP). No traffic is sent: the route
# lookup is local.
node_ip() {
	local ip
	ip=$(ip -4 route get 198.51.100.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
	[[ -n $ip ]] || ip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
	[[ -n $ip ]] || die "no global IPv4 address for the node"
	echo "$ip"
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

pidfile() { echo "$S/pids/$1.pid"; }

# running NAME: the process recorded for NAME is alive and is the binary we started.
running() {
	local f pid
	f=$(pidfile "$1")
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ -n $pid && -d /proc/$pid ]] || return 1
	[[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"$2"* ]]
}

# start NAME BINARY ARGS...: start in its own session, output to logs/NAME.log.
start() {
	local n=$1
	shift
	mkdir -p "$S/pids" "$S/logs"
	if running "$n" "$1"; then
		log "$n already running (pid $(<"$(pidfile "$n")"))"
		return 0
	fi
	setsid "$@" >>"$S/logs/$n.log" 2>&1 </dev/null &
	echo $! >"$(pidfile "$n")"
	log "started $n (pid $!)"
}

# stop NAME BINARY [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 15).
stop() {
	local n=$1 bin=$2 secs=${3:-15} pid
	if ! running "$n" "$bin"; then
		rm -f "$(pidfile "$n")"
		return 0
	fi
	pid=$(<"$(pidfile "$n")")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		[[ -d /proc/$pid ]] || break
		sleep 0.1
	done
	if [[ -d /proc/$pid ]]; then
		log "$n did not stop in ${secs}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.1
		done
	fi
	rm -f "$(pidfile "$n")"
	log "stopped $n"
}

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local t0=$SECONDS
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - t0 > secs)); then
			die "$what not ready after ${secs}s (logs: $S/logs)"
		fi
		sleep 0.5
	done
	log "$what ready after $((SECONDS - t0))s"
}
