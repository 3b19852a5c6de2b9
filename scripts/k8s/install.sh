#!/usr/bin/env bash
# Installs Prescient (predictor, admission webhook, scheduler, node agent) into the local cluster
# of up.sh: the webhook's TLS from a self-signed CA made here, the
# manifests of deploy/local rendered with this cluster's ports and paths,
# and a server-side dry run that shows the API server reaching the webhook.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PK=$S/bin/prescient-k8s
pki=$S/pki
mkdir -p "$S/deploy"
if [[ ! -f $pki/webhook.crt ]]; then
	log "making the webhook's CA and serving certificate"
	$PK certs ca --out "$pki/webhook-ca" --cn prescient-webhook-ca
	$PK certs issue --ca "$pki/webhook-ca" --out "$pki/webhook" --cn prescient-webhook.prescient-system.svc --server \
		--dns prescient-webhook.prescient-system.svc --dns prescient-webhook.prescient-system.svc.cluster.local \
		--ip "$(cat "$S/node-ip")" --ip 127.0.0.1
fi

render() {
	sed -e "s|@PREDICTOR_PORT@|$PREDICTOR_PORT|g" -e "s|@WEBHOOK_PORT@|$WEBHOOK_PORT|g" \
		-e "s|@API_PORT@|$API_PORT|g" \
		-e "s|@PSCHED_PORT@|$PSCHED_PORT|g" -e "s|@SCHED_DEBUG_PORT@|$SCHED_DEBUG_PORT|g" -e "s|@AGENT_PORT@|$AGENT_PORT|g" \
		-e "s|@CGROUP_ROOT@|$CGROUP_ROOT|g" -e "s|@STATE@|$S|g" -e "s|@IMAGE_DIGEST@|$(cat "$S/images/prescient-k8s.digest")|g" \
		-e "s|@CA_BUNDLE@|$(base64 -w0 <"$pki/webhook-ca.crt")|g" "$1" >"$2"
}
render "$k8s_root/deploy/local/prescient.yaml.in" "$S/deploy/prescient.yaml"
render "$k8s_root/deploy/local/webhook.yaml.in" "$S/deploy/webhook.yaml"

kubectl apply -f "$S/deploy/prescient.yaml" >/dev/null
kubectl -n prescient-system create secret tls prescient-webhook-tls \
	--cert "$pki/webhook.crt" --key "$pki/webhook.key" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n prescient-system rollout status deploy/prescient-predictor --timeout 180s >/dev/null ||
	die "predictor not available (kubectl -n prescient-system describe pods; logs in $S/kubelet/pod-logs)"
kubectl -n prescient-system rollout status deploy/prescient-webhook --timeout 180s >/dev/null ||
	die "webhook not available (kubectl -n prescient-system describe pods; logs in $S/kubelet/pod-logs)"
kubectl -n prescient-system rollout status deploy/prescient-scheduler --timeout 180s >/dev/null ||
	die "prescient-scheduler not available (kubectl -n prescient-system describe pods; logs in $S/kubelet/pod-logs)"
kubectl -n prescient-system rollout status ds/prescient-agent --timeout 180s >/dev/null ||
	die "node agent not available (kubectl -n prescient-system describe pods; logs in $S/kubelet/pod-logs)"
kubectl apply -f "$S/deploy/webhook.yaml" >/dev/null

# The API server calls the webhook for an opted-in pod (a dry run: nothing
# is created); the annotation proves the whole path, TLS included.
annotated() {
	kubectl run prescient-smoke --image docker.io/local/busybox:1 --labels prescient.io/predict=true \
		--dry-run=server -o 'jsonpath={.metadata.annotations.prescient\.io/resources}' | grep -q '"containers"'
}
wait_for "webhook (API server → Service → webhook → predictor)" 60 annotated
log "Prescient installed"
