#!/usr/bin/env bash
# Downloads one release artifact into the host cache once, verifies its sha256 and prints the
# cached path. A later run finds the verified file (and its recorded digest) and downloads
# nothing. The digest comes from the release's published checksum file or is pinned.
#
# Usage:
#   fetch.sh --url URL --dest PATH --sha256 HEX
#   fetch.sh --url URL --dest PATH --checksum-url URL --checksum-format bare|sha256sum \
#            [--checksum-entry FILE_NAME]
set -euo pipefail

url=""
dest=""
pinned=""
checksum_url=""
checksum_format=""
checksum_entry=""

die() {
  echo "fetch.sh: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --url) url="$2" ;;
    --dest) dest="$2" ;;
    --sha256) pinned="$2" ;;
    --checksum-url) checksum_url="$2" ;;
    --checksum-format) checksum_format="$2" ;;
    --checksum-entry) checksum_entry="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done

[[ -n "$url" ]] || die "--url is required"
[[ -n "$dest" ]] || die "--dest is required"
if [[ -n "$pinned" ]]; then
  [[ -z "$checksum_url" ]] || die "give either --sha256 or --checksum-url, not both"
  [[ "$pinned" =~ ^[0-9a-f]{64}$ ]] || die "--sha256 must be 64 lowercase hex digits"
else
  [[ -n "$checksum_url" ]] || die "one of --sha256 or --checksum-url is required"
  case "$checksum_format" in
    bare | sha256sum) ;;
    *) die "--checksum-format must be bare or sha256sum (got '$checksum_format')" ;;
  esac
  checksum_entry="${checksum_entry:-${url##*/}}"
fi

digest_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

recorded="$dest.sha256"
if [[ -f "$dest" && -f "$recorded" ]]; then
  want="$(cat "$recorded")"
  if [[ -n "$pinned" && "$pinned" != "$want" ]]; then
    want=""
  fi
  if [[ -n "$want" && "$(digest_of "$dest")" == "$want" ]]; then
    echo "$dest"
    exit 0
  fi
fi

curl_get() {
  curl --fail --location --silent --show-error --retry 3 --retry-delay 2 --output "$2" "$1"
}

mkdir -p "$(dirname "$dest")"
work="$(mktemp -d "$(dirname "$dest")/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ -n "$pinned" ]]; then
  want="$pinned"
  source_desc="the pinned --sha256"
else
  curl_get "$checksum_url" "$work/checksums" || die "could not download the checksum file $checksum_url"
  if [[ "$checksum_format" == "bare" ]]; then
    want="$(awk 'NF { print $1; exit }' "$work/checksums")"
  else
    # `<digest>  <name>` or `<digest> *<name>` (binary mode); the name may carry a ./ prefix.
    want="$(awk -v entry="$checksum_entry" '{ name = $2; sub(/^\*/, "", name); sub(/^\.\//, "", name) }
      name == entry { print $1; exit }' "$work/checksums")"
  fi
  want="$(printf '%s' "$want" | tr 'A-F' 'a-f')"
  [[ "$want" =~ ^[0-9a-f]{64}$ ]] ||
    die "no sha256 for '$checksum_entry' in $checksum_url (format $checksum_format)"
  source_desc="$checksum_url"
fi

curl_get "$url" "$work/download" || die "could not download $url"
got="$(digest_of "$work/download")"
if [[ "$got" != "$want" ]]; then
  die "checksum mismatch for $url: expected $want (from $source_desc), got $got; the download was discarded"
fi
mv -f "$work/download" "$dest"
printf '%s\n' "$want" >"$recorded"
echo "$dest"
