#!/usr/bin/env bash
# Runs on a control node before its etcd member starts (the unit's ExecStartPre): decides how the
# member joins, and writes it to --env-file as the two settings etcd reads only when its data
# directory is empty, ETCD_INITIAL_CLUSTER and ETCD_INITIAL_CLUSTER_STATE. The planned members
# come from --members, one "NAME PEER-URL CLIENT-URL" line each (the etcd step writes it; a
# change of members changes that file only, so it restarts no member).
#
# - The member has data: it starts as it was (etcd ignores both settings then).
# - No other member answers, or they are still forming the cluster this member is planned in:
#   a new cluster, `new`, with the planned members.
# - Another member answers for a cluster that does not know this member, or knows it but this
#   node's data is gone (a VM re-created with a new disk): the old entry is removed
#   (`etcdctl member remove`), the member is added as a learner (`etcdctl member add
#   --learner`: it receives the data without a vote, so the others' quorum stays what it was)
#   and starts `existing` with the members the cluster has now; etcd-member.sh promote (the
#   unit's ExecStartPost) makes it a voting member once it has caught up. A member can never
#   come back under its old ID without its data.
#
# usage: etcd-join.sh --name NAME --peer-url URL --data-dir DIR --members FILE
#          --env-file FILE --cacert FILE --cert FILE --key FILE
#          [--etcdctl PATH] [--attempts N] [--interval SECONDS]
set -euo pipefail

usage() {
  echo "usage: etcd-join.sh --name NAME --peer-url URL --data-dir DIR --members FILE --env-file FILE --cacert FILE --cert FILE --key FILE [--etcdctl PATH] [--attempts N] [--interval SECONDS]"
}

die() {
  echo "etcd-join.sh: $*" >&2
  exit 1
}

say() {
  echo "etcd-join.sh: $*" >&2
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi

name=""
peer_url=""
data_dir=""
members_file=""
env_file=""
cacert=""
cert=""
key=""
etcdctl="/usr/local/bin/etcdctl"
attempts=3
interval=5
# How often `member add` is asked while etcd calls its cluster unhealthy, 2 s apart.
add_attempts=30
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --name) name="$2" ;;
    --peer-url) peer_url="$2" ;;
    --data-dir) data_dir="$2" ;;
    --members) members_file="$2" ;;
    --env-file) env_file="$2" ;;
    --cacert) cacert="$2" ;;
    --cert) cert="$2" ;;
    --key) key="$2" ;;
    --etcdctl) etcdctl="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
for required in name peer_url data_dir members_file env_file cacert cert key; do
  [[ -n "${!required}" ]] || die "--${required//_/-} is required; see --help"
done
[[ -r "$members_file" ]] || die "--members $members_file cannot be read"
[[ "$peer_url" == https://* ]] || die "--peer-url must be an https:// URL (got '$peer_url')"
# The planned cluster (NAME=PEER-URL,...) and the other members' client URLs.
initial_cluster=""
endpoints=()
while read -r member_name member_peer member_client _; do
  [[ -n "$member_name" && "$member_name" != \#* ]] || continue
  [[ "$member_peer" == https://* && "$member_client" == https://* ]] ||
    die "$members_file: '$member_name $member_peer $member_client' is not NAME PEER-URL CLIENT-URL with https:// URLs"
  initial_cluster="${initial_cluster:+$initial_cluster,}$member_name=$member_peer"
  [[ "$member_name" == "$name" ]] || endpoints+=("$member_client")
done <"$members_file"
[[ ",$initial_cluster," == *",$name=$peer_url,"* ]] ||
  die "$members_file must list this member as $name $peer_url (it plans $initial_cluster)"
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"

write_env() {
  mkdir -p -- "$(dirname -- "$env_file")"
  printf 'ETCD_INITIAL_CLUSTER=%s\nETCD_INITIAL_CLUSTER_STATE=%s\n' "$1" "$2" >"$env_file.new"
  mv -f -- "$env_file.new" "$env_file"
}

ctl() {
  "$etcdctl" --endpoints="$1" --cacert="$cacert" --cert="$cert" --key="$key" \
    --dial-timeout=5s --command-timeout=20s "${@:2}"
}

# Whether something accepts TCP connections at an https://HOST:PORT endpoint (2 s at most).
listening() {
  local hostport="${1#https://}"
  hostport="${hostport%%/*}"
  # shellcheck disable=SC2016 # expanded by the inner shell, from its arguments
  timeout 2 bash -c ': </dev/tcp/"$1"/"$2"' _ "${hostport%:*}" "${hostport##*:}" 2>/dev/null
}

if [[ -d "$data_dir/member" ]]; then
  write_env "$initial_cluster" new
  exit 0
fi

# The cluster as another member sees it: "ID, STATUS, NAME, PEER URLS, CLIENT URLS, LEARNER" lines.
# Serializable: a member answers from what it knows even without a quorum, so one of a cluster
# that is still forming says so at once. Nobody listening means nothing
# to wait for; a member that listens but does not answer (busy) is asked again.
errors="$(mktemp)"
trap 'rm -f -- "$errors"' EXIT
list=""
answered=""
for ((attempt = 1; attempt <= attempts; attempt++)); do
  refused=0
  for endpoint in "${endpoints[@]}"; do
    # Nothing listening is told by the kernel at once; etcdctl would say so only after its dial
    # timeout, and then often just "context deadline exceeded".
    if ! listening "$endpoint"; then
      refused=$((refused + 1))
      continue
    fi
    if list="$(ctl "$endpoint" member list --consistency=s -w simple 2>"$errors")"; then
      answered="$endpoint"
      break
    fi
    if grep -q "connection refused\|no route to host" "$errors"; then
      refused=$((refused + 1))
    fi
  done
  if [[ -n "$answered" ]] || ((refused == ${#endpoints[@]})); then
    break
  fi
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
if [[ -z "$answered" ]]; then
  say "no other member answers: $name starts the cluster $initial_cluster"
  write_env "$initial_cluster" new
  exit 0
fi

# The planned name of a peer URL, for members the cluster lists without one (never started).
planned_name() {
  tr ',' '\n' <<<"$initial_cluster" | awk -F= -v url="$1" '$2 == url { print $1; exit }'
}

# A member has run once it has published its client URLs. (A member of a new cluster is listed
# with its planned name, as "started", before it ever ran; one added by
# `member add` has no name until it runs.)
mine=""
others=()
while IFS= read -r line; do
  [[ -n "$line" ]] || continue
  IFS=',' read -r id _ member_name peers clients _ <<<"$line"
  id="${id// /}"
  member_name="${member_name// /}"
  peers="${peers// /}"
  clients="${clients// /}"
  if [[ "$peers" == "$peer_url" ]]; then
    mine="$id $([[ -n "$clients" ]] && echo ran || echo never-ran)"
  else
    [[ -n "$member_name" ]] || member_name="$(planned_name "$peers")"
    [[ -n "$member_name" ]] || die "the cluster lists a member at $peers with no name, and $members_file has none for it"
    others+=("$member_name=$peers")
  fi
done <<<"$list"
current="$(IFS=','; echo "${others[*]}")"

if [[ "$mine" == *" never-ran" ]]; then
  planned_others="$(tr ',' '\n' <<<"$initial_cluster" | grep -vxF -- "$name=$peer_url" | sort | paste -sd,)"
  if [[ "$(tr ',' '\n' <<<"$current" | sort | paste -sd,)" == "$planned_others" ]]; then
    say "$answered is forming the planned cluster: $name joins it as planned"
    write_env "$initial_cluster" new
    exit 0
  fi
  say "the cluster already lists $name (added, never started): it joins as it is now"
else
  if [[ -n "$mine" ]]; then
    say "the cluster knows $name (member ${mine% *}) but its data in $data_dir is gone: removing that member"
    ctl "$answered" member remove "${mine% *}" >/dev/null
  fi
  say "adding $name ($peer_url) to the cluster of $current, as a learner"
  # etcd refuses a change while its leader has not heard from every member for a few seconds
  # ("unhealthy cluster"), e.g. right after the removal above: ask again.
  for ((try = 1; ; try++)); do
    if ctl "$answered" member add "$name" --peer-urls="$peer_url" --learner >/dev/null 2>"$errors"; then
      break
    fi
    if ((try >= add_attempts)) || ! grep -q "unhealthy cluster" "$errors"; then
      cat -- "$errors" >&2
      die "could not add $name to the cluster through $answered"
    fi
    sleep 2
  done
fi
write_env "${current:+$current,}$name=$peer_url" existing
