#!/usr/bin/env bash
# Stops the local cluster started by up.sh and undoes what it did to the
# host: its pods and containers, every process it started (by PID), the
# mounts under its state directory, its bridge, its cgroups, the kernel
# settings the kubelet changed, /var/log/containers if it made it.
#
# Usage: scripts/k8s/down.sh [--purge]   (--purge also deletes the state
#        directory: etcd's data, the PKI, the predictor's history)
# Safe to run twice, and after a failed up.sh.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

purge=0
[[ ${1:-} == --purge ]] && purge=1
if [[ ! -d $S ]]; then
	log "no cluster state at $S"
	exit 0
fi
ctr() { timeout 30 "$BIN/ctr" --address "$S/run/containerd.sock" -n k8s.io "$@"; }

# 1. No controller recreates or schedules pods; then the kubelet tears the
#    pods down (their sandboxes, network namespaces, IP addresses).
stop kube-controller-manager "$BIN/kube-controller-manager"
stop kube-scheduler "$BIN/kube-scheduler"
if running kube-apiserver "$BIN/kube-apiserver" && running kubelet "$BIN/kubelet"; then
	log "deleting pods"
	timeout 60 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" delete pods --all -A --grace-period=1 --wait=true >/dev/null 2>&1 ||
		log "pods not all deleted within 60s; their containers are killed below"
fi
stop kubelet "$BIN/kubelet" 30

# 2. Whatever containers are left: killed and deleted through containerd.
if running containerd "$BIN/containerd"; then
	for id in $(ctr tasks ls -q 2>/dev/null); do
		ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1
	done
	sleep 1
	for id in $(ctr tasks ls -q 2>/dev/null); do
		ctr tasks delete -f "$id" >/dev/null 2>&1
	done
	for id in $(ctr containers ls -q 2>/dev/null); do
		ctr containers delete "$id" >/dev/null 2>&1
	done
fi
stop containerd "$BIN/containerd" 30
# Shims outlive containerd by design; ours are the processes running our
# shim binary with our containerd's socket (matched by PID, one by one).
for p in /proc/[0-9]*; do
	exe=$(readlink "$p/exe" 2>/dev/null) || continue
	[[ $exe == "$(readlink -f "$BIN")/containerd-shim-runc-v2" ]] || continue
	tr '\0' ' ' <"$p/cmdline" | grep -q -- "$S/run/containerd.sock" || continue
	log "killing leftover shim ${p#/proc/}"
	kill -KILL "${p#/proc/}" 2>/dev/null
done
stop kube-apiserver "$BIN/kube-apiserver"
stop etcd "$BIN/etcd"
# Prescient processes, if any were run outside the cluster (tests).
for f in "$S"/pids/*.pid; do
	[[ -e $f ]] || continue
	n=$(basename "$f" .pid)
	stop "$n" "$S/bin/"
done

# 3. Mounts under the state directory (container rootfs, netns, volumes), deepest first.
findmnt -rn -o TARGET | grep -F "$S/" | sort -r | while read -r m; do
	umount -l "$m" 2>/dev/null || log "could not unmount $m"
done

# 4. The bridge, the cgroups.
ip link del "$BRIDGE" 2>/dev/null
for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
	root=${d%/}$CGROUP_ROOT
	[[ -d $root ]] || continue
	find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
	[[ -d $root ]] && log "cgroup $root not removed (processes left in it?)"
done

# 5. Host settings back to what they were, when no other cluster runs.
if [[ -f $HOST_ORIG ]] && ! others_running; then
	while read -r kind key val; do
		case $kind in
		sysctl) [[ $(cat "/proc/sys/$key") == "$val" ]] || { echo "$val" >"/proc/sys/$key" && log "restored $key = $val"; } ;;
		dir)
			# The kubelet's links into the pod logs; shim sockets' directory.
			[[ $key == /var/log/containers && -d $key ]] && find "$key" -maxdepth 1 -type l -lname "$state_root/*" -delete 2>/dev/null
			[[ $val == no && -d $key ]] && { rmdir "$key" 2>/dev/null && log "removed $key" || log "$key left: not empty"; }
			;;
		esac
	done <"$HOST_ORIG"
	rm -f "$HOST_ORIG"
fi

if ((purge)); then
	rm -rf "$S"
	log "down; state purged"
else
	log "down (state kept in $S; --purge deletes it)"
fi
exit 0
