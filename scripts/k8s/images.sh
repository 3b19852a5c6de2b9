#!/usr/bin/env bash
# Makes the local cluster's images from files on this machine and imports
# them into its containerd (namespace k8s.io): no registry, no download at
# run time beyond Debian's busybox-static package, fetched once per machine
# with apt-get into the cache.
#
#   docker.io/local/busybox:1         busybox-static and a link per applet
#   docker.io/local/pause:1           the same layer; runs `sleep` (the pod sandbox)
#   docker.io/local/prescient-k8s:dev busybox + /usr/local/bin/prescient-k8s, prescient-scheduler
#
# Run by up.sh (needs the cluster's containerd).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cache_root=${PRESCIENT_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prescient/k8s}
bb=$cache_root/busybox/busybox
if [[ ! -x $bb ]]; then
	log "fetching Debian's busybox-static (once per machine)"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && { apt-get download busybox-static >/dev/null 2>&1 || { apt-get update -qq && apt-get download busybox-static >/dev/null; }; })
	dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x"
	mkdir -p "$(dirname "$bb")"
	cp "$tmp/x/bin/busybox" "$bb.tmp"
	mv "$bb.tmp" "$bb"
fi

PK=$S/bin/prescient-k8s
ctr() { "$BIN/ctr" --address "$S/run/containerd.sock" -n k8s.io "$@"; }
img=$S/images
$PK mkimage --name docker.io/local/busybox:1 --out "$img/busybox.tar" --busybox "$bb" --cmd '["sh"]' >/dev/null
$PK mkimage --name docker.io/local/pause:1 --out "$img/pause.tar" --busybox "$bb" --entrypoint '["/bin/sleep","2147483647"]' >/dev/null
$PK mkimage --name docker.io/local/prescient-k8s:dev --out "$img/prescient-k8s.tar" --busybox "$bb" \
	--add "$PK:usr/local/bin/prescient-k8s" --add "$S/bin/prescient-scheduler:usr/local/bin/prescient-scheduler" --entrypoint '["/usr/local/bin/prescient-k8s"]' >"$img/prescient-k8s.digest"
for t in busybox pause prescient-k8s; do
	# The index's io.containerd.image.name annotation names the image.
	ctr images import "$img/$t.tar" >"$S/logs/import-$t.log" 2>&1 || die "import $t: $(tail -3 "$S/logs/import-$t.log")"
done
log "images imported: $(ctr images ls -q | grep -c '^docker.io/local/') local images"
