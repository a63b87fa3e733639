#!/usr/bin/env bash
# Installs or removes one step of a node (etcd, kube-apiserver, the kubelet …): binaries taken
# from release files the host copied to the VM, files from a bundle on stdin (install-files.sh,
# beside this script), and systemd units.
#
# apply converges: a binary or file is written only when it differs, and a unit restarts only
# when something of its step changed or it is not running. "Changed" is judged by content, not
# by who wrote it: a file two steps install (the service-account key: the API server's and the
# controller manager's) that the other step already rewrote still restarts this step's daemon,
# since the step's files differ from those its units last started with. Running it again
# changes nothing.
# It never deletes state: an update is applied in place. For every unit it (re)started it prints
#  hardway-step: restarted <unit>    (it was running: the caller may wait until it is ready)
#  hardway-step: started <unit>      (it was not running)
# and for a running unit that only a --reload file of changed
#  hardway-step: reloaded <unit>     (systemctl reload: it read the file again, kept running)
#
# remove stops and disables the units, unmounts whatever is still mounted below the state
# directories (a kubelet's volumes, NFS shares among them), deletes the step's files and
# binaries (those no other step also installed) and then the state directories, never crossing
# into another file system. Safe to run again, and on a node where the step never ran.
#
# usage: node-step.sh apply|remove --step NAME [--root DIR]
#          [--binary KIND STAGED MEMBER DEST]... [--unit NAME]... [--start-no-block NAME]...
#          [--state-dir DIR]... [--no-restart FILE]... [--reload FILE]...
#          [--after-files COMMAND]
#   KIND       binary (STAGED is the program itself; MEMBER is ignored, give "-") or tar.gz
#   STAGED     the release file as copied to the VM
#   MEMBER     the path inside the archive
#   DEST       where the program goes, e.g. /usr/local/bin/etcd
#   --unit     a systemd unit the step owns; apply (re)starts it, remove stops and disables it
#   --start-no-block  a unit whose first start returns at once (etcd: it is ready only with a
#              quorum, so the first member would wait for the others)
#   --state-dir  a directory the daemon fills (etcd's data, the kubelet's); remove deletes it
#   --no-restart  a file whose change alone restarts nothing: the daemon reads it again by
#              itself (etcd its certificate and key, at every TLS handshake) or never reads it
#   --reload   a file whose change alone reloads the units instead (systemctl reload):
#              ldirectord reads its config again and keeps the real servers that stay in the
#              table, where a restart would empty it until each server's first check
#   --after-files  update-ca-certificates: run after the files changed and after removal
#   --root     install under DIR instead of /; systemd and mounts are then left alone (tests)
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
no_block=()
state_dirs=()
no_restart=()
reload_files=()
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
    --start-no-block) no_block+=("$2") ;;
    --state-dir)
      [[ "$2" == /?* && "/$2/" != */../* ]] || die "--state-dir must be an absolute directory (got '$2')"
      state_dirs+=("${2%/}")
      ;;
    --no-restart)
      [[ "$2" == /?* ]] || die "--no-restart must be an absolute file path (got '$2')"
      no_restart+=("$2")
      ;;
    --reload)
      [[ "$2" == /?* ]] || die "--reload must be an absolute file path (got '$2')"
      reload_files+=("$2")
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

binaries_dir="$root/var/lib/hardway/binaries"
binaries_list="$binaries_dir/$step.list"
# Which staged file (by size and mtime) each binary was last taken from: an unchanged release
# file is not unpacked again, which under emulation saves a minute per step.
binaries_sources="$binaries_dir/$step.sources"
# The fingerprint of what the step's units last (re)started with (see started_with).
started_file="$binaries_dir/$step.started"
# The fingerprint of the --reload files the units last read (see reloaded_with).
reloaded_file="$binaries_dir/$step.reloaded"
files_manifest="$root/var/lib/hardway/files/$step.list"

# systemctl gives up on PID 1 after 25 s by default ("Failed to enable unit: Connection timed
# out"). On a loaded emulated VM, with several steps reloading systemd at once, PID 1 can take
# longer than that to answer; it is busy, not gone, so wait for it.
export SYSTEMD_BUS_TIMEOUT="${SYSTEMD_BUS_TIMEOUT:-300}"

systemd() {
  if [[ -z "$root" ]]; then
    systemctl "$@"
  fi
}

unit_active() {
  [[ -z "$root" ]] && systemctl is-active --quiet "$1"
}

after_files_hook() {
  if [[ -n "$after_files" && -z "$root" ]]; then
    "$after_files" >/dev/null
  fi
}

# True when another step's binary list names the path (cni plugins come with either runtime).
binary_owned_elsewhere() {
  local other
  for other in "$binaries_dir"/*.list; do
    [[ -e "$other" && "$other" != "$binaries_list" ]] || continue
    if grep -qxF -- "$1" "$other"; then
      return 0
    fi
  done
  return 1
}

# Unmounts every mount at or below DIR, deepest first, so deleting DIR never reaches through a
# mount into someone else's data (an NFS export, a host path).
unmount_below() {
  local dir="$1" target
  [[ -z "$root" ]] || return 0
  while IFS= read -r target; do
    umount -- "$target" 2>/dev/null || umount -l -- "$target" ||
      die "cannot unmount $target below $dir"
  done < <(awk -v dir="$dir" '$2 == dir || index($2, dir "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
}

if [[ "$verb" == "remove" ]]; then
  for unit in "${units[@]}"; do
    systemd disable --now "$unit" 2>/dev/null || true
  done
  for dir in "${state_dirs[@]}"; do
    unmount_below "$dir"
  done
  bash "$here/install-files.sh" remove --step "$step" --root "${root:-/}" >/dev/null
  after_files_hook
  if [[ -f "$binaries_list" ]]; then
    while IFS= read -r dest; do
      if [[ -n "$dest" ]] && ! binary_owned_elsewhere "$dest"; then
        rm -f -- "$root$dest"
      fi
    done <"$binaries_list"
    rm -f -- "$binaries_list"
  fi
  rm -f -- "$binaries_sources" "$started_file" "$reloaded_file"
  for dir in "${state_dirs[@]}"; do
    rm -rf --one-file-system -- "$root$dir"
  done
  systemd daemon-reload
  exit 0
fi

changed=0
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT

# Each archive is unpacked once, with every member this step takes from it, into a directory of
# its own ($unpacked): gunzip is slow on an emulated VM, and the CNI plugins' archive used to be
# read once per plugin.
unpacked_archives=()
unpacked=""
unpack() {
  local archive="$1" j wanted=()
  for j in "${!unpacked_archives[@]}"; do
    if [[ "${unpacked_archives[$j]}" == "$archive" ]]; then
      unpacked="$work/archive-$j"
      return 0
    fi
  done
  unpacked="$work/archive-${#unpacked_archives[@]}"
  unpacked_archives+=("$archive")
  for j in "${!staged[@]}"; do
    if [[ "${staged[$j]}" == "$archive" && "${kinds[$j]}" == "tar.gz" ]]; then
      wanted+=("${members[$j]}")
    fi
  done
  mkdir -p -- "$unpacked"
  tar -xzf "$archive" -C "$unpacked" -- "${wanted[@]}" ||
    die "${wanted[*]}: not all of them are in $archive"
}

sources=()
for i in "${!dests[@]}"; do
  [[ -f "${staged[$i]}" ]] || die "${staged[$i]} is missing: the host copies release files before this step"
  sources+=("$(stat -c '%s:%Y' -- "${staged[$i]}")|${staged[$i]}|${members[$i]}|${dests[$i]}")
  if [[ -f "$root${dests[$i]}" && -f "$binaries_sources" ]] &&
    grep -qxF -- "${sources[$i]}" "$binaries_sources"; then
    continue
  fi
  source_file="${staged[$i]}"
  if [[ "${kinds[$i]}" == "tar.gz" ]]; then
    unpack "${staged[$i]}"
    source_file="$unpacked/${members[$i]}"
  fi
  target="$root${dests[$i]}"
  if [[ -f "$target" ]] && cmp -s -- "$source_file" "$target"; then
    continue
  fi
  mkdir -p -- "$(dirname -- "$target")"
  # A running daemon keeps its old binary open; renaming over it never fails with "text file busy".
  install -m 0755 -- "$source_file" "$target.new"
  mv -f -- "$target.new" "$target"
  changed=$((changed + 1))
done
mkdir -p -- "$binaries_dir"
if [[ ${#dests[@]} -gt 0 ]]; then
  printf '%s\n' "${dests[@]}" >"$binaries_list"
  printf '%s\n' "${sources[@]}" >"$binaries_sources"
else
  : >"$binaries_list"
  rm -f -- "$binaries_sources"
fi

# Whether the first argument is one of the others.
listed() {
  local needle="$1" item
  shift
  for item in "$@"; do
    if [[ "$item" == "$needle" ]]; then
      return 0
    fi
  done
  return 1
}

# Whether the file is one of the --reload files.
reloads_for() {
  listed "$1" "${reload_files[@]}"
}

# Whether a change to the file restarts the step's units (all but the --no-restart and --reload
# files).
restarts_for() {
  ! listed "$1" "${no_restart[@]}" && ! reloads_for "$1"
}

written="$(bash "$here/install-files.sh" write --step "$step" --root "${root:-/}")"
files_changed=0
units_changed=0
reload_changed=0
while IFS= read -r line; do
  [[ "$line" == "changed "* ]] || continue
  files_changed=$((files_changed + 1))
  if restarts_for "${line#changed }"; then
    changed=$((changed + 1))
  elif reloads_for "${line#changed }"; then
    reload_changed=$((reload_changed + 1))
  fi
  if [[ "${line#changed }" == /etc/systemd/* ]]; then
    units_changed=$((units_changed + 1))
  fi
done <<<"$written"
if ((files_changed > 0)); then
  after_files_hook
fi

# The path, mode and content of each of the step's files for which `$1 PATH` holds, one
# "PATH MODE SHA256" line each in path order ("-" for what is gone). One stat and one sha256sum
# for all of them: each process costs a fifth of a second on a loaded emulated guest, and three
# per file took 46 s for the API server's 18 files in HA run 12.
files_state() {
  local path mode sum name
  local -a wanted=()
  local -A modes=() sums=()
  [[ -f "$files_manifest" ]] || return 0
  while IFS= read -r path; do
    if [[ -n "$path" ]] && "$1" "$path"; then
      wanted+=("$path")
    fi
  done < <(sort -- "$files_manifest")
  ((${#wanted[@]} > 0)) || return 0
  while read -r mode name; do
    modes["${name#"$root"}"]="$mode"
  done < <(stat -c '%a %n' -- "${wanted[@]/#/$root}" 2>/dev/null || true)
  while read -r sum name; do
    sums["${name#"$root"}"]="$sum"
  done < <(sha256sum -- "${wanted[@]/#/$root}" 2>/dev/null || true)
  for path in "${wanted[@]}"; do
    printf '%s %s %s\n' "$path" "${modes[$path]:--}" "${sums[$path]:--}"
  done
}

# What the units run with: the step's files that restart it (not the --no-restart or --reload
# ones) and the release file each binary came from, as one sha256.
started_with() {
  {
    files_state restarts_for
    cat -- "$binaries_sources" 2>/dev/null || true
  } | sha256sum | cut -c1-64
}
# What the units last read of the --reload files, as one sha256.
reloaded_with() {
  files_state reloads_for | sha256sum | cut -c1-64
}
fingerprint="$(started_with)"
reload_fingerprint="$(reloaded_with)"
# A node whose step ran before fingerprints were recorded has none: only what was written counts.
if [[ -f "$started_file" && "$(<"$started_file")" != "$fingerprint" ]]; then
  changed=$((changed + 1))
fi
if [[ -f "$reloaded_file" && "$(<"$reloaded_file")" != "$reload_fingerprint" ]]; then
  reload_changed=$((reload_changed + 1))
fi

# A reload runs every systemd generator again, seconds each on an emulated VM, and PID 1 answers
# nobody meanwhile: only when a unit file of this step changed, or systemd says a unit's file on
# disk is not the one it loaded (written by a run that stopped before reloading). `enable` makes
# the boot-time links only; it would reload as well without --no-reload.
for unit in "${units[@]}"; do
  if [[ -z "$root" && "$(systemctl show --property NeedDaemonReload --value "$unit")" == "yes" ]]; then
    units_changed=$((units_changed + 1))
  fi
done
if ((units_changed > 0)); then
  systemd daemon-reload
fi
for unit in "${units[@]}"; do
  systemd enable --quiet --no-reload "$unit"
  if unit_active "$unit"; then
    if ((changed > 0)); then
      systemd restart "$unit"
      echo "hardway-step: restarted $unit"
    elif ((reload_changed > 0)); then
      systemd reload "$unit"
      echo "hardway-step: reloaded $unit"
    fi
  else
    blocking=()
    for name in "${no_block[@]}"; do
      if [[ "$name" == "$unit" ]]; then
        blocking=(--no-block)
      fi
    done
    systemd restart "${blocking[@]}" "$unit"
    echo "hardway-step: started $unit"
  fi
done
printf '%s\n' "$fingerprint" >"$started_file"
printf '%s\n' "$reload_fingerprint" >"$reloaded_file"
