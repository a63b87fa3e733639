# Sourced by build-image.sh and build-cilium-rootfs.sh, which set TAG (their log prefix) first:
# their shared options (--out DIR, --debian-mirror URL), their cache key, and a Debian bookworm
# root file system made by debootstrap with more packages installed by apt inside it.
# shellcheck shell=bash

say() { echo "[$TAG] $*" >&2; }
die() {
  echo "[$TAG] error: $*" >&2
  exit 1
}

# Sets out and debian_mirror from the script's arguments; refuses anything else, and a non-root user.
parse_build_options() {
  out=""
  debian_mirror="http://deb.debian.org/debian"
  while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "option $1 needs a value"
    case "$1" in
      --out) out="$2" ;;
      --debian-mirror) debian_mirror="$2" ;;
      *) die "unknown option $1" ;;
    esac
    shift 2
  done
  [[ "$out" == /* ]] || die "--out must be an absolute directory"
  [[ $EUID -eq 0 ]] || die "debootstrap needs root"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian: debootstrap)"
}

# The cache key: the building script's hash and this file's, so a change of either builds anew.
recipe() {
  cat "$0" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
}

# Makes the build's work directory under $out (removed on exit unless the script moves it away)
# and sets work, root (its root file system, not made yet) and started (the build's start).
start_work() {
  started=$SECONDS
  mkdir -p "$out"
  work="$(mktemp -d "$out/.build.XXXXXX")"
  root="$work/root"
  trap 'umount -R "$work/root/proc" "$work/root/sys" "$work/root/dev" 2>/dev/null || true; rm -rf -- "$work"' EXIT
}

# bootstrap_root INCLUDE PACKAGE...: debootstrap's minimal bookworm in $root with the
# comma-separated INCLUDE (empty: none; debootstrap resolves only a plain list well), then the
# PACKAGEs by apt inside it, with /proc, /sys and /dev mounted for their scripts. The logs stay
# in $work and their tails are shown when a step fails.
bootstrap_root() {
  local include="$1"
  shift
  debootstrap --variant=minbase ${include:+--include="$include"} bookworm "$root" "$debian_mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" >&2 2>/dev/null
    die "debootstrap failed"
  }
  say "  debootstrap: done in $((SECONDS - started)) s"
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"
  printf 'deb %s bookworm main\n' "$debian_mirror" >"$root/etc/apt/sources.list"
  chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $*" \
    >"$work/apt.log" 2>&1 || {
    tail -n 40 "$work/apt.log" >&2
    die "installing $* failed"
  }
  umount "$root/proc" "$root/sys" "$root/dev"
  say "  packages: done in $((SECONDS - started)) s"
}
