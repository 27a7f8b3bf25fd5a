# Shared by test/image/*.sh (sourced): paths, cache, progress and the one lock.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache_root="${KOMPUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/komputer-connector-webhook}"
image_cache="$cache_root/images"
# Where the importable archives are linked (git-ignored).
image_out="${KOMPUTER_IMAGE_DIR:-$root/bin/images}"
mkdir -p "$image_cache" "$image_out"

step() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }
hash16() { sha256sum | cut -c1-16; }

# Installs the Debian packages when missing (as root; otherwise says which to install).
need_tools() { bash "$here/install-deps.sh" || exit $?; }

# One build at a time per machine: buildah's store is shared, and two cold base builds
# would both run mmdebstrap.
lock_builds() {
  exec 9>"$image_cache/.lock"
  flock -n 9 || { step "waiting for another image build to finish"; flock 9; }
}

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1"; }
