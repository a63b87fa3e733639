#!/usr/bin/env bash
# Runs on the host: waits until the Kubernetes API answers `ok` on /healthz through the load
# balancer's virtual IP, verifying the server against the cluster CA. The CA certificate comes
# on stdin; it is written to a private temporary file because curl reads --cacert from a file.
#
# As an EnsuredScript, `create` waits; `status` asks (three misses in a row mean no), so after
# a host reboot (or whenever the API does not answer) `pulumi up` plans a `create` that waits
# for it again; `delete` has nothing to undo.
#
# When `create` gives up it prints what it could see, so the failure says why the VIP did not
# answer: each --server's own /readyz?verbose (which check fails on which API server), and,
# with --gateway, the load balancer's view over SSH: `ipvsadm -Ln` (which real servers are in
# the table) and the tail of ldirectord's log (why it dropped the others). For SSH, stdin
# carries after the CA the OpenSSH private key and the gateway's known_hosts line.
#
# usage: wait-for-api.sh create|status|delete --url https://VIP:6443/healthz
#          [--attempts N] [--interval SECONDS] [--server https://NODE:6443]...
#          [--gateway USER@HOST] < ca.crt [key known_hosts-line]
set -euo pipefail

usage() {
  echo "usage: wait-for-api.sh create|status|delete --url https://VIP:6443/healthz [--attempts N] [--interval SECONDS] [--server https://NODE:6443]... [--gateway USER@HOST] < ca.crt [key known_hosts-line]"
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
servers=()
gateway=""
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --url) url="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    --server) servers+=("$2") ;;
    --gateway) gateway="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$url" == https://* ]] || die "--url must be an https:// URL (got '$url')"
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"

for server in "${servers[@]}"; do
  [[ "$server" == https://* ]] || die "--server must be an https:// URL (got '$server')"
done
[[ -z "$gateway" || "$gateway" == *@* ]] || die "--gateway must be USER@HOST (got '$gateway')"

work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
cat >"$work/stdin"
ca="$work/ca.crt"
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$work/stdin" >"$ca"
grep -q "BEGIN CERTIFICATE" "$ca" || die "expected the cluster CA certificate (PEM) on stdin"

# What the host can see when the VIP does not answer; never fails, prints to stderr.
diagnose() {
  local server
  for server in "${servers[@]}"; do
    echo "--- $server/readyz?verbose:"
    curl --silent --show-error --max-time 10 --cacert "$ca" "$server/readyz?verbose" 2>&1 \
      | grep -v '^\[+\]' || true
    echo
  done
  [[ -n "$gateway" ]] || return 0
  echo "--- the load balancer on $gateway (ipvsadm -Ln, then the end of ldirectord's log):"
  (
    umask 077
    sed -n '/-----BEGIN OPENSSH PRIVATE KEY-----/,/-----END OPENSSH PRIVATE KEY-----/p' \
      "$work/stdin" >"$work/key"
    grep -E '^[^-[:space:]]+ ssh-[a-z0-9-]+ ' "$work/stdin" >"$work/known_hosts" || true
  )
  ssh -i "$work/key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$work/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o ConnectTimeout=15 -o LogLevel=ERROR "$gateway" \
    'sudo ipvsadm -Ln; sudo tail -n 30 /var/log/ldirectord.log' 2>&1 \
    || echo "(could not ask the gateway over SSH: exit $?)"
}

if [[ "$verb" == status ]]; then
  # exit 1: not answering, so `pulumi up` runs create (which waits) again. A loaded API server
  # may miss one answer (a no-op `up` on emulated guests planned a needless wait); only three
  # misses in a row count. A stopped VM fails fast: no route, or connection refused.
  for ((try = 1; try <= 3; try++)); do
    [[ "$(curl --silent --max-time 10 --cacert "$ca" "$url" 2>/dev/null)" == "ok" ]] && exit 0
    ((try < 3)) && sleep 2
  done
  exit 1
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
diagnose >&2
die "$url did not answer ok after $attempts attempts (last answer: $answer); what each API server and the load balancer reported is above"
