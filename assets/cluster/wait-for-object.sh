#!/usr/bin/env bash
# Runs on the host: waits until the Kubernetes API says what the next object needs, asking it
# through the VIP with the admin kubeconfig every --interval seconds, up to --attempts times.
#
#   --until admitted --path COLLECTION --body JSON
#       until the API would admit the object: a create with `?dryRun=All` (every admission
#       webhook is called, nothing is stored). A chart's Deployment can be Ready before its
#       webhook answers: MetalLB's controller is Ready once its metrics answer, while its webhook
#       server starts only after it made its own certificate, and the API server reaches it
#       through the Service's cluster IP, which the control node's kube-proxy must have
#       programmed first. Meanwhile every create fails with "failed calling webhook", an error
#       the Kubernetes provider does not retry.
#         2xx, 409    admitted (409: an object of that name exists; admission ran before that check)
#         other 4xx   refused: the object itself is wrong (a webhook denied it, or it is invalid);
#                     fails at once with the API's message, as the real create would
#   --until labelled --path /api/v1/nodes/NAME --label KEY=VALUE
#       until the Node is registered, Ready, and carries the label, which it adds (a merge patch,
#       field manager `hardway`) once the node is Ready: kubelets may not label themselves
#       node-role.kubernetes.io/* (NodeRestriction), so an administrator does, as kubeadm does
#       after the kubelet registered the node. A kubelet updates its new Node many times in its
#       first minutes; a patch meanwhile conflicts and is tried again inside the API server. On
#       starved guests one patch outlasted the API server's 34 s deadline for a write (504), an
#       answer Pulumi's Kubernetes provider does not retry: here the next attempt reads the Node
#       again, and finds the label if that patch went through after all.
#   --until present --path API-PATH
#       until the object exists (200). The default namespace's ServiceAccount `default` is made
#       by the controller manager's serviceaccount controller, one of the last it may start:
#       the leader starts its controllers one after another, each first making its own
#       ServiceAccount, and on starved emulated guests with a three-member etcd that took 15-30 s
#       a controller (HA run 7: 27 controllers in 13 minutes, the serviceaccount controller not
#       among them yet). Until it runs, no pod can be created in a new namespace.
#   --until rolled-out --path /apis/apps/v1/namespaces/NS/daemonsets/NAME
#       until the DaemonSet's controller has seen its latest spec and every pod it schedules runs
#       that spec and is Ready. Helm's own wait does not cover it: it counts a DaemonSet ready
#       when no more pods than its rolling update's maxUnavailable are missing, and Cilium's
#       chart allows 2, so on a cluster of one or two nodes the wait passes before any agent is
#       Ready. Until then no pod gets a network; on emulated guests that took 17-25 minutes (an
#       image with clang to pull, its BPF programs to compile), in which the next releases'
#       own waits ran out.
#   In all: 5xx, 404, 408, 409, 429 or no answer mean not yet (unreachable or slow webhook, a type
#   or object not there yet, a conflict, a busy API).
#
# As an EnsuredScript: `create` waits; `status` and `delete` have nothing to look at or undo.
# The admin kubeconfig (certificates embedded, as the Pki component writes it) comes on stdin;
# its server (the VIP), CA and client certificate go to a private temporary directory.
#
# usage: wait-for-object.sh create|status|delete --until admitted|labelled|present|rolled-out
#          --path API-PATH [--body JSON] [--label KEY=VALUE] [--attempts N] [--interval SECONDS] < kubeconfig
set -euo pipefail

usage() {
  echo "usage: wait-for-object.sh create|status|delete --until admitted|labelled|present|rolled-out --path API-PATH [--body JSON] [--label KEY=VALUE] [--attempts N] [--interval SECONDS] < kubeconfig"
}

die() {
  echo "wait-for-object.sh: $*" >&2
  exit 1
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
verb="${1:-}"
case "$verb" in
  create) shift ;;
  status | delete) exit 0 ;;
  *) die "a verb (create, status or delete) is required; see --help" ;;
esac

until=""
api_path=""
body=""
label=""
attempts=60
interval=10
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --until) until="$2" ;;
    --path) api_path="$2" ;;
    --body) body="$2" ;;
    --label) label="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$api_path" == /api/* || "$api_path" == /apis/* ]] \
  || die "--path must be an API path, /api/... or /apis/... (got '$api_path')"
case "$until" in
  admitted) [[ "$body" == \{* ]] || die "--until admitted needs --body, the object as JSON" ;;
  labelled)
    [[ "$api_path" =~ ^/api/v1/nodes/[a-z0-9.-]+$ ]] \
      || die "--until labelled takes a Node's path, /api/v1/nodes/NAME (got '$api_path')"
    # A label's key and value need no quoting in JSON: letters, digits and . _ - / only.
    [[ "$label" =~ ^[A-Za-z0-9][A-Za-z0-9./_-]*=[A-Za-z0-9._-]*$ ]] \
      || die "--until labelled needs --label KEY=VALUE, e.g. node-role.kubernetes.io/control-plane= (got '$label')"
    ;;
  present) ;;
  rolled-out)
    [[ "$api_path" =~ ^/apis/apps/v1/namespaces/[a-z0-9-]+/daemonsets/[a-z0-9.-]+$ ]] \
      || die "--until rolled-out takes a DaemonSet's path, /apis/apps/v1/namespaces/NS/daemonsets/NAME (got '$api_path')"
    ;;
  *) die "--until must be admitted, labelled, present or rolled-out (got '$until')" ;;
esac
[[ "$attempts" =~ ^[1-9][0-9]*$ ]] || die "--attempts must be a positive whole number"
[[ "$interval" =~ ^[0-9]+$ ]] || die "--interval must be a whole number of seconds"

work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
umask 077
cat >"$work/kubeconfig"

# The first value of a kubeconfig field: `  key: value` on one line, as the yaml library writes
# it (base64 has no spaces, so it is never folded).
field() {
  sed -n "s/^[[:space:]-]*$1:[[:space:]]*//p" "$work/kubeconfig" | head -n 1
}
server="$(field server)"
[[ "$server" == https://* ]] || die "expected a kubeconfig with an https:// server on stdin"
for pair in certificate-authority-data:ca.crt client-certificate-data:client.crt \
  client-key-data:client.key; do
  value="$(field "${pair%%:*}")"
  [[ -n "$value" ]] || die "the kubeconfig on stdin has no ${pair%%:*} (certificates must be embedded)"
  base64 -d <<<"$value" >"$work/${pair#*:}" 2>/dev/null \
    || die "the kubeconfig's ${pair%%:*} is not base64"
done

# The `message` of the API's Status answer (its first, the top-level one), quotes unescaped;
# else the start of the answer, or what curl said.
message() {
  local text
  text="$(sed -n 's/.*"message": *"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$work/answer" 2>/dev/null \
    | head -n 1 | sed 's/\\"/"/g')"
  if [[ -z "$text" && -s "$work/answer" ]]; then
    text="$(head -c 400 "$work/answer")"
  fi
  printf '%s' "${text:-$(tr '\n' ' ' <"$work/curl-error" 2>/dev/null)}"
}

# One request (curl's own arguments, the URL's query after the path); prints the HTTP code
# (000: no answer). The answer is indented (`pretty`), one field a line, which is what the
# Node's checks read.
ask() {
  local query="$1"
  shift
  : >"$work/answer"
  curl --silent --show-error --max-time 40 -o "$work/answer" -w '%{http_code}' \
    --cacert "$work/ca.crt" --cert "$work/client.crt" --key "$work/client.key" \
    -H "Accept: application/json" "$@" "$server$api_path?$query" \
    2>"$work/curl-error" || echo "000"
}

# Whether the Node in the answer has `"type": "Ready"` followed by `"status": "True"`, as the
# API writes a condition (type, then status).
node_ready() {
  grep -A1 '"type": "Ready"' "$work/answer" | grep -q '"status": "True"'
}

# Whether the Node in the answer has the label: `"KEY": "VALUE"` in its metadata's labels.
has_label() {
  sed -n '/^    "labels": {/,/^    }/p' "$work/answer" | grep -qF "\"${label%%=*}\": \"${label#*=}\""
}

# A whole number the answer holds one level down, `    "KEY": N` (metadata's generation, the
# status's counts: no two share a name); 0 when it is absent, as the API leaves out zeros.
number() {
  local value
  value="$(sed -n "s/^    \"$1\": \([0-9][0-9]*\),\{0,1\}\$/\1/p" "$work/answer" | head -n 1)"
  echo "${value:-0}"
}

# Why the DaemonSet in the answer is not rolled out yet, or nothing when it is.
not_rolled_out() {
  local desired ready updated
  desired="$(number desiredNumberScheduled)"
  ready="$(number numberReady)"
  updated="$(number updatedNumberScheduled)"
  if (($(number observedGeneration) < $(number generation))); then
    echo "its controller has not seen generation $(number generation) yet"
  elif ((desired == 0)); then
    echo "no node runs it yet"
  elif ((updated < desired || ready < desired)); then
    echo "$ready of $desired pods Ready, $updated of $desired on the latest spec"
  fi
}

for ((attempt = 1; attempt <= attempts; attempt++)); do
  if [[ "$until" == admitted ]]; then
    code="$(ask "dryRun=All&pretty=true" -H "Content-Type: application/json" --data-binary "$body")"
  else
    code="$(ask "pretty=true")"
  fi
  code="${code: -3}"
  case "$until:$code" in
    admitted:2?? | admitted:409)
      echo "admitted: $api_path (HTTP $code on attempt $attempt)"
      exit 0
      ;;
    present:200)
      echo "present: $api_path (on attempt $attempt)"
      exit 0
      ;;
    rolled-out:200)
      why="$(not_rolled_out)"
      if [[ -z "$why" ]]; then
        echo "rolled out: $api_path, $(number numberReady) pods Ready (on attempt $attempt)"
        exit 0
      fi
      ;;
    labelled:200)
      if ! node_ready; then
        why="the node is not Ready yet"
      elif has_label; then
        echo "labelled: $api_path has $label (on attempt $attempt)"
        exit 0
      else
        patch="{\"metadata\":{\"labels\":{\"${label%%=*}\":\"${label#*=}\"}}}"
        code="$(ask "fieldManager=hardway&pretty=true" -X PATCH \
          -H "Content-Type: application/merge-patch+json" --data-binary "$patch")"
        code="${code: -3}"
        case "$code" in
          2??)
            echo "labelled: $api_path now has $label (patched on attempt $attempt)"
            exit 0
            ;;
          404 | 408 | 409 | 429 | 5?? | 000) why="the label's patch: HTTP $code: $(message)" ;;
          *) die "the API refused the label's patch of $api_path (HTTP $code): $(message)" ;;
        esac
      fi
      ;;
    *:404 | *:408 | *:409 | *:429 | *:5?? | *:000) why="HTTP $code: $(message)" ;;
    *) die "the API refused $api_path (HTTP $code): $(message)" ;;
  esac
  echo "attempt $attempt/$attempts: not $until yet ($why)" >&2
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
die "$api_path: not $until after $attempts attempts, $interval s apart; the last answer: $why"
