#!/usr/bin/env bash
# Changes this node's place in a running etcd cluster, the two halves etcd-join.sh leaves to
# after the member runs and before it stops:
#
# promote  (the etcd unit's ExecStartPost) a member that joined a running cluster starts as a
#          learner (etcd-join.sh adds it with --learner): it receives the data but does not vote,
#          so the cluster's quorum does not change while it catches up. Once the leader says it
#          is in sync, it is promoted to a voting member. A voting member is left as it is.
# leave    (before the etcd step is removed from the node) the member is removed from the
#          cluster (`etcdctl member remove`) while it still runs, so the others' quorum is
#          counted without it from then on. Refused when the voting members left would be
#          fewer than a quorum of their own number healthy. The last member just goes: the
#          cluster goes with it. A node the cluster does not list has nothing to do.
#
# The member is found by name (default: the host name, as the etcd step names members), and
# the cluster through the endpoints given, the local member's first, then the client URLs of
# the planned members in --members (etcd-join.sh's file: "NAME PEER-URL CLIENT-URL" lines).
#
# usage: etcd-member.sh promote|leave [--endpoint URL]... [--members FILE] --cacert FILE
#          --cert FILE --key FILE [--name NAME] [--etcdctl PATH] [--attempts N]
#          [--interval SECONDS]
set -euo pipefail

usage() {
  echo "usage: etcd-member.sh promote|leave [--endpoint URL]... [--members FILE] --cacert FILE --cert FILE --key FILE [--name NAME] [--etcdctl PATH] [--attempts N] [--interval SECONDS]"
}

die() {
  echo "etcd-member.sh: $*" >&2
  exit 1
}

say() {
  echo "etcd-member.sh: $*" >&2
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
action="${1:-}"
[[ "$action" == promote || "$action" == leave ]] || die "the first argument must be promote or leave; see --help"
shift

name=""
cacert=""
cert=""
key=""
endpoints=()
members_file=""
etcdctl="/usr/local/bin/etcdctl"
# promote: a learner catches up within seconds on real hardware; emulated guests are slower.
attempts=120
interval=5
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --name) name="$2" ;;
    --endpoint) endpoints+=("$2") ;;
    --members) members_file="$2" ;;
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
if [[ -n "$members_file" ]]; then
  [[ -r "$members_file" ]] || die "--members $members_file cannot be read"
  while read -r _ _ member_client _; do
    [[ -n "$member_client" ]] && endpoints+=("$member_client")
  done < <(grep -v '^[[:space:]]*#' "$members_file")
fi
[[ ${#endpoints[@]} -gt 0 ]] || die "--endpoint or --members is required; see --help"
for endpoint in "${endpoints[@]}"; do
  [[ "$endpoint" == https://* ]] || die "--endpoint must be an https:// URL (got '$endpoint')"
done
for required in cacert cert key; do
  [[ -n "${!required}" ]] || die "--$required is required; see --help"
done
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"
[[ -n "$name" ]] || name="$(hostname -s)"

errors="$(mktemp)"
trap 'rm -f -- "$errors"' EXIT

ctl() {
  "$etcdctl" --endpoints="$1" --cacert="$cacert" --cert="$cert" --key="$key" \
    --dial-timeout=5s --command-timeout=20s "${@:2}"
}

# The member list as the first endpoint that answers sees it, serializable (a learner answers
# from what it knows): "ID, STATUS, NAME, PEER URLS, CLIENT URLS, IS LEARNER" lines, into
# `list`, and that endpoint into `answered`.
list=""
answered=""
member_list() {
  local endpoint
  for endpoint in "${endpoints[@]}"; do
    if list="$(ctl "$endpoint" member list --consistency=s -w simple 2>"$errors")"; then
      answered="$endpoint"
      return 0
    fi
  done
  return 1
}

# Fields of this member's line: id, learner (true/false); the others' IDs, client URLs and
# learner flags go to `other_ids`, `other_clients`, `other_learners`.
parse() {
  mine_id=""
  mine_learner=""
  other_ids=()
  other_clients=()
  other_learners=()
  local line id member_name clients learner
  while IFS= read -r line; do
    [[ -n "$line" ]] || continue
    IFS=',' read -r id _ member_name _ clients learner <<<"$line"
    id="${id// /}"
    member_name="${member_name// /}"
    clients="${clients// /}"
    learner="${learner// /}"
    if [[ "$member_name" == "$name" ]]; then
      mine_id="$id"
      mine_learner="$learner"
    else
      other_ids+=("$id")
      other_clients+=("${clients%%,*}")
      other_learners+=("$learner")
    fi
  done <<<"$1"
}

promote() {
  local attempt
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    if member_list; then
      parse "$list"
      [[ -n "$mine_id" ]] || die "the cluster (asked through $answered) lists no member $name"
      if [[ "$mine_learner" != true ]]; then
        say "$name (member $mine_id) is a voting member"
        return 0
      fi
      # etcd promotes a learner only once its log has caught up with the leader's.
      if ctl "$answered" member promote "$mine_id" >/dev/null 2>"$errors"; then
        say "$name (member $mine_id) caught up and is a voting member now"
        return 0
      fi
      grep -q "in sync with leader\|not ready\|unhealthy cluster\|leader changed" "$errors" ||
        { cat -- "$errors" >&2; die "could not promote $name (member $mine_id) through $answered"; }
    fi
    if ((attempt < attempts)); then
      sleep "$interval"
    fi
  done
  cat -- "$errors" >&2
  die "$name is still a learner after $attempts attempts, $interval s apart"
}

leave() {
  if ! member_list; then
    cat -- "$errors" >&2
    die "no member answers at ${endpoints[*]}: cannot remove $name from the cluster"
  fi
  parse "$list"
  if [[ -z "$mine_id" ]]; then
    say "the cluster (asked through $answered) lists no member $name: nothing to leave"
    return 0
  fi
  if [[ ${#other_clients[@]} -eq 0 ]]; then
    say "$name is the last member: the cluster goes with it"
    return 0
  fi
  # Quorum counts voting members only; a learner neither helps nor hinders it.
  local voters=0 healthy=0 i through="" through_id=""
  for i in "${!other_clients[@]}"; do
    [[ "${other_learners[$i]}" == true ]] && continue
    voters=$((voters + 1))
    if [[ -n "${other_clients[$i]}" ]] && ctl "${other_clients[$i]}" endpoint health >/dev/null 2>&1; then
      healthy=$((healthy + 1))
      if [[ -z "$through" ]]; then
        through="${other_clients[$i]}"
        through_id="${other_ids[$i]}"
      fi
    fi
  done
  local quorum=$((voters / 2 + 1))
  if ((voters == 0 || healthy < quorum)); then
    die "removing $name would leave $healthy healthy of $voters voting members, fewer than their quorum of $quorum: bring the others back first"
  fi
  # A leader that is removed steps down and the others wait out an election timeout before
  # they choose another: hand the leadership on first, while this member still leads.
  local status member_id leader
  if status="$(ctl "${endpoints[0]}" endpoint status -w fields 2>/dev/null)"; then
    member_id="$(awk -F' : ' '$1 == "\"MemberID\"" { print $2 }' <<<"$status")"
    leader="$(awk -F' : ' '$1 == "\"Leader\"" { print $2 }' <<<"$status")"
    if [[ -n "$member_id" && "$member_id" == "$leader" ]]; then
      ctl "${endpoints[0]}" move-leader "$through_id" >/dev/null
      say "$name handed the leadership to member $through_id"
    fi
  fi
  # etcd refuses a change while its leader has not heard from every member for a few seconds
  # ("unhealthy cluster"), e.g. right after a member joined or the leadership moved: ask again.
  local try
  for ((try = 1; ; try++)); do
    if ctl "$through" member remove "$mine_id" >/dev/null 2>"$errors"; then
      break
    fi
    if ((try >= 30)) || ! grep -q "unhealthy cluster" "$errors"; then
      cat -- "$errors" >&2
      die "could not remove $name (member $mine_id) through $through"
    fi
    sleep 2
  done
  say "$name (member $mine_id) left the cluster; $healthy of $voters voting members are healthy, quorum $quorum"
}

"$action"
