#!/usr/bin/env bash
# Builds the prebaked guest image for the end-to-end run: Debian bookworm, debootstrapped with
# everything a node needs (systemd, sshd, cloud-init, the gateway's ldirectord, the nodes' NFS
# client and kernel tools), so the VMs boot offline and cloud-init installs nothing
# (hardway:image.prebaked). The disk is one ext4 file system, booted directly with the image's
# own kernel and initrd (hardway:image.kernel / initrd); cloud-init grows it to the VM's disk.
#
# Cached by the recipe (this script's hash); a second run takes a second.
#
# usage: build-image.sh --out DIR [--debian-mirror URL]
#   prints the directory holding disk.raw, vmlinuz and initrd.img, and nothing else: the
#   harness reads stdout as that path. Every other line goes to stderr, whatever prints it
#   (mkfs.ext4 -q still says "Creating regular file" on stdout).
set -euo pipefail
exec 3>&1 1>&2

TAG=image
# shellcheck source=SCRIPTDIR/bookworm-root.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/bookworm-root.sh"
parse_build_options "$@"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 is not installed (Debian: e2fsprogs)"

dir="$out/bookworm-$(recipe)"
if [[ -f "$dir/disk.raw" && -f "$dir/vmlinuz" && -f "$dir/initrd.img" ]]; then
  say "cached: $dir"
  echo "$dir" >&3
  exit 0
fi

# What debootstrap installs (a plain list); the rest comes from apt inside the new system.
base=(
  # boot, services, login
  systemd-sysv udev dbus kmod initramfs-tools linux-image-cloud-amd64 e2fsprogs procps
  openssh-server sudo ca-certificates curl iproute2
  # cloud-init and what it needs for the NoCloud seed and netplan
  cloud-init python3-cffi-backend netplan.io
)
packages=(
  # the gateway: IPVS and ldirectord (cloudInit.ts rolePackages)
  ipvsadm ldirectord
  # every kubelet node: NFS client and the tools the kubelet and kube-proxy use
  nfs-common conntrack socat ipset iptables ebtables ethtool
  # the node's resolver, as on Ubuntu's cloud images: netplan's nameservers (the host) reach
  # /run/systemd/resolve/resolv.conf, which the kubelet gives pods of dnsPolicy Default, CoreDNS
  # among them (it forwards names outside the cluster there). Without it resolv.conf is empty.
  systemd-resolved
)

start_work
say "debootstrap bookworm (first time: ~5 min)"
bootstrap_root "$(
  IFS=,
  echo "${base[*]}"
)" "${packages[@]}"

# A unique machine per VM: systemd makes the machine id, cloud-init the host keys (the PKI's).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
# minbase has no hosts file: etcd would look localhost up over DNS. cloud-init adds the name.
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# The build's own resolv.conf goes; names come from systemd-resolved's stub, as on Ubuntu.
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
cat >"$root/etc/cloud/cloud.cfg.d/90-hardway.cfg" <<'EOF'
# The seed is a NoCloud disk; nothing else is looked for (no metadata server here).
datasource_list: [NoCloud, None]
locale: false
EOF
# netplan (written by cloud-init) renders for systemd-networkd, which minbase leaves disabled.
ln -sf /lib/systemd/system/systemd-networkd.service \
  "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# ldirectord starts only when a step has written its configuration.
rm -f "$root/etc/systemd/system/multi-user.target.wants/ldirectord.service"
cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
chmod 0644 "$work/vmlinuz" "$work/initrd.img"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*

say "making the ext4 disk"
mkfs.ext4 -q -L root -d "$root" "$work/disk.raw" 4G
rm -rf "$root"
mkdir -p "$out"
mv "$work" "$dir"
trap - EXIT
say "image ready in $dir ($((SECONDS - started)) s, $(du -sh --apparent-size "$dir/disk.raw" | cut -f1) virtual, $(du -sh "$dir/disk.raw" | cut -f1) used)"
echo "$dir" >&3
