#!/usr/bin/env bash
# Installs or removes one step of a node (etcd, kube-apiserver, the kubelet …): binaries taken
# from release files the host copied to the VM, files from a bundle on stdin (install-files.sh,
# beside this script), and systemd units, which `apply` enables and restarts so a changed flag
# takes effect. Safe to run again: every write replaces, every removal tolerates absence.
#
# usage: node-step.sh apply|remove --step NAME [--root DIR]
#          [--binary KIND STAGED MEMBER DEST]... [--unit NAME]... [--state-dir DIR]...
#          [--after-files COMMAND]
#   KIND       binary (STAGED is the program itself; MEMBER is ignored, give "-") or tar.gz
#   STAGED     the release file as copied to the VM
#   MEMBER     the path inside the archive
#   DEST       where the program goes, e.g. /usr/local/bin/etcd
#   --unit     a systemd unit the step owns; `apply` restarts it, `remove` stops and disables it
#   --state-dir  a directory the daemon fills (etcd data); `remove` deletes it
#   --after-files  update-ca-certificates: run after the files are written and before removal
#   --root     install under DIR instead of /; systemd is then left alone (tests)
set -euo pipefail

usage() {
  sed -n 's/^# \{0,1\}\(usage: .*\)$/\1/p; /^#   /s/^# \{0,1\}//p' "$0"
}

die() {
  echo "node-step.sh: $*" >&2
  exit 1
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
[[ $# -ge 1 ]] || die "a verb (apply or remove) is required; see --help"
verb="$1"
shift
case "$verb" in
  apply | remove) ;;
  *) die "unknown verb '$verb'; expected apply or remove" ;;
esac

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root=""
step=""
after_files=""
kinds=()
staged=()
members=()
dests=()
units=()
state_dirs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary)
      [[ $# -ge 5 ]] || die "--binary needs KIND STAGED MEMBER DEST"
      case "$2" in
        binary | tar.gz) ;;
        *) die "--binary KIND must be binary or tar.gz (got '$2')" ;;
      esac
      [[ "$5" == /* ]] || die "--binary DEST must be absolute (got '$5')"
      kinds+=("$2")
      staged+=("$3")
      members+=("$4")
      dests+=("$5")
      shift 5
      continue
      ;;
  esac
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --root) root="${2%/}" ;;
    --step) step="$2" ;;
    --unit) units+=("$2") ;;
    --state-dir)
      [[ "$2" == /?* ]] || die "--state-dir must be an absolute directory (got '$2')"
      state_dirs+=("$2")
      ;;
    --after-files)
      [[ "$2" == "update-ca-certificates" ]] || die "--after-files supports only update-ca-certificates"
      after_files="$2"
      ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$step" =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "--step must be a lowercase name such as etcd (got '$step')"

binaries_list="$root/var/lib/hardway/binaries/$step.list"

systemd() {
  if [[ -z "$root" ]]; then
    systemctl "$@"
  fi
}

after_files_hook() {
  if [[ -n "$after_files" && -z "$root" ]]; then
    "$after_files" --fresh >/dev/null
  fi
}

if [[ "$verb" == "remove" ]]; then
  for unit in "${units[@]}"; do
    systemd disable --now "$unit" 2>/dev/null || true
  done
  bash "$here/install-files.sh" remove --step "$step" --root "${root:-/}"
  after_files_hook
  if [[ -f "$binaries_list" ]]; then
    while IFS= read -r dest; do
      if [[ -n "$dest" ]]; then
        rm -f -- "$root$dest"
      fi
    done <"$binaries_list"
    rm -f -- "$binaries_list"
  fi
  for dir in "${state_dirs[@]}"; do
    rm -rf -- "${root:?}$dir"
  done
  systemd daemon-reload
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
for i in "${!dests[@]}"; do
  [[ -f "${staged[$i]}" ]] || die "${staged[$i]} is missing: the host copies release files before this step"
  source_file="${staged[$i]}"
  if [[ "${kinds[$i]}" == "tar.gz" ]]; then
    tar -xzf "${staged[$i]}" -C "$work" -- "${members[$i]}" ||
      die "${members[$i]} is not in ${staged[$i]}"
    source_file="$work/${members[$i]}"
  fi
  target="$root${dests[$i]}"
  mkdir -p -- "$(dirname -- "$target")"
  # A running daemon keeps its old binary open; renaming over it never fails with "text file busy".
  install -m 0755 -- "$source_file" "$target.new"
  mv -f -- "$target.new" "$target"
done
mkdir -p -- "$(dirname -- "$binaries_list")"
if [[ ${#dests[@]} -gt 0 ]]; then
  printf '%s\n' "${dests[@]}" >"$binaries_list"
else
  : >"$binaries_list"
fi

bash "$here/install-files.sh" write --step "$step" --root "${root:-/}"
after_files_hook

systemd daemon-reload
for unit in "${units[@]}"; do
  systemd enable "$unit"
  systemd restart "$unit"
done
