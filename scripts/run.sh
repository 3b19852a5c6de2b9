#!/usr/bin/env bash
# The main job on embedded defaults (`make run`): start the Prescient daemon on
# its defaults (state in /var/lib/prescient, socket /run/prescient.sock), run
# the scripted test workload twice through it — same signature, so the second
# run joins the first in its history — show the second run's measured curve
# and the signature's history, and leave the daemon serving for more work.
# Needs root for cgroups (say so, not fail obscurely).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(pwd)/bin/prescient
script="${PRESCIENT_DEMO_SCRIPT:-2s:cpu=0.5,mem=120;2s:cpu=0.2,mem=240,iops=150,net=40;1s:cpu=1}"
if [ "$(id -u)" -ne 0 ]; then
  echo "make run: Prescient needs root (or a delegated cgroup) to put tasks in cgroups; re-run as root." >&2
  exit 1
fi
socket=${PRESCIENT_SOCKET:-/run/prescient.sock}
log=${TMPDIR:-/tmp}/prescient-serve.log
if "$bin" --socket "$socket" ps >/dev/null 2>&1; then
  echo "== a daemon already answers on $socket; using it" >&2
else
  echo "== prescient serve (log: $log)" >&2
  nohup "$bin" serve --socket "$socket" --log-level info >"$log" 2>&1 &
  for _ in $(seq 100); do
    "$bin" --socket "$socket" ps >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$bin" --socket "$socket" ps >/dev/null || { echo "the daemon did not start; see $log" >&2; exit 1; }
fi
export PRESCIENT_SOCKET=$socket
echo "== prescient run -- prescient workload '$script'   (through the daemon)" >&2
"$bin" run --cpu 1.5 --memory 512M -- "$bin" workload --quiet "$script" || true
echo >&2
echo "== the same task again, as JSON" >&2
out=$("$bin" run --cpu 1.5 --memory 512M --json -- "$bin" workload --quiet "$script")
echo "$out"
id=$(printf '%s' "$out" | sed -n 's/^  "id": "\(.*\)",$/\1/p' | head -n1)
sig=$(printf '%s' "$out" | sed -n 's/^  "signature": "\(.*\)",$/\1/p' | head -n1)
echo >&2
echo "== prescient show $id" >&2
"$bin" show "$id"
echo >&2
echo "== prescient history $sig" >&2
"$bin" history "$sig"
echo >&2
echo "== prescient node   (capacity, committed, soft-reserved, used)" >&2
"$bin" node
echo >&2
echo "== prescient ps --all" >&2
"$bin" ps --all --limit 5
cat >&2 <<MSG

The daemon keeps serving on $socket (pid $(pgrep -f "prescient serve --socket $socket" | head -n1 || echo '?')).
Submit work to it:
  $bin submit -- sh -c 'echo hello'          # prints the task id at once
  $bin submit --wait --cpu 0.5 -- ./job.sh   # waits, exits with the task's code
  $bin ps --all;  $bin logs -f ID;  $bin cancel ID
  curl --unix-socket $socket http://d/v1/node   # the HTTP API (docs/api.md)
Stop it with: kill \$(pgrep -f "prescient serve --socket $socket")
MSG
