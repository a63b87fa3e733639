#!/usr/bin/env bash
# Runs on a control node: waits until its own kube-apiserver answers `ok` on /readyz, verifying
# the server against the cluster CA. /readyz turns ok only once the server has synced its caches
# and serves every API, so a rolling restart moves on to the next node only when this one is
# back in service.
#
# With --client-cert and --client-key it then also waits until the server serves its OpenAPI
# document (/openapi/v2, as protobuf) to that client. Clients read that document first (Pulumi's
# Kubernetes provider fails the whole run when it cannot), and the server builds it on the first
# request after a start: on an emulated guest that took longer than the server's own 60-second
# request timeout, which then resets the stream. The build goes on after the reset, so asking
# again gets the finished document.
#
# It asks the node's own loopback only: nothing is ever downloaded on a VM.
#
# usage: api-ready.sh --cacert FILE [--url https://127.0.0.1:PORT/PATH] [--client-cert FILE --client-key FILE] [--attempts N] [--interval SECONDS]
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
client_cert=""
client_key=""
url="https://127.0.0.1:6443/readyz"
attempts=120
interval=5
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --cacert) cacert="$2" ;;
    --url) url="$2" ;;
    --client-cert) client_cert="$2" ;;
    --client-key) client_key="$2" ;;
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
if [[ -n "$client_cert$client_key" ]]; then
  [[ -f "$client_cert" && -f "$client_key" ]] ||
    die "--client-cert and --client-key must both name files (a client certificate and its key)"
fi

# Waits until the OpenAPI document comes back whole (HTTP 200, every byte), for as long as the
# /readyz wait may take.
wait_for_openapi() {
  local origin started="$SECONDS" answer=""
  [[ "$url" =~ ^https://[^/]+ ]] && origin="${BASH_REMATCH[0]}"
  while :; do
    if answer="$(curl --silent --show-error --max-time 300 --cacert "$cacert" \
      --cert "$client_cert" --key "$client_key" \
      --header "Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf" \
      --output /dev/null --write-out "%{http_code}" "$origin/openapi/v2" 2>&1)" &&
      [[ "$answer" == "200" ]]; then
      echo "OpenAPI document served $((SECONDS - started)) s after ready"
      return 0
    fi
    if ((SECONDS - started + interval >= attempts * interval)); then
      die "$origin/openapi/v2 was not served within $((attempts * interval)) s (last answer: $answer); see \`journalctl -u kube-apiserver\`"
    fi
    sleep "$interval"
  done
}

answer=""
for ((attempt = 1; attempt <= attempts; attempt++)); do
  answer="$(curl --silent --show-error --max-time 5 --cacert "$cacert" "$url" 2>&1)" || true
  if [[ "$answer" == "ok" ]]; then
    echo "ok"
    if [[ -n "$client_cert" ]]; then
      wait_for_openapi
    fi
    exit 0
  fi
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
die "$url did not answer ok after $attempts attempts (last answer: $answer); see \`journalctl -u kube-apiserver\`"
