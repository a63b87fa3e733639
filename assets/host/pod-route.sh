#!/usr/bin/env bash
# Runs on the host with the bridge CNI: routes one node's pod network to that node. Nothing
# else carries pod traffic between nodes, and a host reboot drops the route, so `status` lets
# `pulumi up` notice and put it back.
#
# usage: pod-route.sh create|status|delete --cidr POD_CIDR --via NODE_IP
#   create  add the route, replacing whatever route that network had
#   status  exit 0 when the route to POD_CIDR goes via NODE_IP, 1 when not
#   delete  remove the route; nothing to do when it is already gone
set -euo pipefail

usage() {
  echo "usage: pod-route.sh create|status|delete --cidr POD_CIDR --via NODE_IP"
}

die() {
  echo "pod-route.sh: $*" >&2
  exit 1
}

verb="${1:-}"
case "$verb" in
  create | status | delete) shift ;;
  --help)
    usage
    exit 0
    ;;
  *)
    echo "pod-route.sh: expected a verb: create, status or delete" >&2
    usage >&2
    exit 2
    ;;
esac
cidr=""
via=""
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --cidr) cidr="$2" ;;
    --via) via="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$cidr" =~ ^[0-9.]+/[0-9]+$ ]] || die "--cidr must be an IPv4 network such as 10.200.1.0/24"
[[ "$via" =~ ^[0-9.]+$ ]] || die "--via must be an IPv4 address"

if [[ "$(uname -s)" == "Darwin" ]]; then
  gateway() { route -n get -net "$cidr" 2>/dev/null | awk '/gateway:/ { print $2 }'; }
  case "$verb" in
    create)
      # `route add` refuses an existing route, so the old one goes first.
      route -n delete -net "$cidr" >/dev/null 2>&1 || true
      route -n add -net "$cidr" "$via" >/dev/null
      ;;
    status) [[ "$(gateway)" == "$via" ]] || exit 1 ;;
    delete)
      if [[ "$(gateway)" == "$via" ]]; then
        route -n delete -net "$cidr" "$via" >/dev/null
      fi
      ;;
  esac
  exit 0
fi

current() { ip -4 route show exact "$cidr" 2>/dev/null; }
case "$verb" in
  create) ip route replace "$cidr" via "$via" ;;
  status) [[ "$(current)" == *" via $via "* || "$(current)" == *" via $via" ]] || exit 1 ;;
  delete)
    if [[ "$(current)" == *" via $via"* ]]; then
      ip route del "$cidr" via "$via"
    fi
    ;;
esac
