#!/usr/bin/env bash
# Builds the node's Kubernetes components (kubelet, kube-scheduler, kube-controller-manager,
# kube-proxy) into <repo>/bin from the control plane's wrapper module (test/controlplane:
# same release, same module versions), only when a binary is missing or the pins changed.
# The node commands need ~20 modules the API server does not; they are added to a copy of
# that module in the cache (at the versions the pinned kubernetes go.mod requires: the
# script refuses any change to a version the control plane already pins), so the control
# plane's own go.mod/go.sum, and its build stamp, stay as they are.
# Cold (after the control plane's build, whose Go build cache it shares): several minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cp_dir="$root/test/controlplane"
cache_root="${KOMPUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/komputer-connector-webhook}"
bin="${KOMPUTER_BIN_DIR:-$root/bin}"
k8s_version=$(sed -n 's/^K8S_VERSION=//p' "$cp_dir/versions.env")
binaries=(kubelet kube-scheduler kube-controller-manager kube-proxy)
mkdir -p "$bin"

# The test images' one program (test/node/probe, standard library only): seconds to build.
probe_stamp=$(cat "$here/probe/go.mod" "$here/probe/main.go" | sha256sum | cut -c1-16)
if [ ! -x "$bin/komputer-probe" ] || [ "$(cat "$bin/.komputer-probe-stamp" 2>/dev/null)" != "$probe_stamp" ]; then
  (cd "$here/probe" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$bin/komputer-probe.tmp" .)
  mv "$bin/komputer-probe.tmp" "$bin/komputer-probe"
  echo "$probe_stamp" > "$bin/.komputer-probe-stamp"
  echo "node: built komputer-probe (the test images' program)"
fi

export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--mod=mod}"

stamp_value=$(cat "$cp_dir/go.mod" "$cp_dir/go.sum" "$here/tools.go" "$here/build.sh" | sha256sum | cut -c1-16)
stamp_file="$bin/.node-stamp"
cache="$cache_root/node/$stamp_value"
complete() { for b in "${binaries[@]}"; do [ -x "$1/$b" ] || return 1; done; }
if complete "$bin" && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ]; then
  echo "node: up to date in $bin ($k8s_version)"
  exit 0
fi
if complete "$cache"; then
  for b in "${binaries[@]}"; do ln -sf "$cache/$b" "$bin/$b"; done
  echo "$stamp_value" > "$stamp_file"
  echo "node: linked cached binaries from $cache ($k8s_version)"
  exit 0
fi

step() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$(date +%s)
module="$cache_root/node-module/$stamp_value"
mkdir -p "$module"
cp "$cp_dir/go.mod" "$cp_dir/go.sum" "$module/"
cp "$here/tools.go" "$module/tools.go"
cd "$module"
step "adding the node's modules to a copy of test/controlplane's module ($k8s_version)"
# Effective versions (a replaced module counts at its replacement's version).
effective() { go list -m -f '{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}' all | sort; }
before=$(effective)
go mod tidy
after=$(effective)
# Only additions: a changed version would make the node differ from the control plane.
changed=$(comm -23 <(echo "$before") <(echo "$after"))
if [ -n "$changed" ]; then
  echo "node: adding the node commands would change module versions the control plane pins:" >&2
  echo "$changed" >&2
  exit 1
fi
go mod download
minor=${k8s_version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}"
for name in "${binaries[@]}"; do
  step "building $name (cold: up to several minutes on 2 cores)"
  t0=$(date +%s)
  go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "k8s.io/kubernetes/cmd/$name"
  mv "$bin/$name.tmp" "$bin/$name"
  step "built $name in $(( $(date +%s) - t0 ))s ($(du -m "$bin/$name" | cut -f1) MB)"
done
echo "$stamp_value" > "$stamp_file"
mkdir -p "$cache" && for b in "${binaries[@]}"; do cp "$bin/$b" "$cache/$b.tmp" && mv "$cache/$b.tmp" "$cache/$b"; done
step "done in $(( $(date +%s) - start ))s: ${binaries[*]}"
