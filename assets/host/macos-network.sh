#!/usr/bin/env bash
# The host side of a stack's VM network on macOS. vmnet (through QEMU's vmnet-shared backend)
# creates the bridge and the NAT itself, so this script only manages the stack's marked block in
# Homebrew's dnsmasq.conf (config on stdin) and its marked block in /etc/exports. Every verb is
# idempotent: `create` twice changes nothing, `delete` succeeds when everything is gone.
#
# vmnet's bridge (bridge100, 101 …) exists only while a VM runs, and vmnet's own DHCP/DNS then
# competes with dnsmasq. The config uses bind-dynamic, and `rebind` restarts dnsmasq once the
# bridge holding --host-ip exists, which is when it can take the address over for good. With
# `--part dns-rebind` the three verbs keep just that in place, after every reboot: create
# rebinds, status checks dnsmasq listens on --host-ip, delete has nothing to undo.
#
# Exit codes: 0 done / healthy, 1 failed / not healthy, 2 usage error, 3 not root.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: macos-network.sh create|delete|status|rebind
         --host-ip A.B.C.1 --subnet A.B.C.0/24 --netmask 255.255.255.0 --state-dir DIR
         --export-dir DIR --exports-file FILE --stack NAME
         [--brew-prefix DIR] [--wait SECONDS] [--part network|dns-rebind]

  create   put stdin (a dnsmasq config) in the stack's block of dnsmasq.conf, export
           --export-dir, and restart dnsmasq when its config changed
  delete   remove both blocks and restart dnsmasq; succeeds when they are already gone
  status   exit 0 only when both blocks are in place and dnsmasq runs
  rebind   wait (default 60 s) for vmnet's bridge with --host-ip, then restart dnsmasq
USAGE
}

die() {
    echo "macos-network.sh: $*" >&2
    exit 1
}

usage_error() {
    echo "macos-network.sh: $*" >&2
    usage >&2
    exit 2
}

verb="${1:-}"
case "$verb" in
    create | delete | status | rebind) shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "expected a verb: create, delete, status or rebind" ;;
esac

host_ip="" subnet="" netmask="" state_dir="" export_dir="" exports_file="" stack=""
brew_prefix="" wait_seconds=60 part=network
while (($# > 0)); do
    case "$1" in
        --host-ip | --subnet | --netmask | --state-dir | --export-dir | --exports-file | --stack | \
            --brew-prefix | --wait | --part)
            (($# >= 2)) || usage_error "$1 needs a value"
            ;;
        *) usage_error "unknown argument: $1" ;;
    esac
    case "$1" in
        --host-ip) host_ip="$2" ;;
        --subnet) subnet="$2" ;;
        --netmask) netmask="$2" ;;
        --state-dir) state_dir="$2" ;;
        --export-dir) export_dir="$2" ;;
        --exports-file) exports_file="$2" ;;
        --stack) stack="$2" ;;
        --brew-prefix) brew_prefix="$2" ;;
        --wait) wait_seconds="$2" ;;
        --part) part="$2" ;;
    esac
    shift 2
done

for required in host_ip subnet netmask state_dir export_dir exports_file stack; do
    [[ -n "${!required}" ]] || usage_error "--${required//_/-} is required"
done
[[ "$wait_seconds" =~ ^[0-9]+$ ]] || usage_error "--wait expects whole seconds, got $wait_seconds"
case "$part" in
    network) ;;
    dns-rebind)
        case "$verb" in
            create) verb=rebind ;;
            status) verb=bound ;;
            delete) exit 0 ;;
        esac
        ;;
    *) usage_error "--part must be network or dns-rebind, got $part" ;;
esac

if ((EUID != 0)); then
    echo "macos-network.sh: must run as root; hardway runs it through 'sudo -n', so run 'sudo -v' first" >&2
    exit 3
fi

if [[ -z "$brew_prefix" ]]; then
    # Homebrew refuses to run as root, so ask it as the user who ran sudo.
    brew_user="${SUDO_USER:-$(stat -f %Su /dev/console)}"
    brew_prefix="$(sudo -u "$brew_user" brew --prefix)" || die "Homebrew not found; install it and dnsmasq first"
fi
dnsmasq_conf="$brew_prefix/etc/dnsmasq.conf"
begin_marker="# BEGIN hardway $stack"
end_marker="# END hardway $stack"

# Prints FILE with this stack's block replaced by stdin (in place, or appended), or removed when
# stdin is empty. Other lines and other stacks' blocks pass through untouched.
replace_block() {
    local file="$1" block
    block="$(mktemp)"
    cat >"$block"
    awk -v begin="$begin_marker" -v end="$end_marker" -v block="$block" '
        function emit(  line) { while ((getline line < block) > 0) print line; placed = 1 }
        !inside && $0 == begin { inside = 1; if (!placed) emit(); next }
        inside { if ($0 == end) inside = 0; next }
        { print }
        END { if (!placed) emit() }
    ' "$file"
    rm -f "$block"
}

# Writes stdin as the stack's block of FILE; succeeds (0) when the file changed, 1 when not.
write_block() {
    local file="$1" staged changed=1
    touch "$file"
    staged="$(mktemp)"
    replace_block "$file" >"$staged"
    if ! cmp -s "$staged" "$file"; then
        cat "$staged" >"$file"
        changed=0
    fi
    rm -f "$staged"
    return "$changed"
}

marked() {
    printf '%s\n' "$begin_marker"
    cat
    printf '%s\n' "$end_marker"
}

export_line() {
    echo "$export_dir -network ${subnet%/*} -mask $netmask -alldirs -maproot=root"
}

restart_dnsmasq() {
    # dnsmasq binds port 53 and DHCP, so Homebrew runs it as a root service.
    brew services restart dnsmasq >/dev/null
}

dnsmasq_running() {
    pgrep -x dnsmasq >/dev/null
}

bridge_up() {
    ifconfig | grep -F "inet $host_ip " >/dev/null
}

apply_exports() {
    nfsd checkexports || die "nfsd rejects $exports_file; fix or remove the offending lines"
    if nfsd status 2>/dev/null | grep "is enabled" >/dev/null; then nfsd update; else nfsd enable; fi
}

case "$verb" in
    create)
        mkdir -p "$state_dir" "$export_dir"
        if marked | write_block "$dnsmasq_conf"; then restart_dnsmasq; fi
        dnsmasq_running || restart_dnsmasq
        if export_line | marked | write_block "$exports_file"; then apply_exports; fi
        if ! bridge_up; then
            echo "macos-network.sh: vmnet's bridge with $host_ip is not up yet; run rebind once a VM runs" >&2
        fi
        ;;
    delete)
        if write_block "$dnsmasq_conf" </dev/null; then restart_dnsmasq; fi
        if [[ -e "$exports_file" ]] && write_block "$exports_file" </dev/null; then nfsd update; fi
        # The exported directory held the cluster's volumes; the state directory goes when empty.
        rm -rf -- "$export_dir"
        rmdir -- "$state_dir/vms" "$state_dir" 2>/dev/null || true
        ;;
    status)
        missing=()
        grep -qxF "$begin_marker" "$dnsmasq_conf" 2>/dev/null || missing+=("dnsmasq block in $dnsmasq_conf")
        dnsmasq_running || missing+=("a running dnsmasq")
        grep -qxF -- "$(export_line)" "$exports_file" 2>/dev/null || missing+=("export in $exports_file")
        if ((${#missing[@]} > 0)); then
            printf 'macos-network.sh: missing: %s\n' "${missing[@]}" >&2
            exit 1
        fi
        ;;
    bound)
        bridge_up && dnsmasq_running && lsof -nP -a -c dnsmasq -iUDP@"$host_ip":53 >/dev/null 2>&1
        ;;
    rebind)
        for ((waited = 0; waited < wait_seconds; waited++)); do
            bridge_up && break
            sleep 1
        done
        bridge_up || die "no interface holds $host_ip after ${wait_seconds}s; is a VM on vmnet-shared running?"
        restart_dnsmasq
        ;;
esac
