#!/usr/bin/env bash
# Keeps cloud images in a per-user, content-addressed cache that every stack shares:
#   ${XDG_CACHE_HOME:-~/.cache}/hardway/images/sha256-<digest>.img
# A file gets its final name only after its digest was verified, so a name in the cache is a
# promise about its content. Each stack that uses an image leaves a holder mark beside it;
# `release` removes the mark and the image once nobody holds it.
#
#   fetch-image.sh fetch --url URL [--sha256 HEX] [--path FILE] --holder NAME
#       Prints the cached path. Without --sha256 the digest comes from the SHA256SUMS file next
#       to the URL. With --path the image is taken from that local file (air-gapped hosts) and
#       nothing is downloaded; --sha256, if given, must match it.
#   fetch-image.sh release --image CACHED_PATH --holder NAME
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

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

[[ $# -ge 1 ]] || usage
action=$1
shift

url=""
pinned=""
local_path=""
image=""
holder=""
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/hardway/images"

while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "option $1 needs a value"
    case "$1" in
        --url) url=$2 ;;
        --sha256) pinned=$2 ;;
        --path) local_path=$2 ;;
        --image) image=$2 ;;
        --holder) holder=$2 ;;
        --cache-dir) cache_dir=$2 ;;
        *) die "unknown option $1" ;;
    esac
    shift 2
done

[[ -n "$holder" && "$holder" != */* ]] || die "--holder NAME is required and must not contain /"
[[ -z "$pinned" || "$pinned" =~ ^[0-9a-f]{64}$ ]] || die "--sha256 must be 64 lowercase hex digits"

# The digest the SHA256SUMS file beside the URL publishes for it.
published_digest() {
    local sums_url="${url%/*}/SHA256SUMS" file="${url##*/}" sums
    sums=$(curl -fsSL --retry 3 "$sums_url") || die "cannot download $sums_url; pin hardway:image.sha256 or use hardway:image.path"
    awk -v f="$file" '$2 == f || $2 == "*" f { print $1; exit }' <<<"$sums"
}

# Verifies a file already in the cache directory and gives it its content-addressed name.
adopt() {
    local candidate=$1 expected=$2 actual
    actual=$(sha256_of "$candidate")
    if [[ -n "$expected" && "$actual" != "$expected" ]]; then
        rm -f "$candidate"
        die "sha256 of the image is $actual, expected $expected"
    fi
    mv -f "$candidate" "$cache_dir/sha256-$actual.img"
    printf '%s\n' "$actual"
}

hold() {
    local digest=$1
    mkdir -p "$cache_dir/sha256-$digest.holders"
    : >"$cache_dir/sha256-$digest.holders/$holder"
    printf '%s\n' "$cache_dir/sha256-$digest.img"
}

fetch() {
    mkdir -p "$cache_dir"
    local digest=$pinned tmp
    if [[ -n "$local_path" ]]; then
        [[ -f "$local_path" ]] || die "--path $local_path is not a file"
        if [[ -n "$digest" && -f "$cache_dir/sha256-$digest.img" ]]; then
            hold "$digest"
            return
        fi
        tmp=$(mktemp "$cache_dir/.incoming.XXXXXX")
        cp "$local_path" "$tmp"
        digest=$(adopt "$tmp" "$pinned")
        hold "$digest"
        return
    fi
    [[ -n "$url" ]] || die "give --url (and optionally --sha256) or --path"
    # Without a pinned digest, remember which digest a URL had, so reruns work offline.
    local url_key
    url_key="$cache_dir/by-url/$(printf '%s' "$url" | { sha256sum 2>/dev/null || shasum -a 256; } | cut -d' ' -f1)"
    if [[ -z "$digest" && -f "$url_key" ]]; then
        digest=$(<"$url_key")
    fi
    if [[ -z "$digest" || ! -f "$cache_dir/sha256-$digest.img" ]]; then
        if [[ -z "$pinned" ]]; then
            digest=$(published_digest)
            [[ -n "$digest" ]] || die "SHA256SUMS next to $url does not list ${url##*/}"
        fi
        if [[ ! -f "$cache_dir/sha256-$digest.img" ]]; then
            tmp=$(mktemp "$cache_dir/.incoming.XXXXXX")
            log "downloading $url"
            curl -fL --retry 3 --progress-bar -o "$tmp" "$url" || {
                rm -f "$tmp"
                die "download of $url failed"
            }
            adopt "$tmp" "$digest" >/dev/null
        fi
    fi
    if [[ -z "$pinned" ]]; then
        mkdir -p "$cache_dir/by-url"
        printf '%s\n' "$digest" >"$url_key"
    fi
    hold "$digest"
}

release() {
    [[ -n "$image" ]] || die "release needs --image CACHED_PATH"
    local holders="${image%.img}.holders"
    rm -f "$holders/$holder"
    if [[ -d "$holders" ]] && rmdir "$holders" 2>/dev/null; then
        log "no stack holds $image any more; removing it"
        rm -f "$image"
    elif [[ ! -d "$holders" ]]; then
        rm -f "$image"
    fi
}

case "$action" in
    fetch) fetch ;;
    release) release ;;
    *) usage ;;
esac
