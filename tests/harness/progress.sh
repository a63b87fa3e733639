#!/usr/bin/env bash
# Sourced by the test tiers' build scripts (toolchain.sh, build-mirror.sh); they define `say`
# and `die` first.
set -euo pipefail

# Runs a long command with its output in a temp file, printing a line every 30 s so a cold
# build shows it is alive; on failure prints the end of that output and dies.
with_progress() {
  local label="$1"
  shift
  local started=$SECONDS log
  log="$(mktemp)"
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (((SECONDS - started) % 30 < 5)) && kill -0 "$pid" 2>/dev/null; then
      say "  … $label: $((SECONDS - started)) s"
    fi
  done
  if ! wait "$pid"; then
    tail -n 80 "$log" >&2
    rm -f "$log"
    die "$label failed"
  fi
  rm -f "$log"
  say "  $label: done in $((SECONDS - started)) s"
}
