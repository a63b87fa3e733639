#!/usr/bin/env bash
# Runs on a control node: waits until its own kube-apiserver answers `ok` on /readyz, verifying
# the server against the cluster CA. /readyz turns ok only once the server has synced its caches
# and serves every API, so a rolling restart moves on to the next node only when this one is
# back in service.
#
# It asks the node's own loopback only: nothing is ever downloaded on a VM.
#
# usage: api-ready.sh --cacert FILE [--url https://127.0.0.1:PORT/PATH] [--attempts N] [--interval SECONDS]
set -euo pipefail

if [[ "${1:-}" == "--help" ]]; then
  sed -n 's/^# \{0,1\}\(usage: .*\)$/\1/p' "$0"
  exit 0
fi

die() {
  echo "api-ready.sh: $*" >&2
  exit 1
}

cacert=""
url="https://127.0.0.1:6443/readyz"
attempts=120
interval=5
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --cacert) cacert="$2" ;;
    --url) url="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ -f "$cacert" ]] || die "--cacert must name the cluster CA certificate file"
[[ "$url" == https://127.0.0.1:* ]] || die "--url must be an https:// URL on this node's loopback (got '$url')"
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"

answer=""
for ((attempt = 1; attempt <= attempts; attempt++)); do
  answer="$(curl --silent --show-error --max-time 5 --cacert "$cacert" "$url" 2>&1)" || true
  if [[ "$answer" == "ok" ]]; then
    echo "ok"
    exit 0
  fi
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
die "$url did not answer ok after $attempts attempts (last answer: $answer); see \`journalctl -u kube-apiserver\`"
