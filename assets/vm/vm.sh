#!/usr/bin/env bash
# Runs one QEMU VM from a state directory. Every action is safe to repeat.
#
#   vm.sh create --state-dir DIR --base-image FILE [options] < bundle
#   vm.sh status --state-dir DIR [any create option]
#   vm.sh delete --state-dir DIR [--tap NAME] [any create option]
#
# create: makes DIR, a qcow2 overlay disk.qcow2 on the base image (an existing overlay is kept:
#   that is how VMs come back with their data after a host reboot; it only ever grows), the
#   cloud-init seed.iso, the tap device, then starts QEMU (unless it already runs with the same
#   argv), waits until SSH answers and cloud-init has finished, and prints the VM's instance id:
#   made with its disk, it stays the same for the disk's life and changes when the disk is new.
# status: exits 0 if and only if the VM's QEMU process is alive.
# delete: ACPI power-down over QMP, a bounded wait, then kill; removes the tap and DIR.
#
# Options:
#   --tap NAME --bridge NAME     Linux: attach the VM through this tap, enslaved to the bridge
#   --efi-vars-template FILE     UEFI boot: copied once to DIR/efi-vars.fd
#   --ssh-host IP                wait until `ssh USER@IP` works with the bundled key
#   --ssh-user USER              default ubuntu
#
# The bundle on stdin (create only) is one file per line, "<name> <base64 of content>". It holds
# what may change without replacing the VM (the same flags must always mean the same VM):
#   qemu-argv         the complete QEMU argv, NUL-separated (built by components/vm/qemu.ts)
#   disk-size         GiB of the overlay; a larger value grows it at the next start
#   boot-timeout      seconds to wait for SSH (default 900: TCG boots slowly)
#   stop-timeout      seconds a power-down may take before kill (default 60); kept for delete
#   user-data, meta-data, network-config    the NoCloud seed (optional: no seed without them)
#   ssh-private-key   needed with --ssh-host; kept in a temporary file that is always removed
#   host-key          the VM's SSH host public key: the only key accepted (optional: without
#                     it any host key is accepted, for guests that make their own)
# The seed ISO is made with genisoimage or mkisofs (Debian: genisoimage; Homebrew: cdrtools),
# falling back to `hdiutil makehybrid` on macOS, which ships with the system.
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

log() {
    printf 'vm.sh: %s\n' "$*" >&2
}

die() {
    log "$*"
    exit 1
}

[[ $# -ge 1 ]] || usage
action=$1
shift

state_dir=""
base_image=""
tap=""
bridge=""
efi_vars_template=""
ssh_host=""
ssh_user="ubuntu"
boot_timeout=900
stop_timeout=60

while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "option $1 needs a value"
    case "$1" in
        --state-dir) state_dir=$2 ;;
        --base-image) base_image=$2 ;;
        --tap) tap=$2 ;;
        --bridge) bridge=$2 ;;
        --efi-vars-template) efi_vars_template=$2 ;;
        --ssh-host) ssh_host=$2 ;;
        --ssh-user) ssh_user=$2 ;;
        *) die "unknown option $1" ;;
    esac
    shift 2
done

[[ -n "$state_dir" && "$state_dir" == /* ]] || die "--state-dir must be an absolute path"

disk="$state_dir/disk.qcow2"
seed_iso="$state_dir/seed.iso"
efi_vars="$state_dir/efi-vars.fd"
pid_file="$state_dir/qemu.pid"
qmp_socket="$state_dir/qmp.sock"
serial_log="$state_dir/serial.log"
argv_file="$state_dir/qemu.argv"
instance_file="$state_dir/instance-id"
stop_timeout_file="$state_dir/stop-timeout"
if [[ -f "$stop_timeout_file" ]]; then
    stop_timeout=$(<"$stop_timeout_file")
fi

# The pid of the VM's QEMU if it runs. The pid file survives a host reboot, so the pid must
# also still belong to a QEMU process, not to whatever got that number since.
running_pid() {
    local pid comm
    [[ -f "$pid_file" ]] || return 1
    pid=$(tr -dc '0-9' <"$pid_file")
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    comm=$(ps -p "$pid" -o comm= 2>/dev/null) || return 1
    [[ "$comm" == *qemu* ]] || return 1
    printf '%s\n' "$pid"
}

qmp_powerdown() {
    local commands='{"execute":"qmp_capabilities"}
{"execute":"system_powerdown"}'
    if command -v socat >/dev/null 2>&1; then
        printf '%s\n' "$commands" | socat -t 2 - "UNIX-CONNECT:$qmp_socket" >/dev/null 2>&1 || true
    elif command -v nc >/dev/null 2>&1; then
        printf '%s\n' "$commands" | nc -U -w 2 "$qmp_socket" >/dev/null 2>&1 || true
    else
        log "neither socat nor nc is installed; cannot ask the guest to shut down"
    fi
}

wait_gone() {
    local pid=$1 seconds=$2 waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < seconds * 5)); do
        sleep 0.2
        waited=$((waited + 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

stop_vm() {
    local pid
    pid=$(running_pid) || return 0
    log "powering down $state_dir (pid $pid)"
    if [[ -S "$qmp_socket" ]]; then
        qmp_powerdown
    fi
    wait_gone "$pid" "$stop_timeout" && return 0
    log "no clean shutdown after ${stop_timeout}s; killing pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 && return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "pid $pid survived SIGKILL"
}

serial_tail() {
    if [[ -f "$serial_log" ]]; then
        log "last lines of $serial_log:"
        tail -n 40 "$serial_log" >&2
    fi
}

make_seed_iso() {
    local dir=$1 out=$2 files=()
    local f
    for f in user-data meta-data network-config; do
        [[ -f "$dir/$f" ]] && files+=("$dir/$f")
    done
    if command -v genisoimage >/dev/null 2>&1; then
        genisoimage -quiet -output "$out" -volid cidata -joliet -rock "${files[@]}"
    elif command -v mkisofs >/dev/null 2>&1; then
        mkisofs -quiet -output "$out" -volid cidata -joliet -rock "${files[@]}"
    elif command -v hdiutil >/dev/null 2>&1; then
        rm -f "$out"
        hdiutil makehybrid -quiet -o "$out" -iso -joliet -default-volume-name cidata "$dir"
    else
        die "no ISO tool: install genisoimage (Debian/Ubuntu) or cdrtools (Homebrew)"
    fi
}

# Cloud images are qcow2; a prebaked image may be a raw file system.
base_format() {
    qemu-img info --force-share "$base_image" | awk '/^file format:/ { print $3 }'
}

disk_virtual_bytes() {
    qemu-img info --force-share "$disk" | awk -F'[()]' '/^virtual size:/ { split($2, a, " "); print a[1] }'
}

prepare_disk() {
    local bytes=$((disk_size * 1024 * 1024 * 1024))
    if [[ ! -f "$disk" ]]; then
        [[ -f "$base_image" ]] || die "base image $base_image does not exist"
        qemu-img create -q -f qcow2 -F "$(base_format)" -b "$base_image" "$disk.tmp" "${disk_size}G"
        mv -f "$disk.tmp" "$disk"
        # A new disk is a new machine: whatever was installed on the old one is gone.
        cat /proc/sys/kernel/random/uuid >"$instance_file"
    elif ! running_pid >/dev/null && (($(disk_virtual_bytes) < bytes)); then
        log "growing $disk to ${disk_size}G"
        qemu-img resize -q "$disk" "${disk_size}G"
    fi
}

prepare_tap() {
    [[ -n "$tap" ]] || return 0
    [[ -n "$bridge" ]] || die "--tap needs --bridge"
    if ! ip link show dev "$tap" >/dev/null 2>&1; then
        ip tuntap add dev "$tap" mode tap
    fi
    ip link set dev "$tap" master "$bridge"
    ip link set dev "$tap" up
}

read_bundle() {
    local dir=$1 name content
    while IFS=' ' read -r name content; do
        [[ -n "$name" ]] || continue
        [[ "$name" =~ ^(qemu-argv|disk-size|boot-timeout|stop-timeout|user-data|meta-data|network-config|ssh-private-key|host-key)$ ]] ||
            die "unknown bundle entry $name"
        printf '%s' "$content" | base64 -d >"$dir/$name" || die "bundle entry $name is not base64"
    done
    [[ -s "$dir/qemu-argv" ]] || die "the bundle on stdin has no qemu-argv"
    disk_size=$(tr -d '[:space:]' <"$dir/disk-size" 2>/dev/null || true)
    [[ "$disk_size" =~ ^[0-9]+$ ]] || die "the bundle on stdin needs disk-size in whole GiB"
    if [[ -f "$dir/boot-timeout" ]]; then
        boot_timeout=$(<"$dir/boot-timeout")
    fi
    if [[ -f "$dir/stop-timeout" ]]; then
        stop_timeout=$(<"$dir/stop-timeout")
    fi
    [[ "$boot_timeout" =~ ^[0-9]+$ && "$stop_timeout" =~ ^[0-9]+$ ]] || die "timeouts are whole seconds"
}

# ssh to the VM with the bundled key; the host key must be the bundled one when there is one.
vm_ssh() {
    local dir=$1
    shift
    local known=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)
    if [[ -s "$dir/known_hosts" ]]; then
        known=(-o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$dir/known_hosts" -o GlobalKnownHostsFile=/dev/null)
    fi
    # 30 s also bounds the banner exchange, which a loaded emulated guest can take long over.
    ssh -i "$dir/ssh-private-key" -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=30 \
        "${known[@]}" -o LogLevel=ERROR "$ssh_user@$ssh_host" "$@"
}

wait_for_ssh() {
    local dir=$1 deadline=$((SECONDS + boot_timeout))
    log "waiting up to ${boot_timeout}s for SSH on $ssh_user@$ssh_host"
    until vm_ssh "$dir" true </dev/null >/dev/null 2>&1; do
        if ! running_pid >/dev/null; then
            serial_tail
            die "QEMU exited before SSH answered on $ssh_host"
        fi
        if ((SECONDS >= deadline)); then
            serial_tail
            die "SSH on $ssh_host did not answer within ${boot_timeout}s"
        fi
        sleep 2
    done
    # Packages, users and files come from cloud-init after sshd is already up: the VM is ready
    # only when it is done. Exit 2 is "done, with warnings" (a deprecated key, say).
    log "waiting for cloud-init on $ssh_host"
    local status
    while true; do
        status=0
        vm_ssh "$dir" timeout "$((deadline > SECONDS ? deadline - SECONDS : 1))" cloud-init status --wait </dev/null >/dev/null 2>&1 || status=$?
        # 255 is ssh's own failure (a loaded guest that answered once may miss the next banner
        # exchange), not cloud-init's: ask again while the boot timeout lasts.
        if ((status == 255 && SECONDS < deadline)); then
            log "SSH to $ssh_host failed while waiting for cloud-init; asking again"
            sleep 5
            continue
        fi
        break
    done
    case "$status" in
        0) ;;
        2) log "cloud-init finished on $ssh_host with warnings: $(vm_ssh "$dir" cloud-init status --long </dev/null 2>&1 | tr '\n' ' ')" ;;
        *)
            log "cloud-init failed on $ssh_host (exit $status):"
            vm_ssh "$dir" "cloud-init status --long; sudo tail -n 40 /var/log/cloud-init-output.log" </dev/null >&2 2>&1 || true
            die "cloud-init did not finish on $ssh_host"
            ;;
    esac
}

create() {
    [[ -n "$base_image" ]] || die "create needs --base-image"
    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: $work is local and gone by the time EXIT fires
    trap "rm -rf '$work'" EXIT
    read_bundle "$work"

    mkdir -p "$state_dir"
    chmod 0700 "$state_dir"
    printf '%s\n' "$stop_timeout" >"$stop_timeout_file"
    local same_vm=false
    if running_pid >/dev/null && [[ -f "$argv_file" ]] && cmp -s "$work/qemu-argv" "$argv_file"; then
        same_vm=true
    else
        # A VM running with other settings restarts; its disk stays.
        stop_vm
    fi
    prepare_disk
    if [[ -n "$efi_vars_template" && ! -f "$efi_vars" ]]; then
        cp "$efi_vars_template" "$efi_vars"
    fi
    if [[ -f "$work/user-data" ]]; then
        mkdir -p "$work/seed"
        cp "$work/user-data" "$work/meta-data" "$work/seed/"
        [[ -f "$work/network-config" ]] && cp "$work/network-config" "$work/seed/"
        make_seed_iso "$work/seed" "$seed_iso.tmp"
        mv -f "$seed_iso.tmp" "$seed_iso"
    fi
    prepare_tap

    if [[ "$same_vm" == true ]]; then
        log "$state_dir already runs with this configuration"
    else
        rm -f "$pid_file" "$qmp_socket"
        local argv=() arg
        while IFS= read -r -d '' arg || [[ -n "$arg" ]]; do
            argv+=("$arg")
        done <"$work/qemu-argv"
        cp "$work/qemu-argv" "$argv_file"
        printf '\n=== vm.sh: starting QEMU at %s ===\n' "$(date -u +%FT%TZ)" >>"$serial_log"
        "${argv[@]}" || {
            serial_tail
            die "QEMU failed to start"
        }
    fi

    if [[ -n "$ssh_host" ]]; then
        [[ -s "$work/ssh-private-key" ]] || die "--ssh-host needs ssh-private-key in the bundle"
        chmod 0600 "$work/ssh-private-key"
        if [[ -s "$work/host-key" ]]; then
            printf '%s %s\n' "$ssh_host" "$(awk '{ print $1, $2 }' "$work/host-key")" >"$work/known_hosts"
        fi
        wait_for_ssh "$work"
    fi
    if [[ ! -s "$instance_file" ]]; then
        cat /proc/sys/kernel/random/uuid >"$instance_file"
    fi
    cat "$instance_file"
}

status() {
    running_pid >/dev/null
}

delete() {
    stop_vm
    if [[ -n "$tap" ]] && ip link show dev "$tap" >/dev/null 2>&1; then
        ip link delete dev "$tap"
    fi
    rm -rf "$state_dir"
}

case "$action" in
    create) create ;;
    status) status ;;
    delete) delete ;;
    *) usage ;;
esac
