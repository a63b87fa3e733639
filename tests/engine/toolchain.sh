#!/usr/bin/env bash
# Provides the real Pulumi engine for the engine tests, with no internet: a Pulumi CLI, its
# Node.js language host, the dynamic-provider launcher and every resource plugin package.json
# pins, laid out so the engine finds each one without downloading anything.
#
# A `pulumi` already on PATH (a workstation with the official CLI) is used as it is: it fetches
# its plugins itself. Otherwise everything is built from Go modules with the `go` command into
# a cache outside the repository, keyed by version; the second run takes seconds.
#
# usage: toolchain.sh [--env]
#   --env   print only `export NAME=value` lines for the toolchain (for `eval`) on stdout;
#           progress goes to stderr
#
# Environment: HARDWAY_TOOLCHAIN_DIR (default ${XDG_CACHE_HOME:-~/.cache}/hardway/toolchain),
# HARDWAY_TOOLCHAIN_BUILD=1 to build even when a `pulumi` is on PATH.
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd -- "$here/../.." && pwd)"
cache="${HARDWAY_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hardway/toolchain}"
env_only=false
if [[ "${1:-}" == "--env" ]]; then
  env_only=true
elif [[ $# -gt 0 ]]; then
  sed -n 's/^# \{0,1\}\(usage: .*\)$/\1/p; /^#   /s/^# \{0,1\}//p' "$0"
  exit 2
fi

# With --env, stdout is the value the caller reads: it goes to fd 3, everything else (the Go
# builds included) to stderr.
if [[ "$env_only" == true ]]; then
  exec 3>&1 1>&2
fi
say() { echo "[toolchain] $*"; }
die() {
  echo "[toolchain] error: $*" >&2
  exit 1
}

pinned() {
  node -p "require('$root/package.json').dependencies['$1'] || ''"
}
cli_version="$(pinned @pulumi/pulumi)"
kubernetes_version="$(pinned @pulumi/kubernetes)"
[[ -n "$cli_version" ]] || die "package.json pins no @pulumi/pulumi"

# The Go module proxy serves no tag for the language host or the provider modules (they live in
# subdirectories that are never tagged), so each release is pinned by its commit's
# pseudo-version. The language host module is served for few commits: the newest release that
# builds is used with a newer CLI (the engine talks to it over a stable gRPC protocol).
declare -A LANGUAGE_HOST_MODULE=(
  [3.184.0]=v3.0.0-20250718110245-a8f88047ab64
)
declare -A KUBERNETES_PROVIDER_MODULE=(
  [4.25.0]=v4.0.0-20260115033456-f47bc2d6f199
)

# --- a CLI the user already has ---------------------------------------------------------------
usable_cli_on_path() {
  local found version
  found="$(command -v pulumi || true)"
  [[ -n "$found" && "${HARDWAY_TOOLCHAIN_BUILD:-}" != "1" ]] || return 1
  # npm's `pulumi` package only downloads the CLI on first use, which fails offline: time-box it.
  version="$(timeout 60 pulumi version 2>/dev/null | tr -d '[:space:]' || true)"
  [[ "$version" =~ ^v?3\.[0-9]+\.[0-9]+ ]] || return 1
  echo "$found $version"
}

if on_path="$(usable_cli_on_path)"; then
  say "using ${on_path%% *} (${on_path##* }) from PATH; it installs its own plugins"
  if [[ "$env_only" == true ]]; then
    echo "export HARDWAY_PULUMI=$(printf '%q' "${on_path%% *}")" >&3
  fi
  exit 0
fi

# --- built from Go modules ----------------------------------------------------------------------
command -v go >/dev/null || die "no pulumi on PATH and no Go toolchain to build one; install Go or the Pulumi CLI"
# The newest buildable language host that is not newer than the CLI.
language_version=""
while read -r candidate; do
  if [[ "$(printf '%s\n%s\n' "$candidate" "$cli_version" | sort -V | head -1)" == "$candidate" ]]; then
    language_version="$candidate"
  fi
done < <(printf '%s\n' "${!LANGUAGE_HOST_MODULE[@]}" | sort -V)
[[ -n "$language_version" ]] || die "no buildable language host at or below CLI $cli_version"

bin="$cache/pulumi-v$cli_version/bin"
home="$cache/home"
plugins="$home/plugins"
build="$cache/build"
mkdir -p "$bin" "$plugins" "$build"

export GOFLAGS="-mod=mod"
# The checksum database mirror reachable here has no records for the Pulumi modules; every
# other module is still verified against it, and each wrapper's go.sum pins what was fetched.
export GONOSUMDB="github.com/pulumi/*"
export CGO_ENABLED=0

# shellcheck source=SCRIPTDIR/../harness/progress.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../harness/progress.sh"

# Builds a main package from a throwaway wrapper module that requires MODULE@VERSION and
# carries the replace lines the real module has (relative ones cannot be used from the cache).
build_from_wrapper() {
  local label="$1" dir="$2" module="$3" version="$4" package="$5" output="$6" ldflags="$7" tags="$8"
  shift 8
  mkdir -p "$dir"
  {
    echo "module hardway.invalid/toolchain/$(basename "$dir")"
    echo
    echo "go 1.26"
    echo
    echo "require $module $version"
    for replace in "$@"; do
      echo "replace $replace"
    done
  } >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$dir/tools.go"
  with_progress "$label: modules" bash -c "cd '$dir' && go mod tidy"
  with_progress "$label: compile" bash -c "cd '$dir' && go build -trimpath -tags '$tags' -ldflags '$ldflags' -o '$output' '$package'"
}

clipboard_replace="github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e"
version_ldflag="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"

if [[ ! -x "$bin/pulumi" ]]; then
  say "building the Pulumi CLI v$cli_version from github.com/pulumi/pulumi/pkg/v3 (first time: ~4 min on 2 cores)"
  build_from_wrapper "pulumi CLI" "$build/cli-v$cli_version" \
    github.com/pulumi/pulumi/pkg/v3 "v$cli_version" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "$bin/pulumi.new" "-X $version_ldflag=v$cli_version" "osusergo grpcnotrace" \
    "github.com/pulumi/pulumi/sdk/v3 => github.com/pulumi/pulumi/sdk/v3 v$cli_version" "$clipboard_replace"
  mv -f "$bin/pulumi.new" "$bin/pulumi"
fi

if [[ ! -x "$bin/pulumi-language-nodejs" ]]; then
  if [[ "$language_version" != "$cli_version" ]]; then
    say "the module proxy serves no language host for $cli_version; building its newest release that it serves, $language_version"
  fi
  say "building pulumi-language-nodejs v$language_version (first time: ~1 min)"
  build_from_wrapper "language host" "$build/language-nodejs-v$language_version" \
    github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 "${LANGUAGE_HOST_MODULE[$language_version]}" \
    github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 \
    "$bin/pulumi-language-nodejs.new" "-X $version_ldflag=v$language_version" "" \
    "github.com/pulumi/pulumi/sdk/v3 => github.com/pulumi/pulumi/sdk/v3 v$language_version" \
    "github.com/pulumi/pulumi/pkg/v3 => github.com/pulumi/pulumi/pkg/v3 v$language_version" \
    "$clipboard_replace"
  mv -f "$bin/pulumi-language-nodejs.new" "$bin/pulumi-language-nodejs"
fi

# The official CLI ships this launcher beside `pulumi`: dynamic providers (EnsuredScript and
# the other resources of components/) run in Node.js from the program's own @pulumi/pulumi.
cat >"$bin/pulumi-resource-pulumi-nodejs" <<'EOF'
#!/bin/sh
exec node "$(node -p 'require.resolve("@pulumi/pulumi/cmd/dynamic-provider")')" "$@"
EOF
chmod 0755 "$bin/pulumi-resource-pulumi-nodejs"

if [[ -n "$kubernetes_version" ]]; then
  plugin_dir="$plugins/resource-kubernetes-v$kubernetes_version"
  if [[ ! -x "$plugin_dir/pulumi-resource-kubernetes" ]]; then
    module_version="${KUBERNETES_PROVIDER_MODULE[$kubernetes_version]:-}"
    [[ -n "$module_version" ]] ||
      die "no Go module version is known for pulumi-kubernetes $kubernetes_version; add its release commit's pseudo-version to KUBERNETES_PROVIDER_MODULE in $0"
    say "building pulumi-resource-kubernetes v$kubernetes_version (first time: ~8 min)"
    module=github.com/pulumi/pulumi-kubernetes/provider/v4
    src="$build/kubernetes-v$kubernetes_version"
    if [[ ! -f "$src/go.mod" ]]; then
      with_progress "kubernetes provider: download" go mod download "$module@$module_version"
      rm -rf "$src"
      cp -r "$(go mod download -json "$module@$module_version" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).Dir))')" "$src"
      chmod -R u+w "$src"
      # Its go.mod points the SDK module at ../sdk, which the module zip does not hold.
      (cd "$src" && go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4)
    fi
    # The embedded schema is generated (cmd/pulumi-resource-kubernetes/generate.go), not shipped.
    with_progress "kubernetes provider: schema" \
      bash -c "cd '$src/cmd/pulumi-resource-kubernetes' && VERSION='$kubernetes_version' go run generate.go"
    mkdir -p "$plugin_dir"
    with_progress "kubernetes provider: compile" bash -c "cd '$src' && go build -trimpath \
      -ldflags '-X $module/pkg/version.Version=$kubernetes_version' \
      -o '$plugin_dir/pulumi-resource-kubernetes.new' ./cmd/pulumi-resource-kubernetes"
    mv -f "$plugin_dir/pulumi-resource-kubernetes.new" "$plugin_dir/pulumi-resource-kubernetes"
  fi
fi

cli_reports="$("$bin/pulumi" version)"
[[ "$cli_reports" == "v$cli_version" ]] || die "$bin/pulumi reports $cli_reports, expected v$cli_version"
say "pulumi $cli_reports, pulumi-language-nodejs v$language_version and plugins in $home, built offline"

if [[ "$env_only" == true ]]; then
  {
    echo "export HARDWAY_PULUMI=$(printf '%q' "$bin/pulumi")"
    echo "export PATH=$(printf '%q' "$bin"):\$PATH"
    echo "export PULUMI_HOME=$(printf '%q' "$home")"
    echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
    echo "export PULUMI_IGNORE_AMBIENT_PLUGINS=true"
    echo "export PULUMI_SKIP_UPDATE_CHECK=true"
  } >&3
fi
