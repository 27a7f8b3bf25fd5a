#!/usr/bin/env bash
# Fetches a third-party project's real CRDs from its Go module zip (through the Go module
# proxy, like the tools build.sh builds) into a per-pin cache, and links <repo>/bin/crds/<name>
# to it. test/tools/upstream-crds/<name> names the module, the version and the files.
# Cached per pin outside the work tree: a fresh clone on the same machine only links them.
set -euo pipefail
name=${1:?usage: test/tools/fetch-crds.sh <name>   (a file in test/tools/upstream-crds/)}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
spec="$here/upstream-crds/$name"
[ -f "$spec" ] || { echo "test/tools/upstream-crds/$name: no such file" >&2; exit 2; }
module=$(sed -n 's/^module=//p' "$spec")
version=$(sed -n 's/^version=//p' "$spec")
files=$(sed -n 's/^files=//p' "$spec")
[ -n "$module" ] && [ -n "$version" ] && [ -n "$files" ] || { echo "$spec: needs module=, version= and files=" >&2; exit 2; }
cache_root="${KOMPUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/komputer-connector-webhook}"
bin="${KOMPUTER_BIN_DIR:-$root/bin}"
stamp=$( (cat "$spec" "$here/fetch-crds.sh") | sha256sum | cut -c1-16)
cache="$cache_root/crds/$name/$version-$stamp"
mkdir -p "$bin/crds"
if [ -f "$cache/.complete" ]; then
  ln -sfn "$cache" "$bin/crds/$name"
  echo "crds/$name: linked cached $module@$version CRDs from $cache"
  exit 0
fi
step() { printf '[crds/%s %s] %s\n' "$name" "$(date +%H:%M:%S)" "$*"; }
step "downloading $module@$version from the Go module proxy (first time only)"
# Outside any module: only the zip is wanted, no go.mod to resolve against.
dir=$(cd /tmp && GOFLAGS= GO111MODULE=on go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "go mod download $module@$version gave no directory" >&2; exit 1; }
tmp="$cache.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
for f in $files; do
  [ -f "$dir/$f" ] || { echo "$module@$version has no $f" >&2; rm -rf "$tmp"; exit 1; }
  cp "$dir/$f" "$tmp/$(basename "$f")"
done
printf 'module=%s\nversion=%s\n' "$module" "$version" > "$tmp/SOURCE"
chmod -R u+w "$tmp"
touch "$tmp/.complete"
rm -rf "$cache" && mv "$tmp" "$cache"
ln -sfn "$cache" "$bin/crds/$name"
step "cached $(echo "$files" | wc -w) CRD file(s) in $cache"
