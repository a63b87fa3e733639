#!/usr/bin/env bash
# Builds a release mirror for the end-to-end run: the release files the cluster installs
# (Kubernetes, etcd, containerd, runc, CNI plugins, crictl), built from their Go modules with the
# `go` command and laid out exactly as upstream publishes them, each with its checksum file, so
# `hardway:releaseMirror` can point at the directory and fetch.sh verifies them as usual.
#
#   <mirror>/dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet  (+ .sha256)
#   <mirror>/github.com/etcd-io/etcd/releases/download/v3.7.3/etcd-v3.7.3-linux-amd64.tar.gz
#   …
#
# Every component is cached by version; a second run takes seconds.
#
# usage: build-mirror.sh --mirror DIR --kubernetes V[,V…] --etcd V[,V…] --containerd V --runc V
#          --cni-plugins V --crictl V[,V…] [--arch amd64]
set -euo pipefail

say() { echo "[mirror] $*"; }
die() {
  echo "[mirror] error: $*" >&2
  exit 1
}

mirror=""
kubernetes=""
etcd=""
containerd=""
runc=""
cni_plugins=""
crictl=""
arch=amd64
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "option $1 needs a value"
  case "$1" in
    --mirror) mirror="$2" ;;
    --kubernetes) kubernetes="$2" ;;
    --etcd) etcd="$2" ;;
    --containerd) containerd="$2" ;;
    --runc) runc="$2" ;;
    --cni-plugins) cni_plugins="$2" ;;
    --crictl) crictl="$2" ;;
    --arch) arch="$2" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
for value in "$mirror" "$kubernetes" "$etcd" "$containerd" "$runc" "$cni_plugins" "$crictl"; do
  [[ -n "$value" ]] || die "every option but --arch is required (see the header of $0)"
done
[[ "$mirror" == /* ]] || die "--mirror must be an absolute directory"
command -v go >/dev/null || die "the Go toolchain is needed to build the release files"
build="$mirror/.build"
mkdir -p "$build"
export GOOS=linux GOARCH="$arch" GOFLAGS="-mod=mod"
# The checksum database mirror reachable here lacks records for some releases of the modules
# built below (k8s.io/kubernetes v1.37.2, say); their dependencies are still verified, and each
# wrapper's go.sum pins what was fetched.
export GONOSUMDB="k8s.io/kubernetes,go.etcd.io/etcd,github.com/containerd/containerd,github.com/opencontainers/runc,github.com/containernetworking/plugins,sigs.k8s.io/cri-tools"

# shellcheck source=SCRIPTDIR/../harness/progress.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../harness/progress.sh"

# `go mod download -json` for one module version, as "Dir GoMod Hash Time".
module_info() {
  go mod download -json "$1" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const m = JSON.parse(s);
      if (m.Error) { console.error(m.Error); process.exit(1); }
      console.log([m.Dir, m.GoMod, (m.Origin && m.Origin.Hash) || "unknown", m.Time].join(" "));
    });'
}

# A wrapper module requiring MODULE@VERSION with the given replace lines; prints its directory.
wrapper() {
  local dir="$1" module="$2" version="$3"
  shift 3
  mkdir -p "$dir"
  {
    echo "module hardway.invalid/mirror/$(basename "$dir")"
    echo
    echo "go 1.26"
    echo
    echo "require $module $version"
    for replace in "$@"; do
      echo "replace $replace"
    done
  } >"$dir/go.mod"
}

# The `k8s.io/x => ./staging/…` (or etcd's `=> ../x`) replaces of a go.mod, re-pointed at the
# released module version, since relative paths mean nothing outside the repository. etcd's
# guards against importing its old root module (`=> ./FORBIDDEN_DEPENDENCY`) are left out.
released_replaces() {
  local gomod="$1" version="$2"
  awk -v v="$version" '
    /^replace *\(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    { line = $0; sub(/^replace /, "", line) }
    (block || $0 ~ /^replace /) && line ~ /=> *\.\.?\// && line !~ /FORBIDDEN/ { split(line, p, " "); print p[1] " => " p[1] " " v }
  ' "$gomod"
}

tools_file() {
  local dir="$1"
  shift
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for package in "$@"; do
      echo "	_ \"$package\""
    done
    echo ")"
  } >"$dir/tools.go"
}

sha256_bare() { sha256sum "$1" | cut -d ' ' -f 1 >"$1.sha256"; }
sha256_named() { (cd "$(dirname "$1")" && sha256sum "$(basename "$1")") >"$2"; }

# --- Kubernetes --------------------------------------------------------------------------------
k8s_binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
IFS=',' read -r -a k8s_versions <<<"$kubernetes"
for version in "${k8s_versions[@]}"; do
  out="$mirror/dl.k8s.io/release/v$version/bin/linux/$arch"
  if [[ -f "$out/kubectl.sha256" ]]; then
    say "Kubernetes v$version: cached"
    continue
  fi
  say "Kubernetes v$version from k8s.io/kubernetes (first time: ~6 min on 2 cores)"
  read -r _ gomod commit built <<<"$(module_info "k8s.io/kubernetes@v$version")"
  minor="${version#*.}"
  minor="${minor%%.*}"
  dir="$build/kubernetes-v$version"
  mapfile -t replaces < <(released_replaces "$gomod" "v0.${version#*.}")
  wrapper "$dir" k8s.io/kubernetes "v$version" "${replaces[@]}"
  tools_file "$dir" "${k8s_binaries[@]/#/k8s.io/kubernetes/cmd/}"
  with_progress "Kubernetes v$version: modules" bash -c "cd '$dir' && go mod tidy"
  flags=""
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $package.gitVersion=v$version -X $package.gitMajor=1 -X $package.gitMinor=$minor"
    flags+=" -X $package.gitCommit=$commit -X $package.gitTreeState=clean -X $package.buildDate=$built"
  done
  mkdir -p "$dir/out"
  with_progress "Kubernetes v$version: compile" bash -c "cd '$dir' && CGO_ENABLED=0 go build -trimpath \
    -tags selinux,notest -ldflags '-s -w$flags' -o out/ ${k8s_binaries[*]/#/k8s.io/kubernetes/cmd/}"
  mkdir -p "$out"
  for binary in "${k8s_binaries[@]}"; do
    cp "$dir/out/$binary" "$out/$binary"
    sha256_bare "$out/$binary"
  done
  rm -rf "$dir/out"
done

# --- etcd ---------------------------------------------------------------------------------------
IFS=',' read -r -a etcd_versions <<<"$etcd"
for etcd_version in "${etcd_versions[@]}"; do
  release="$mirror/github.com/etcd-io/etcd/releases/download/v$etcd_version"
  name="etcd-v$etcd_version-linux-$arch"
  if [[ -f "$release/SHA256SUMS" ]]; then
    say "etcd v$etcd_version: cached"
  else
    say "etcd v$etcd_version from go.etcd.io/etcd (first time: ~1 min)"
    read -r _ gomod commit _ <<<"$(module_info "go.etcd.io/etcd/server/v3@v$etcd_version")"
    dir="$build/etcd-v$etcd_version"
    mapfile -t replaces < <(released_replaces "$gomod" "v$etcd_version")
    wrapper "$dir" go.etcd.io/etcd/server/v3 "v$etcd_version" "${replaces[@]}" \
      "go.etcd.io/etcd/etcdctl/v3 => go.etcd.io/etcd/etcdctl/v3 v$etcd_version" \
      "go.etcd.io/etcd/etcdutl/v3 => go.etcd.io/etcd/etcdutl/v3 v$etcd_version"
    tools_file "$dir" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
    (cd "$dir" && go mod edit -require "go.etcd.io/etcd/etcdctl/v3@v$etcd_version" -require "go.etcd.io/etcd/etcdutl/v3@v$etcd_version")
    with_progress "etcd v$etcd_version: modules" bash -c "cd '$dir' && go mod tidy"
    rm -rf "${dir:?}/$name"
    mkdir -p "$dir/$name"
    flag="-X go.etcd.io/etcd/api/v3/version.GitSHA=${commit:0:8}"
    with_progress "etcd v$etcd_version: compile" bash -c "cd '$dir' && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $flag' -o '$name/etcd' go.etcd.io/etcd/server/v3 \
      && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $flag' -o '$name/etcdctl' go.etcd.io/etcd/etcdctl/v3 \
      && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $flag' -o '$name/etcdutl' go.etcd.io/etcd/etcdutl/v3"
    mkdir -p "$release"
    tar -czf "$release/$name.tar.gz" -C "$dir" "$name"
    sha256_named "$release/$name.tar.gz" "$release/SHA256SUMS"
  fi
done

# --- containerd ---------------------------------------------------------------------------------
release="$mirror/github.com/containerd/containerd/releases/download/v$containerd"
file="containerd-$containerd-linux-$arch.tar.gz"
if [[ -f "$release/$file.sha256sum" ]]; then
  say "containerd v$containerd: cached"
else
  say "containerd v$containerd from github.com/containerd/containerd/v2 (first time: ~75 s)"
  read -r _ _ commit _ <<<"$(module_info "github.com/containerd/containerd/v2@v$containerd")"
  dir="$build/containerd-v$containerd"
  wrapper "$dir" github.com/containerd/containerd/v2 "v$containerd"
  commands=(containerd containerd-shim-runc-v2 ctr)
  tools_file "$dir" "${commands[@]/#/github.com/containerd/containerd/v2/cmd/}"
  with_progress "containerd v$containerd: modules" bash -c "cd '$dir' && go mod tidy"
  rm -rf "$dir/tree" && mkdir -p "$dir/tree/bin"
  flags="-X github.com/containerd/containerd/v2/version.Version=v$containerd -X github.com/containerd/containerd/v2/version.Revision=$commit"
  with_progress "containerd v$containerd: compile" bash -c "cd '$dir' && CGO_ENABLED=0 go build -trimpath \
    -tags 'no_btrfs urfave_cli_no_docs' -ldflags '-s -w $flags' -o tree/bin/ ${commands[*]/#/github.com/containerd/containerd/v2/cmd/}"
  mkdir -p "$release"
  tar -czf "$release/$file" -C "$dir/tree" bin
  sha256_named "$release/$file" "$release/$file.sha256sum"
fi

# --- runc (cgo, libseccomp) ---------------------------------------------------------------------
release="$mirror/github.com/opencontainers/runc/releases/download/v$runc"
if [[ -f "$release/runc.sha256sum" ]]; then
  say "runc v$runc: cached"
else
  say "runc v$runc from github.com/opencontainers/runc (needs gcc and libseccomp-dev)"
  read -r _ _ commit _ <<<"$(module_info "github.com/opencontainers/runc@v$runc")"
  dir="$build/runc-v$runc"
  wrapper "$dir" github.com/opencontainers/runc "v$runc"
  tools_file "$dir" github.com/opencontainers/runc
  with_progress "runc v$runc: modules" bash -c "cd '$dir' && go mod tidy"
  mkdir -p "$release"
  with_progress "runc v$runc: compile" bash -c "cd '$dir' && CGO_ENABLED=1 go build -trimpath \
    -tags 'seccomp urfave_cli_no_docs netgo osusergo' \
    -ldflags '-s -w -X main.version=$runc -X main.gitCommit=$commit -extldflags -static' \
    -o '$release/runc.$arch' github.com/opencontainers/runc"
  sha256_named "$release/runc.$arch" "$release/runc.sha256sum"
fi

# --- CNI plugins --------------------------------------------------------------------------------
release="$mirror/github.com/containernetworking/plugins/releases/download/v$cni_plugins"
file="cni-plugins-linux-$arch-v$cni_plugins.tgz"
if [[ -f "$release/$file.sha256" ]]; then
  say "CNI plugins v$cni_plugins: cached"
else
  say "CNI plugins v$cni_plugins from github.com/containernetworking/plugins"
  dir="$build/cni-plugins-v$cni_plugins"
  wrapper "$dir" github.com/containernetworking/plugins "v$cni_plugins"
  plugins=(main/bridge main/loopback ipam/host-local meta/portmap)
  tools_file "$dir" "${plugins[@]/#/github.com/containernetworking/plugins/plugins/}"
  with_progress "CNI plugins v$cni_plugins: modules" bash -c "cd '$dir' && go mod tidy"
  rm -rf "$dir/tree" && mkdir -p "$dir/tree"
  flag="-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v$cni_plugins"
  with_progress "CNI plugins v$cni_plugins: compile" bash -c "cd '$dir' && CGO_ENABLED=0 go build -trimpath \
    -ldflags '-s -w $flag' -o tree/ ${plugins[*]/#/github.com/containernetworking/plugins/plugins/}"
  mkdir -p "$release"
  tar -czf "$release/$file" -C "$dir/tree" .
  sha256_named "$release/$file" "$release/$file.sha256"
fi

# --- crictl -------------------------------------------------------------------------------------
IFS=',' read -r -a crictl_versions <<<"$crictl"
for crictl_version in "${crictl_versions[@]}"; do
  release="$mirror/github.com/kubernetes-sigs/cri-tools/releases/download/v$crictl_version"
  file="crictl-v$crictl_version-linux-$arch.tar.gz"
  if [[ -f "$release/$file.sha256" ]]; then
    say "crictl v$crictl_version: cached"
  else
    say "crictl v$crictl_version from sigs.k8s.io/cri-tools"
    dir="$build/crictl-v$crictl_version"
    wrapper "$dir" sigs.k8s.io/cri-tools "v$crictl_version"
    tools_file "$dir" sigs.k8s.io/cri-tools/cmd/crictl
    with_progress "crictl v$crictl_version: modules" bash -c "cd '$dir' && go mod tidy"
    rm -rf "$dir/tree" && mkdir -p "$dir/tree"
    with_progress "crictl v$crictl_version: compile" bash -c "cd '$dir' && CGO_ENABLED=0 go build -trimpath \
      -ldflags '-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version' -o tree/crictl sigs.k8s.io/cri-tools/cmd/crictl"
    mkdir -p "$release"
    tar -czf "$release/$file" -C "$dir/tree" crictl
    sha256_bare "$release/$file"
  fi
done

say "mirror ready in $mirror ($(du -sh --exclude=.build "$mirror" | cut -f 1))"
