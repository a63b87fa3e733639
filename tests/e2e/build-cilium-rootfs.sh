#!/usr/bin/env bash
# Builds the base layer of the e2e's Cilium agent image: a Debian bookworm root file system with
# what the agent runs beside its own programs, as upstream's cilium-runtime image has it: clang
# (the agent compiles its BPF programs on each node at run time; Cilium needs clang 18 or newer,
# Debian has clang-19), iproute2, iptables, ipset and kmod, plus bash and util-linux (mount,
# nsenter) for the chart's init containers. ciliumArtifacts.ts lays the agent's programs, its
# BPF sources and scripts over it.
#
# Cached by the recipe (this script's hash); a second run takes a second.
#
# usage: build-cilium-rootfs.sh --out DIR [--debian-mirror URL]
#   prints the path of the layer (an uncompressed tar) and nothing else; progress goes to stderr.
set -euo pipefail
exec 3>&1 1>&2

TAG=cilium-rootfs
# shellcheck source=SCRIPTDIR/bookworm-root.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/bookworm-root.sh"
parse_build_options "$@"

layer="$out/cilium-rootfs-bookworm-$(recipe).tar"
if [[ -f "$layer" ]]; then
  say "cached: $layer"
  echo "$layer" >&3
  exit 0
fi

packages=(clang-19 iproute2 iptables ipset kmod ca-certificates)

start_work
say "debootstrap bookworm (first time: ~3 min)"
bootstrap_root "" "${packages[@]}"

# The agent runs `clang`; Debian names it by its major version.
ln -sfn clang-19 "$root/usr/bin/clang"
# Nothing a container needs: package lists, archives and caches, documentation, translations,
# the build's resolver.
rm -rf "$root/var/cache/apt"/*.bin "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/* \
  "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale" \
  "$root/etc/resolv.conf"
# Nor what clang-19 depends on for building programs that the agent never builds: it compiles
# BPF objects only, with -nostdinc and its own headers, and links nothing (pkg/datapath/loader).
# So no C or C++ headers, static libraries, sanitizer runtimes, GCC's start files, or libclang's
# C API (the clang program itself uses libclang-cpp and libLLVM). A third of the layer, and as
# much of every node's pull.
rm -rf "$root/usr/include" "$root/usr/lib/gcc" "$root/usr/lib/x86_64-linux-gnu"/*.a \
  "$root/usr/lib/x86_64-linux-gnu"/lib{a,hwa,l,t,ub}san.so* "$root/usr/lib/x86_64-linux-gnu"/libclang-19.so*
# What is left must still compile a BPF object the way the agent does.
echo 'int answer = 42;' >"$root/tmp/check.c"
chroot "$root" clang -O2 --target=bpf -nostdinc -c /tmp/check.c -o /tmp/check.o ||
  die "clang no longer compiles a BPF object in the trimmed file system"
rm -f "$root/tmp/check.c" "$root/tmp/check.o"

tar --sort=name --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
mv "$work/layer.tar" "$layer"
say "layer ready: $layer ($((SECONDS - started)) s, $(du -sh "$layer" | cut -f1))"
echo "$layer" >&3
