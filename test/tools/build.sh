#!/usr/bin/env bash
# Builds one test tool (helm, promtool, ...) from the Go module in test/tools/<tool>/ into
# <repo>/bin, only when the binary is missing or its pins changed. test/tools/<tool>/ holds
# go.mod/go.sum, a tools.go with the blank import, `package` naming the main package, and
# optionally `ldflags` (one line) and `tags` (build tags, one line).
# Built binaries are cached per pin outside the work tree, like the control plane's, so a
# fresh clone on the same machine links them instead of rebuilding.
set -euo pipefail
tool=${1:?usage: test/tools/build.sh <tool>}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
module="$here/$tool"
[ -f "$module/go.mod" ] && [ -f "$module/package" ] || { echo "test/tools/$tool: no go.mod or package file" >&2; exit 2; }
cache_root="${KOMPUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/komputer-connector-webhook}"
bin="${KOMPUTER_BIN_DIR:-$root/bin}"
mkdir -p "$bin"
cd "$module"

export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--mod=mod}"

pkg=$(tr -d '[:space:]' < package)
ldflags=""
[ -f ldflags ] && ldflags=$(tr -d '\n' < ldflags)
tags=""
[ -f tags ] && tags=$(tr -d '\n' < tags)
stamp_value=$( (cat go.mod go.sum package "$here/build.sh"; [ -f ldflags ] && cat ldflags; [ -f tags ] && cat tags || true) | sha256sum | cut -c1-16)
stamp_file="$bin/.$tool-stamp"
cache="$cache_root/tools/$tool/$stamp_value"
if [ -x "$bin/$tool" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ]; then
  echo "$tool: up to date in $bin"
  exit 0
fi
if [ -x "$cache/$tool" ]; then
  ln -sf "$cache/$tool" "$bin/$tool"
  echo "$stamp_value" > "$stamp_file"
  echo "$tool: linked cached binary from $cache"
  exit 0
fi

step() { printf '[%s %s] %s\n' "$tool" "$(date +%H:%M:%S)" "$*"; }
start=$(date +%s)
step "downloading Go modules for $pkg (first time only)"
go mod download
step "building $pkg (cold: a few minutes on 2 cores)"
go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" -o "$bin/$tool.tmp" "$pkg"
mv "$bin/$tool.tmp" "$bin/$tool"
echo "$stamp_value" > "$stamp_file"
mkdir -p "$cache" && cp "$bin/$tool" "$cache/$tool.tmp" && mv "$cache/$tool.tmp" "$cache/$tool"
step "built in $(( $(date +%s) - start ))s: $bin/$tool"
