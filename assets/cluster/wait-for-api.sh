#!/usr/bin/env bash
# Runs on the host: waits until the Kubernetes API answers `ok` on /healthz through the load
# balancer's virtual IP, verifying the server against the cluster CA. The CA certificate comes
# on stdin; it is written to a private temporary file because curl reads --cacert from a file.
#
# As an EnsuredScript, `create` waits; `status` asks once, so after a host reboot (or whenever
# the API does not answer) `pulumi up` plans a `create` that waits for it again; `delete` has
# nothing to undo.
#
# usage: wait-for-api.sh create|status|delete --url https://VIP:6443/healthz
#          [--attempts N] [--interval SECONDS] < ca.crt
set -euo pipefail

usage() {
  echo "usage: wait-for-api.sh create|status|delete --url https://VIP:6443/healthz [--attempts N] [--interval SECONDS] < ca.crt"
}

die() {
  echo "wait-for-api.sh: $*" >&2
  exit 1
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
verb="${1:-}"
case "$verb" in
  create | status) shift ;;
  delete) exit 0 ;;
  *) die "a verb (create, status or delete) is required; see --help" ;;
esac

url=""
attempts=60
interval=5
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --url) url="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$url" == https://* ]] || die "--url must be an https:// URL (got '$url')"
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"

ca="$(mktemp)"
trap 'rm -f -- "$ca"' EXIT
cat >"$ca"
grep -q "BEGIN CERTIFICATE" "$ca" || die "expected the cluster CA certificate (PEM) on stdin"

if [[ "$verb" == status ]]; then
  # exit 1: not answering, so `pulumi up` runs create (which waits) again.
  [[ "$(curl --silent --max-time 5 --cacert "$ca" "$url" 2>/dev/null)" == "ok" ]] || exit 1
  exit 0
fi

answer=""
for ((attempt = 1; attempt <= attempts; attempt++)); do
  answer="$(curl --silent --show-error --max-time 5 --cacert "$ca" "$url" 2>&1)" || true
  if [[ "$answer" == "ok" ]]; then
    echo "ok"
    exit 0
  fi
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
die "$url did not answer ok after $attempts attempts (last answer: $answer); check ldirectord on the gateway (ipvsadm -Ln) and kube-apiserver on the control nodes"
