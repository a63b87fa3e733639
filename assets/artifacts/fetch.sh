#!/usr/bin/env bash
# Keeps one release file in the host's cache, which every stack on the host shares: downloaded
# once, verified against its published sha256 (or a pinned one), and held by each stack that
# uses it. A stack's delete only drops its hold; the file goes when nobody holds it any more.
#
# usage: fetch.sh create|status|delete --dest PATH --holder NAME --url URL
#          (--sha256 HEX | --checksum-url URL --checksum-format bare|sha256sum
#           [--checksum-entry FILE_NAME])
#   create  download and verify unless the verified file is there, then hold it; prints PATH
#   status  exit 0 when the verified file is there and held by NAME, 1 when not
#   delete  drop NAME's hold; remove the file once no holder is left
# URLs may be file:// (a local release mirror). The verified digest is recorded in PATH.sha256;
# holds are empty files in PATH.holders/.
set -euo pipefail

die() {
  echo "fetch.sh: $*" >&2
  exit 1
}

[[ $# -ge 1 ]] || die "a verb (create, status or delete) is required"
verb="$1"
shift
case "$verb" in
  create | status | delete) ;;
  *) die "unknown verb '$verb'; expected create, status or delete" ;;
esac

url=""
dest=""
holder=""
pinned=""
checksum_url=""
checksum_format=""
checksum_entry=""
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --url) url="$2" ;;
    --dest) dest="$2" ;;
    --holder) holder="$2" ;;
    --sha256) pinned="$2" ;;
    --checksum-url) checksum_url="$2" ;;
    --checksum-format) checksum_format="$2" ;;
    --checksum-entry) checksum_entry="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done

[[ -n "$url" ]] || die "--url is required"
[[ "$dest" == /* ]] || die "--dest must be an absolute path"
[[ -n "$holder" && "$holder" != */* && "$holder" != .* ]] || die "--holder NAME is required (no / and no leading dot)"
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

recorded="$dest.sha256"
holders="$dest.holders"

digest_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
}

# The file is there and its recorded digest is the one wanted (pinned, or whatever was verified).
verified() {
  [[ -f "$dest" && -f "$recorded" ]] || return 1
  local want
  want="$(cat "$recorded")"
  [[ -z "$pinned" || "$pinned" == "$want" ]]
}

case "$verb" in
  status)
    verified && [[ -f "$holders/$holder" ]]
    exit
    ;;
  delete)
    rm -f -- "$holders/$holder"
    if [[ ! -d "$holders" ]] || rmdir -- "$holders" 2>/dev/null; then
      rm -f -- "$dest" "$recorded"
    fi
    exit 0
    ;;
esac

curl_get() {
  curl --fail --location --silent --show-error --retry 3 --retry-delay 2 --output "$2" "$1"
}

if ! verified || [[ "$(digest_of "$dest")" != "$(cat "$recorded")" ]]; then
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
fi
mkdir -p "$holders"
: >"$holders/$holder"
echo "$dest"
