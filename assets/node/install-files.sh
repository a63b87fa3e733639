#!/usr/bin/env bash
# Writes the files of one installation step from a bundle on stdin, and removes them again.
# Secrets (keys, kubeconfigs) travel only on stdin, never on a command line.
#
# The bundle has one line per file:   FILE <absolute path> <octal mode> <base64 content>
# Every line is checked before anything is written; a file whose content and mode are already
# right is left alone, any other is written to a temporary file beside its target and renamed
# over it, so a reader never sees half a file. `write` prints `changed <path>` for each file it
# wrote or removed, so the caller knows whether to restart a daemon. The paths are
# recorded in <manifest dir>/<step>.list: `remove` deletes them, and a later `write` deletes
# the ones the new bundle no longer has. A path that another step's manifest also lists (a CA
# certificate shared by two daemons) is left in place until its last owner goes.
#
# usage: install-files.sh write|remove --step NAME [--root DIR] [--manifest-dir DIR]
set -euo pipefail

usage() {
  echo "usage: install-files.sh write|remove --step NAME [--root DIR] [--manifest-dir DIR]"
  echo "  write   reads FILE lines on stdin and installs them under DIR (default /)"
  echo "  remove  deletes the files the step installed"
}

die() {
  echo "install-files.sh: $*" >&2
  exit 1
}

if [[ "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
[[ $# -ge 1 ]] || die "a verb (write or remove) is required; see --help"
verb="$1"
shift
case "$verb" in
  write | remove) ;;
  *) die "unknown verb '$verb'; expected write or remove" ;;
esac

root=""
step=""
manifest_dir="/var/lib/hardway/files"
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --root) root="${2%/}" ;;
    --step) step="$2" ;;
    --manifest-dir) manifest_dir="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ "$step" =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "--step must be a lowercase name such as etcd (got '$step')"
[[ "$manifest_dir" == /* ]] || die "--manifest-dir must be absolute (got '$manifest_dir')"

manifests="$root$manifest_dir"
manifest="$manifests/$step.list"

# True when a manifest other than this step's lists the path.
owned_elsewhere() {
  local other
  for other in "$manifests"/*.list; do
    [[ -e "$other" && "$other" != "$manifest" ]] || continue
    if grep -qxF -- "$1" "$other"; then
      return 0
    fi
  done
  return 1
}

# Deletes each listed path that no other step owns.
remove_paths() {
  local target
  for target in "$@"; do
    [[ -n "$target" ]] || continue
    if ! owned_elsewhere "$target" && [[ -e "$root$target" ]]; then
      rm -f -- "$root$target"
      echo "changed $target"
    fi
  done
}

previous=()
if [[ -f "$manifest" ]]; then
  mapfile -t previous <"$manifest"
fi

if [[ "$verb" == "remove" ]]; then
  remove_paths "${previous[@]}"
  rm -f -- "$manifest"
  exit 0
fi

paths=()
modes=()
contents=()
line_no=0
while IFS=' ' read -r kind target mode data extra || [[ -n "${kind:-}" ]]; do
  line_no=$((line_no + 1))
  [[ -n "$kind" ]] || continue
  [[ "$kind" == "FILE" ]] || die "line $line_no: expected FILE, got '$kind'"
  [[ -z "${extra:-}" ]] || die "line $line_no: unexpected text after the content"
  [[ "$target" == /* && "$target" != */ ]] || die "line $line_no: '$target' is not an absolute file path"
  [[ "/$target/" != */../* && "/$target/" != */./* ]] || die "line $line_no: '$target' has . or .. segments"
  [[ "$mode" =~ ^0?[0-7]{3}$ ]] || die "line $line_no: '$mode' is not an octal mode such as 0644"
  [[ "${data:-}" =~ ^[A-Za-z0-9+/]*=*$ ]] || die "line $line_no: the content of $target is not base64"
  paths+=("$target")
  modes+=("$mode")
  contents+=("${data:-}")
done

mkdir -p -- "$manifests"
# Few processes per file: each costs a fifth of a second on a loaded emulated guest. The modes
# of the targets there are now are read with one stat; a file that is already right costs a
# base64 and a cmp.
declare -A present_modes=()
if [[ ${#paths[@]} -gt 0 ]]; then
  while read -r mode name; do
    present_modes["$name"]="$mode"
  done < <(stat -c '%a %n' -- "${paths[@]/#/$root}" 2>/dev/null || true)
fi
unneeded=()
trap 'rm -f -- "${unneeded[@]}"' EXIT
for i in "${!paths[@]}"; do
  target="$root${paths[$i]}"
  dir="${target%/*}"
  dir="${dir:-/}"
  [[ -d "$dir" ]] || mkdir -p -- "$dir"
  tmp="$dir/.install.$$.$i"
  unneeded+=("$tmp")
  base64 -d <<<"${contents[$i]}" >"$tmp" || die "could not decode the content of ${paths[$i]}"
  printf -v wanted_mode '%o' "$((8#${modes[$i]}))"
  if [[ -f "$target" && "${present_modes[$target]:-}" == "$wanted_mode" ]] &&
    cmp -s -- "$tmp" "$target"; then
    continue
  fi
  chmod -- "${modes[$i]}" "$tmp"
  mv -f -- "$tmp" "$target"
  echo "changed ${paths[$i]}"
done

stale=()
for old in "${previous[@]}"; do
  keep=false
  for new in "${paths[@]}"; do
    if [[ "$old" == "$new" ]]; then
      keep=true
      break
    fi
  done
  if [[ "$keep" == false ]]; then
    stale+=("$old")
  fi
done
if [[ ${#paths[@]} -gt 0 ]]; then
  printf '%s\n' "${paths[@]}" >"$manifest.tmp"
else
  : >"$manifest.tmp"
fi
mv -f -- "$manifest.tmp" "$manifest"
remove_paths "${stale[@]}"
