#!/usr/bin/env bash
# The host side of a stack's VM network on Linux: a bridge holding the host address, NAT from the
# VM subnet (and the pods' cluster CIDR) to everything else, the project's own dnsmasq bound to
# the bridge, and optionally an NFS export. Traffic between the subnet and the pods is routed,
# never NATed: pods see each other's and the nodes' real addresses. Every verb is idempotent: running `create` twice changes nothing the second time,
# `delete` succeeds when everything is already gone, and `status` only looks.
#
# Exit codes: 0 done / healthy, 1 failed / not healthy, 2 usage error, 3 not root.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: linux-network.sh create|delete|status
         --bridge NAME --host-cidr A.B.C.1/24 --subnet A.B.C.0/24
         --state-dir DIR --dnsmasq-conf FILE --nat-table NAME
         [--cluster-cidr A.B.0.0/16] [--dnsmasq-conf-from-stdin]
         [--export-dir DIR --exports-file FILE --stack NAME]

  create   bring the bridge, NAT, dnsmasq (and the export) up; safe to repeat
  delete   tear all of it down; succeeds when it is already gone
  status   exit 0 only when bridge, NAT and a live dnsmasq are all present

  --dnsmasq-conf-from-stdin  create writes stdin to the dnsmasq config file first
  --exports-file             the export is reloaded with exportfs only when this is
                             /etc/exports, the one file exportfs reads
USAGE
}

die() {
    echo "linux-network.sh: $*" >&2
    exit 1
}

usage_error() {
    echo "linux-network.sh: $*" >&2
    usage >&2
    exit 2
}

verb="${1:-}"
case "$verb" in
    create | delete | status) shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "expected a verb: create, delete or status" ;;
esac

bridge="" host_cidr="" subnet="" state_dir="" dnsmasq_conf="" nat_table="" cluster_cidr=""
export_dir="" exports_file="" stack="" conf_from_stdin=false
while (($# > 0)); do
    case "$1" in
        --dnsmasq-conf-from-stdin)
            conf_from_stdin=true
            shift
            continue
            ;;
        --bridge | --host-cidr | --subnet | --state-dir | --dnsmasq-conf | --nat-table | --cluster-cidr | \
            --export-dir | --exports-file | --stack)
            (($# >= 2)) || usage_error "$1 needs a value"
            ;;
        *) usage_error "unknown argument: $1" ;;
    esac
    case "$1" in
        --bridge) bridge="$2" ;;
        --host-cidr) host_cidr="$2" ;;
        --subnet) subnet="$2" ;;
        --cluster-cidr) cluster_cidr="$2" ;;
        --state-dir) state_dir="$2" ;;
        --dnsmasq-conf) dnsmasq_conf="$2" ;;
        --nat-table) nat_table="$2" ;;
        --export-dir) export_dir="$2" ;;
        --exports-file) exports_file="$2" ;;
        --stack) stack="$2" ;;
    esac
    shift 2
done

for required in bridge host_cidr subnet state_dir dnsmasq_conf nat_table; do
    [[ -n "${!required}" ]] || usage_error "--${required//_/-} is required"
done
if [[ -n "$export_dir$exports_file$stack" ]]; then
    [[ -n "$export_dir" && -n "$exports_file" && -n "$stack" ]] ||
        usage_error "--export-dir, --exports-file and --stack go together"
fi
((${#bridge} <= 15)) || usage_error "--bridge $bridge is longer than 15 characters"

if ((EUID != 0)); then
    echo "linux-network.sh: must run as root; hardway runs it through 'sudo -n', so run 'sudo -v' first" >&2
    exit 3
fi

pid_file="$state_dir/dnsmasq.pid"
lease_file="$state_dir/dnsmasq.leases"
# The config dnsmasq was started with; a different config on disk means a restart is due.
running_conf="$state_dir/dnsmasq.conf.running"
dnsmasq_log="$state_dir/dnsmasq.log"
comment="hardway $bridge"
begin_marker="# BEGIN hardway $stack"
end_marker="# END hardway $stack"

# ---- bridge ---------------------------------------------------------------------------------

bridge_present() {
    ip -4 -o addr show dev "$bridge" 2>/dev/null | grep -F " inet $host_cidr " >/dev/null
}

# The host's MAC on the VM network, set rather than inherited: a bridge without one takes the
# lowest MAC of its ports, which changes whenever a VM's tap comes or goes (seen when the HA
# run restarted a control VM: the bridge took its new tap's MAC), and with it the guests' ARP
# entry for the host, their gateway, DNS and NFS server. It embeds the address, as each VM's
# does (vm/cloudInit.ts: 52:54 and the four octets).
bridge_mac() {
    local octets
    IFS=. read -r -a octets <<<"${host_cidr%/*}"
    printf '52:54:%02x:%02x:%02x:%02x' "${octets[@]}"
}

create_bridge() {
    ip link show dev "$bridge" >/dev/null 2>&1 || ip link add name "$bridge" type bridge
    ip link set dev "$bridge" address "$(bridge_mac)"
    bridge_present || ip addr add "$host_cidr" dev "$bridge"
    ip link set dev "$bridge" up
}

delete_bridge() {
    if ip link show dev "$bridge" >/dev/null 2>&1; then
        ip link delete dev "$bridge"
    fi
}

# ---- NAT ------------------------------------------------------------------------------------

# Masquerade what leaves the subnet and the cluster CIDR for anywhere else: once, here, and
# nothing between nodes and pods.
if [[ -n "$cluster_cidr" ]]; then
    masquerade_rules=(
        "ip saddr $subnet ip daddr != $subnet ip daddr != $cluster_cidr masquerade"
        "ip saddr $cluster_cidr ip daddr != $subnet ip daddr != $cluster_cidr masquerade"
    )
else
    masquerade_rules=("ip saddr $subnet ip daddr != $subnet masquerade")
fi

# Pipes end in `grep … >/dev/null`, not `grep -q`: -q stops reading at the first match, the
# writer can then die of SIGPIPE, and pipefail turns a match into a failure under load.
nat_present() {
    local table rule
    table=$(nft list table ip "$nat_table" 2>/dev/null) || return 1
    for rule in "${masquerade_rules[@]}"; do
        grep -F "$rule" >/dev/null <<<"$table" || return 1
    done
}

create_nat() {
    sysctl_forwarding
    if ! nat_present; then
        # One transaction: the table is (re)built whole, never left half-written.
        nft -f - <<NFT
table ip $nat_table
delete table ip $nat_table
table ip $nat_table {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
$(printf '        %s comment "%s"\n' "${masquerade_rules[0]}" "$comment")
$(if ((${#masquerade_rules[@]} > 1)); then printf '        %s comment "%s"\n' "${masquerade_rules[1]}" "$comment"; fi)
    }
}
NFT
    fi
    create_forward_exceptions
}

sysctl_forwarding() {
    # Left on by delete: other software (Docker, libvirt) may depend on it as well.
    if [[ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]]; then
        echo 1 >/proc/sys/net/ipv4/ip_forward
    fi
}

delete_nat() {
    if nft list table ip "$nat_table" >/dev/null 2>&1; then
        nft delete table ip "$nat_table"
    fi
    delete_forward_exceptions
}

# Docker sets the iptables FORWARD policy to DROP, and a drop in any table is final, so an
# accept in our own nft table cannot let the VMs' traffic through. On such hosts the bridge gets
# two accept rules in DOCKER-USER (Docker's hook for this) or, without Docker, in FORWARD.
forward_policy_drops() {
    command -v iptables >/dev/null 2>&1 && iptables -S FORWARD 2>/dev/null | grep -x -- "-P FORWARD DROP" >/dev/null
}

forward_chain() {
    if iptables -S DOCKER-USER >/dev/null 2>&1; then echo DOCKER-USER; else echo FORWARD; fi
}

forward_rules() {
    printf '%s\n' "-i $bridge -m comment --comment hardway-$bridge -j ACCEPT"
    printf '%s\n' "-o $bridge -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment hardway-$bridge -j ACCEPT"
}

forward_exceptions_present() {
    forward_policy_drops || return 0
    local chain rule
    chain="$(forward_chain)"
    while read -r rule; do
        # shellcheck disable=SC2086 # the rule is a list of iptables words
        iptables -C "$chain" $rule 2>/dev/null || return 1
    done < <(forward_rules)
}

create_forward_exceptions() {
    forward_policy_drops || return 0
    local chain rule
    chain="$(forward_chain)"
    echo "linux-network.sh: iptables FORWARD policy is DROP (Docker?); accepting $bridge in $chain" >&2
    while read -r rule; do
        # shellcheck disable=SC2086 # the rule is a list of iptables words
        iptables -C "$chain" $rule 2>/dev/null || iptables -I "$chain" $rule
    done < <(forward_rules)
}

delete_forward_exceptions() {
    command -v iptables >/dev/null 2>&1 || return 0
    local chain rule
    for chain in DOCKER-USER FORWARD; do
        while read -r rule; do
            # shellcheck disable=SC2086 # the rule is a list of iptables words
            while iptables -C "$chain" $rule 2>/dev/null; do iptables -D "$chain" $rule; done
        done < <(forward_rules)
    done
}

# ---- dnsmasq --------------------------------------------------------------------------------

dnsmasq_pid() {
    local pid
    [[ -r "$pid_file" ]] || return 1
    pid="$(tr -dc 0-9 <"$pid_file")"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    # A pid file that survived a reboot may name an unrelated process now.
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "--conf-file=$dnsmasq_conf" >/dev/null || return 1
    echo "$pid"
}

dnsmasq_current() {
    dnsmasq_pid >/dev/null && cmp -s "$dnsmasq_conf" "$running_conf"
}

write_conf_from_stdin() {
    local staged
    staged="$(mktemp "$dnsmasq_conf.XXXXXX")"
    cat >"$staged"
    if cmp -s "$staged" "$dnsmasq_conf"; then
        rm -f "$staged"
    else
        chmod 0644 "$staged"
        mv -f "$staged" "$dnsmasq_conf"
    fi
}

start_dnsmasq() {
    [[ -r "$dnsmasq_conf" ]] || die "dnsmasq config $dnsmasq_conf does not exist"
    grep -qx "pid-file=$pid_file" "$dnsmasq_conf" ||
        die "$dnsmasq_conf must contain pid-file=$pid_file, or this script cannot find its dnsmasq"
    dnsmasq_current && return 0
    stop_dnsmasq
    # The lease file must be writable after dnsmasq drops root for its own user.
    touch "$lease_file"
    if id -u dnsmasq >/dev/null 2>&1; then chown dnsmasq "$lease_file"; fi
    # Its output goes to a file: an inherited pipe would keep the caller waiting for the daemon.
    if ! dnsmasq --conf-file="$dnsmasq_conf" </dev/null >/dev/null 2>"$dnsmasq_log"; then
        cat "$dnsmasq_log" >&2
        die "dnsmasq did not start with $dnsmasq_conf"
    fi
    cp "$dnsmasq_conf" "$running_conf"
    local waited
    for waited in $(seq 50); do
        dnsmasq_pid >/dev/null && return 0
        ((waited < 50)) && sleep 0.1
    done
    die "dnsmasq started but wrote no pid file to $pid_file"
}

stop_dnsmasq() {
    local pid waited
    if pid="$(dnsmasq_pid)"; then
        kill "$pid"
        for waited in $(seq 50); do
            [[ -e "/proc/$pid" ]] || break
            ((waited < 50)) && sleep 0.1
        done
        [[ ! -e "/proc/$pid" ]] || kill -KILL "$pid"
    fi
    rm -f "$pid_file" "$running_conf"
}

# ---- NFS export -----------------------------------------------------------------------------

export_line() {
    echo "$export_dir $subnet(rw,sync,no_subtree_check,no_root_squash)"
}

# Prints the exports file with this stack's block replaced by stdin (in place, or appended), or
# removed when stdin is empty. Other lines and other stacks' blocks pass through untouched.
replace_block() {
    local block
    block="$(mktemp)"
    cat >"$block"
    awk -v begin="$begin_marker" -v end="$end_marker" -v block="$block" '
        function emit(  line) { while ((getline line < block) > 0) print line; placed = 1 }
        !inside && $0 == begin { inside = 1; if (!placed) emit(); next }
        inside { if ($0 == end) inside = 0; next }
        { print }
        END { if (!placed) emit() }
    ' "$exports_file"
    rm -f "$block"
}

write_exports() {
    local staged
    touch "$exports_file"
    staged="$(mktemp)"
    replace_block >"$staged"
    if ! cmp -s "$staged" "$exports_file"; then
        # cat keeps the file's owner, mode and inode; /etc/exports may be a managed file.
        cat "$staged" >"$exports_file"
        reload_exports
    fi
    rm -f "$staged"
}

reload_exports() {
    if [[ "$exports_file" != /etc/exports ]]; then
        echo "linux-network.sh: $exports_file is not /etc/exports; not reloading the NFS server" >&2
    elif [[ -d /proc/fs/nfsd ]] && command -v exportfs >/dev/null 2>&1; then
        local output
        # exportfs fails when any line of the file is bad, the user's own included; what matters
        # here is this stack's export.
        if ! output=$(exportfs -ra 2>&1); then
            if [[ -z "$stack" ]] || ! grep -qxF -- "$begin_marker" "$exports_file" ||
                exportfs -s 2>/dev/null | grep -q "^$export_dir "; then
                echo "linux-network.sh: exportfs reported problems with other exports:" >&2
                printf '%s\n' "$output" >&2
            else
                printf '%s\n' "$output" >&2
                die "exportfs could not export $export_dir"
            fi
        fi
    else
        echo "linux-network.sh: no NFS server runs here; the export applies when it starts" >&2
    fi
}

create_export() {
    [[ -n "$stack" ]] || return 0
    mkdir -p "$export_dir"
    printf '%s\n%s\n%s\n' "$begin_marker" "$(export_line)" "$end_marker" | write_exports
}

delete_export() {
    [[ -n "$stack" && -e "$exports_file" ]] || return 0
    write_exports </dev/null
}

export_present() {
    [[ -n "$stack" ]] || return 0
    [[ -r "$exports_file" ]] && grep -qxF -- "$(export_line)" "$exports_file"
}

# ---- verbs ----------------------------------------------------------------------------------

case "$verb" in
    create)
        mkdir -p "$state_dir"
        if [[ "$conf_from_stdin" == true ]]; then write_conf_from_stdin; fi
        create_bridge
        create_nat
        start_dnsmasq
        create_export
        ;;
    delete)
        stop_dnsmasq
        rm -f "$lease_file" "$dnsmasq_log" "$dnsmasq_conf"
        delete_nat
        delete_bridge
        delete_export
        # The exported directory held the cluster's volumes, and the cluster is gone with its
        # VMs (their own deletes emptied vms/ already); the state directory goes when empty.
        if [[ -n "$export_dir" ]]; then
            rm -rf --one-file-system -- "$export_dir"
        fi
        rmdir -- "$state_dir/vms" "$state_dir" 2>/dev/null || true
        ;;
    status)
        missing=()
        bridge_present || missing+=("bridge $bridge with $host_cidr")
        nat_present || missing+=("nft table ip $nat_table")
        forward_exceptions_present || missing+=("FORWARD accept rules for $bridge")
        dnsmasq_current || missing+=("dnsmasq running $dnsmasq_conf")
        export_present || missing+=("export of $export_dir in $exports_file")
        if ((${#missing[@]} > 0)); then
            printf 'linux-network.sh: missing: %s\n' "${missing[@]}" >&2
            exit 1
        fi
        ;;
esac
