#!/usr/bin/env bash
# Waits until etcd reports healthy. With `--scope cluster` (the default) etcdctl asks the
# endpoint for the member list and probes each member, so one reachable endpoint is enough to
# see the whole cluster; with `--scope member` only the endpoint itself is probed (a member that
# just restarted has rejoined). Members start one by one and only elect a leader once a quorum
# is up, so early failures are expected: it retries a bounded number of times.
#
# usage: etcd-health.sh --endpoint URL --cacert FILE --cert FILE --key FILE
#          [--scope cluster|member] [--attempts N] [--interval SECONDS] [--etcdctl PATH]
set -euo pipefail

usage() {
  echo "usage: etcd-health.sh --endpoint URL --cacert FILE --cert FILE --key FILE [--scope cluster|member] [--attempts N] [--interval SECONDS] [--etcdctl PATH]"
}

die() {
  echo "etcd-health.sh: $*" >&2
  exit 1
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi

endpoint=""
cacert=""
cert=""
key=""
scope=cluster
attempts=60
interval=5
etcdctl="/usr/local/bin/etcdctl"
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --endpoint) endpoint="$2" ;;
    --cacert) cacert="$2" ;;
    --cert) cert="$2" ;;
    --key) key="$2" ;;
    --scope) scope="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    --etcdctl) etcdctl="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$endpoint" == https://* ]] || die "--endpoint must be an https:// URL (got '$endpoint')"
for file in "$cacert" "$cert" "$key"; do
  [[ -n "$file" ]] || die "--cacert, --cert and --key are required"
done
case "$scope" in
  cluster) cluster=(--cluster) ;;
  member) cluster=() ;;
  *) die "--scope must be cluster or member (got '$scope')" ;;
esac
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"

for ((attempt = 1; attempt <= attempts; attempt++)); do
  if output="$("$etcdctl" --endpoints="$endpoint" --cacert="$cacert" --cert="$cert" --key="$key" \
    --dial-timeout=3s --command-timeout=5s endpoint health "${cluster[@]}" 2>&1)"; then
    printf '%s\n' "$output"
    exit 0
  fi
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
printf '%s\n' "$output" >&2
die "etcd is not healthy after $attempts attempts; see \`journalctl -u etcd\` on each control node"
