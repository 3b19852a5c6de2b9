#!/usr/bin/env bash
# Builds the local cluster's binaries once per machine, from the Go module
# proxy, into a cache outside the clone, and links ./bin/k8s to them:
#
#   etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
#   containerd containerd-shim-runc-v2 ctr runc bridge host-local loopback
#
# The cache key is a hash of the Go version, the architecture and
# scripts/k8s/modules: the recipe (recipe.sh: what is built, with which flags)
# and the build modules (their go.mod/go.sum pin every version), so a fresh clone on the same machine reuses the binaries and only
# the first run pays. Builds run under `nice -n 15` (the machine is shared).
#
# Usage: scripts/k8s/build.sh [--dir]   (--dir: print the cache directory, build nothing)
# Env:   PRESCIENT_K8S_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/prescient/k8s)
#
# Exit status: 0 built or reused; 1 a build failed (the log says which).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mods=$here/modules
cache_root=${PRESCIENT_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prescient/k8s}

key=$( {
	go version
	go env GOARCH GOOS
	for f in "$mods"/recipe.sh "$mods"/*/go.mod "$mods"/*/go.sum; do echo "$f" | sed "s|$mods||"; cat "$f"; done
} | sha256sum | cut -c1-16)
dir=$cache_root/$key

if [[ ${1:-} == --dir ]]; then
	echo "$dir"
	exit 0
fi

link() {
	mkdir -p "$root/bin"
	ln -sfn "$dir/bin" "$root/bin/k8s"
}

if [[ -e $dir/bin/.complete ]]; then
	link
	echo "k8s binaries: reusing $dir/bin"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9 # another build of the same key finishes first
if [[ -e $dir/bin/.complete ]]; then
	link
	echo "k8s binaries: reusing $dir/bin"
	exit 0
fi

tmp=$dir/bin.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
times=$tmp/build-times.tsv
printf 'binary\tseconds\tbytes\n' >"$times"

# runc needs libseccomp's headers: containerd's CRI hands runc a seccomp
# profile, and a runc built without seccomp refuses it.
if ! pkg-config --exists libseccomp 2>/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		echo "k8s binaries: installing libseccomp-dev (runc's seccomp support)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev >/dev/null; }
	else
		echo "k8s binaries: libseccomp-dev is missing (runc needs it): apt-get install libseccomp-dev" >&2
		exit 1
	fi
fi

# build MODULE NAME PACKAGE [go build flags...]
build() {
	local mod=$1 name=$2 pkg=$3
	shift 3
	local t0=$SECONDS
	echo "k8s binaries: building $name ($pkg)"
	(cd "$mods/$mod" && nice -n 15 go build -trimpath -o "$tmp/$name" "$@" "$pkg")
	printf '%s\t%d\t%d\n' "$name" $((SECONDS - t0)) "$(stat -c %s "$tmp/$name")" >>"$times"
}

start=$SECONDS
. "$mods/recipe.sh"
printf 'total\t%d\t-\n' $((SECONDS - start)) >>"$times"

touch "$tmp/.complete"
rm -rf "$dir/bin"
mv "$tmp" "$dir/bin"
link
echo "k8s binaries: built in $((SECONDS - start)) s into $dir/bin"
column -t "$dir/bin/build-times.tsv" 2>/dev/null || cat "$dir/bin/build-times.tsv"
