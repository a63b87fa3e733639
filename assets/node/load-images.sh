#!/usr/bin/env bash
# Loads OCI image archives into the node's container runtime, so pods can use images that no
# registry serves (air-gapped clusters, the sandbox "pause" image, test images). The archives
# were copied to the VM by the host. containerd only: CRI-O has no import command of its own.
#
# usage: load-images.sh apply|remove --name NAME [--archive FILE]...
#   apply   import every archive into containerd's k8s.io namespace (the one the kubelet uses)
#           and record the image names it held in /var/lib/hardway/images/NAME.list
#   remove  delete the recorded images; nothing to do when they are gone already
set -euo pipefail

die() {
  echo "load-images.sh: $*" >&2
  exit 1
}

if [[ "${1:-}" == "--help" ]]; then
  sed -n 's/^# \{0,1\}\(usage: .*\)$/\1/p; /^#   /s/^# \{0,1\}//p' "$0"
  exit 0
fi
[[ $# -ge 1 ]] || die "a verb (apply or remove) is required"
verb="$1"
shift
name=""
archives=()
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --name) name="$2" ;;
    --archive) archives+=("$2") ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$name" =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "--name must be a lowercase name (got '$name')"
list="/var/lib/hardway/images/$name.list"
ctr=(/usr/local/bin/ctr --namespace k8s.io)

if [[ "$verb" == "remove" ]]; then
  if [[ -f "$list" ]]; then
    while IFS= read -r image; do
      [[ -z "$image" ]] || "${ctr[@]}" images remove "$image" >/dev/null 2>&1 || true
    done <"$list"
    rm -f -- "$list"
  fi
  exit 0
fi
[[ "$verb" == "apply" ]] || die "unknown verb '$verb'; expected apply or remove"

mkdir -p -- "$(dirname -- "$list")"
: >"$list.tmp"
for archive in "${archives[@]}"; do
  [[ -f "$archive" ]] || die "$archive is missing: the host copies the archives before this step"
  output="$("${ctr[@]}" images import "$archive" 2>&1)" ||
    die "could not import $archive: $output"
  # The names an OCI archive carries are annotations of its index.
  # The listing is read whole first: a reader that stops early would kill tar with SIGPIPE.
  listing="$(tar -tf "$archive")"
  index="$(grep -m1 -E '^(\./)?index\.json$' <<<"$listing")" || die "$archive is not an OCI image archive"
  tar -xOf "$archive" "$index" | grep -o '"io.containerd.image.name": *"[^"]*"' |
    sed 's/.*: *"\(.*\)"/\1/' >>"$list.tmp"
  echo "loaded $archive"
done
mv -f -- "$list.tmp" "$list"
