#!/usr/bin/env bash
# Runs on the host: waits until the Kubernetes API admits an object, by asking it to create the
# object as a dry run (`?dryRun=All`: every admission webhook is called, nothing is stored).
#
# Why a wait: a chart's Deployment can be Ready before its admission webhook answers. MetalLB's
# controller is Ready once its metrics answer; its webhook server starts only after it made its
# own serving certificate, and the API server reaches it through the Service's cluster IP, which
# the control node's kube-proxy must have programmed first. Meanwhile every create fails with
# "failed calling webhook", and the Kubernetes provider does not retry that error.
#
# Answers and what they mean:
#   2xx, 409  admitted (409: an object of that name exists; admission ran before that check)
#   5xx, 404, 408, 429, no answer
#             not yet (the webhook is unreachable or slow, the resource type is not served yet,
#             the API is busy): asks again after --interval, up to --attempts times
#   other 4xx refused: the object itself is wrong (a webhook denied it, or it is invalid); fails
#             at once with the API's message, as the real create would
#
# As an EnsuredScript: `create` waits; `status` and `delete` have nothing to look at or undo.
# The admin kubeconfig (certificates embedded, as the Pki component writes it) comes on stdin;
# its server (the VIP), CA and client certificate are written to a private temporary directory.
#
# usage: wait-for-admission.sh create|status|delete --path /apis/GROUP/VERSION/namespaces/NS/RESOURCE
#          --body JSON [--attempts N] [--interval SECONDS] < kubeconfig
set -euo pipefail

usage() {
  echo "usage: wait-for-admission.sh create|status|delete --path /apis/GROUP/VERSION/namespaces/NS/RESOURCE --body JSON [--attempts N] [--interval SECONDS] < kubeconfig"
}

die() {
  echo "wait-for-admission.sh: $*" >&2
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

api_path=""
body=""
attempts=60
interval=10
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --path) api_path="$2" ;;
    --body) body="$2" ;;
    --attempts) attempts="$2" ;;
    --interval) interval="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$api_path" == /api/* || "$api_path" == /apis/* ]] \
  || die "--path must be an API collection path, /api/... or /apis/... (got '$api_path')"
[[ "$body" == \{* ]] || die "--body must be the object as JSON"
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

url="$server$api_path?dryRun=All"
# The `message` of the API's Status answer (its first, the top-level one: the API indents JSON
# for curl), quotes unescaped; else the start of the answer, or what curl said.
message() {
  local text
  text="$(sed -n 's/.*"message": *"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$work/answer" 2>/dev/null \
    | head -n 1 | sed 's/\\"/"/g')"
  if [[ -z "$text" && -s "$work/answer" ]]; then
    text="$(head -c 400 "$work/answer")"
  fi
  printf '%s' "${text:-$(tr '\n' ' ' <"$work/curl-error" 2>/dev/null)}"
}

for ((attempt = 1; attempt <= attempts; attempt++)); do
  : >"$work/answer"
  code="$(curl --silent --show-error --max-time 30 \
    --cacert "$work/ca.crt" --cert "$work/client.crt" --key "$work/client.key" \
    -H "Content-Type: application/json" -H "Accept: application/json" \
    --data-binary "$body" -o "$work/answer" -w '%{http_code}' "$url" 2>"$work/curl-error")" \
    || code="000"
  case "$code" in
    2?? | 409)
      echo "admitted: $api_path (HTTP $code on attempt $attempt)"
      exit 0
      ;;
    404 | 408 | 429 | 5?? | 000) ;;
    *) die "the API refused the object at $api_path (HTTP $code): $(message)" ;;
  esac
  echo "attempt $attempt/$attempts: not admitted yet (HTTP $code): $(message)" >&2
  if ((attempt < attempts)); then
    sleep "$interval"
  fi
done
die "$api_path: not admitted after $attempts attempts, $interval s apart; the last answer: HTTP $code: $(message)"
