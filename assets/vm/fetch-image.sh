#!/usr/bin/env bash
# Provides the base image every VM's overlay disk is backed by.
#
# A downloaded image lives in a per-user cache that every stack shares, at a path the caller
# chose from what the user configured (the pinned digest, else the URL), so the path is known
# before anything is downloaded. The file is verified once, against the pinned --sha256 or the
# SHA256SUMS file beside the URL, and never replaced while it exists: overlays of running VMs
# point at it. Each stack holds it with a mark in PATH.holders/; delete drops the stack's mark
# and the image goes with the last one.
#
# A local image (--path, air-gapped hosts or a prebaked image) is used where it is; create only
# checks it exists and, with --sha256, that it is that image.
#
# usage: fetch-image.sh create|status|delete --holder NAME
#          (--url URL --dest PATH | --path FILE) [--sha256 HEX]
#   create  make the image available (download or check); prints its path
#   status  exit 0 when the image is there (and held by NAME), 1 when not
#   delete  drop NAME's hold; remove a downloaded image nobody holds any more
set -euo pipefail

log() {
    printf 'fetch-image: %s\n' "$*" >&2
}

die() {
    log "$*"
    exit 1
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

[[ $# -ge 1 ]] || die "a verb (create, status or delete) is required"
action=$1
shift

url=""
dest=""
pinned=""
local_path=""
holder=""
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "option $1 needs a value"
    case "$1" in
        --url) url=$2 ;;
        --dest) dest=$2 ;;
        --sha256) pinned=$2 ;;
        --path) local_path=$2 ;;
        --holder) holder=$2 ;;
        *) die "unknown option $1" ;;
    esac
    shift 2
done

[[ -n "$holder" && "$holder" != */* && "$holder" != .* ]] || die "--holder NAME is required (no / and no leading dot)"
[[ -z "$pinned" || "$pinned" =~ ^[0-9a-f]{64}$ ]] || die "--sha256 must be 64 lowercase hex digits"

if [[ -n "$local_path" ]]; then
    [[ "$local_path" == /* ]] || die "--path must be absolute"
    case "$action" in
        create)
            [[ -f "$local_path" ]] || die "the image $local_path does not exist"
            if [[ -n "$pinned" && "$(sha256_of "$local_path")" != "$pinned" ]]; then
                die "$local_path is not the image whose sha256 is $pinned"
            fi
            printf '%s\n' "$local_path"
            ;;
        status) [[ -f "$local_path" ]] ;;
        delete) ;;
        *) die "unknown verb '$action'" ;;
    esac
    exit
fi

[[ -n "$url" ]] || die "give --url and --dest, or --path"
[[ "$dest" == /* ]] || die "--dest must be an absolute path"
holders="$dest.holders"

case "$action" in
    status)
        [[ -f "$dest" && -f "$holders/$holder" ]]
        exit
        ;;
    delete)
        rm -f -- "$holders/$holder"
        if [[ ! -d "$holders" ]] || rmdir -- "$holders" 2>/dev/null; then
            if [[ -f "$dest" ]]; then
                log "no stack holds $dest any more; removing it"
            fi
            rm -f -- "$dest" "$dest.sha256"
            rmdir -- "$(dirname -- "$dest")" 2>/dev/null || true
        fi
        exit 0
        ;;
    create) ;;
    *) die "unknown verb '$action'" ;;
esac

# The digest the SHA256SUMS file beside the URL publishes for it.
published_digest() {
    local sums_url="${url%/*}/SHA256SUMS" file="${url##*/}" sums
    sums=$(curl -fsSL --retry 3 "$sums_url") || die "cannot download $sums_url; pin hardway:image.sha256 or use hardway:image.path"
    awk -v f="$file" '$2 == f || $2 == "*" f { print $1; exit }' <<<"$sums"
}

if [[ ! -f "$dest" ]]; then
    mkdir -p "$(dirname -- "$dest")"
    want=$pinned
    if [[ -z "$want" ]]; then
        want=$(published_digest)
        [[ -n "$want" ]] || die "SHA256SUMS next to $url does not list ${url##*/}"
    fi
    tmp=$(mktemp "$dest.incoming.XXXXXX")
    log "downloading $url"
    curl -fL --retry 3 --progress-bar -o "$tmp" "$url" || {
        rm -f "$tmp"
        die "download of $url failed"
    }
    got=$(sha256_of "$tmp")
    if [[ "$got" != "$want" ]]; then
        rm -f "$tmp"
        die "sha256 of $url is $got, expected $want; the download was discarded"
    fi
    printf '%s\n' "$got" >"$dest.sha256"
    mv -f "$tmp" "$dest"
fi
mkdir -p "$holders"
: >"$holders/$holder"
printf '%s\n' "$dest"
