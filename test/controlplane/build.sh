#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from this module into <repo>/bin, only when a
# binary is missing or the pins (go.mod/go.sum) changed since it was built.
# A cold build downloads a few hundred MB of modules and compiles for several minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache_root="${KOMPUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/komputer-connector-webhook}"
pinned=$(sed -n 's/^K8S_VERSION=//p' "$here/versions.env")
# K8S_VERSION=v1.35.x builds another supported release (e.g. the oldest) beside the pinned
# one: its wrapper module is generated in the cache, its binaries go to bin/<version>.
K8S_VERSION="${K8S_VERSION:-$pinned}"
if [ "$K8S_VERSION" = "$pinned" ]; then
  bin="${KOMPUTER_BIN_DIR:-$root/bin}"
else
  bin="${KOMPUTER_BIN_DIR:-$root/bin/$K8S_VERSION}"
  module="$cache_root/module-$K8S_VERSION"
  mkdir -p "$module"
  cp "$here/tools.go" "$here/gen-gomod.sh" "$here/versions.env" "$here/build.sh" "$module/"
  [ -f "$module/go.mod" ] || (cd "$module" && K8S_VERSION_OVERRIDE="$K8S_VERSION" ./gen-gomod.sh)
  here="$module"
fi
mkdir -p "$bin"
cd "$here"

# Go newer than the machine's may be required by a future pin: honour go.mod's toolchain.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--mod=mod}"

stamp_value=$(cat go.mod go.sum build.sh | sha256sum | cut -c1-16)
stamp_file="$bin/.controlplane-stamp"
# Built binaries are also kept per pin outside the work tree, so a fresh clone on the same
# machine (CI) links them instead of rebuilding.
cache="$cache_root/controlplane/$stamp_value"
complete() { for b in kube-apiserver kubectl etcd; do [ -x "$1/$b" ] || return 1; done; }
if complete "$bin" && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ]; then
  echo "control plane: up to date in $bin ($K8S_VERSION)"
  exit 0
fi
if complete "$cache"; then
  for b in kube-apiserver kubectl etcd; do ln -sf "$cache/$b" "$bin/$b"; done
  echo "$stamp_value" > "$stamp_file"
  echo "control plane: linked cached binaries from $cache ($K8S_VERSION)"
  exit 0
fi

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION}"

step() { printf '[control plane %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$(date +%s)
step "downloading Go modules for kubernetes $K8S_VERSION (first time: a few hundred MB)"
go mod download
for target in "kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver" "kubectl:k8s.io/kubernetes/cmd/kubectl" "etcd:go.etcd.io/etcd/server/v3"; do
  name=${target%%:*}; pkg=${target#*:}
  step "building $name (cold: several minutes on 2 cores)"
  t0=$(date +%s)
  # -trimpath keeps the binaries reproducible; the build cache makes re-builds fast.
  go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg"
  mv "$bin/$name.tmp" "$bin/$name"
  step "built $name in $(( $(date +%s) - t0 ))s"
done
echo "$stamp_value" > "$stamp_file"
mkdir -p "$cache" && for b in kube-apiserver kubectl etcd; do cp "$bin/$b" "$cache/$b.tmp" && mv "$cache/$b.tmp" "$cache/$b"; done
step "done in $(( $(date +%s) - start ))s: $(ls "$bin" | tr '\n' ' ')"
