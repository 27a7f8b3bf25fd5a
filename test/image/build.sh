#!/usr/bin/env bash
# Builds the project's images daemonlessly (buildah, chroot isolation, host network) on the
# local stand-in base (base.sh) and writes each as an OCI archive that
# `ctr -n k8s.io images import <archive>` loads under the name pods use.
#
#   test/image/build.sh [app|fixtures|all]      (default: app; `npm run image` = app)
#
#   app       localhost/komputer-connector-webhook:dev  -> bin/images/komputer-connector-webhook.oci.tar
#             (the project's Dockerfile, --build-arg BASE_IMAGE=<local base>)
#   fixtures  localhost/komputer-test-agent:dev         -> bin/images/komputer-test-agent.oci.tar
#             localhost/komputer-fake-mcp:dev           -> bin/images/komputer-fake-mcp.oci.tar
#             (test/image/agent-runtime, test/image/fake-mcp)
#
# stdout: one line per image, "<name> <archive>"; progress goes to stderr. Each archive is
# cached per hash of its inputs (base image, Dockerfile, sources), so a re-run with nothing
# changed takes about a second. KOMPUTER_IMAGE_DIR moves bin/images; KOMPUTER_CACHE_DIR the cache.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
what=${1:-app}
case "$what" in app|fixtures|all) ;; *) die "usage: test/image/build.sh [app|fixtures|all]" ;; esac
need_tools
lock_builds
started=$(date +%s)
base_image=$(bash "$here/base.sh")
base_id=$(image_id "$base_image")

# build <name> <short> <context dir> <Dockerfile> <input files...>
build() {
  local name=$1 short=$2 context=$3 dockerfile=$4; shift 4
  local key archive out t0 size
  key=$( (echo "$base_id"; cat "$here/build.sh" "$here/lib.sh"; for f in "$@"; do echo "$f"; cat "$f"; done) | hash16)
  archive="$image_cache/$short/$key/$short.oci.tar"
  out="$image_out/$short.oci.tar"
  if [ ! -f "$archive" ]; then
    step "building $name from ${dockerfile#"$root"/} (inputs $key)"
    t0=$(date +%s)
    nice -n 10 buildah bud --isolation chroot --network host --layers --pull=never \
      --build-arg BASE_IMAGE="$base_image" -f "$dockerfile" -t "$name" "$context" >&2
    mkdir -p "$(dirname "$archive")"
    rm -f "$archive.tmp"
    # The reference after the path becomes the archive's org.opencontainers.image.ref.name:
    # containerd's import takes a full reference there as the image name.
    nice -n 10 buildah push --quiet "$name" "oci-archive:$archive.tmp:$name" >&2
    mv "$archive.tmp" "$archive"
    size=$(buildah images --format '{{.Size}}' "$name" | head -1)
    step "$name built in $(( $(date +%s) - t0 ))s: archive $(( $(stat -c %s "$archive") / 1048576 )) MiB, unpacked $size"
  fi
  ln -sfn "$archive" "$out"
  echo "$name $out"
}

if [ "$what" = app ] || [ "$what" = all ]; then
  mapfile -t inputs < <(cd "$root" && { printf '%s\n' Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json; find src -type f; } | LC_ALL=C sort)
  build localhost/komputer-connector-webhook:dev komputer-connector-webhook "$root" "$root/Dockerfile" "${inputs[@]/#/$root/}"
fi
if [ "$what" = fixtures ] || [ "$what" = all ]; then
  for fixture in agent-runtime:komputer-test-agent fake-mcp:komputer-fake-mcp; do
    dir="$here/${fixture%%:*}" short=${fixture#*:}
    mapfile -t inputs < <(find "$dir" -type f | LC_ALL=C sort)
    build "localhost/$short:dev" "$short" "$dir" "$dir/Dockerfile" "${inputs[@]}"
  done
fi
step "done in $(( $(date +%s) - started ))s"
