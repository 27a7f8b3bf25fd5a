#!/usr/bin/env bash
# Installs the Debian packages the image builds and the image tests use, only when missing:
# buildah (daemonless builds), mmdebstrap (the Debian base), umoci + runc (the image test
# runs the image without a node), uidmap (buildah's user namespaces when not root).
set -euo pipefail
declare -A pkg_of=([buildah]=buildah [mmdebstrap]=mmdebstrap [umoci]=umoci [runc]=runc [newuidmap]=uidmap)
missing=()
for cmd in "${!pkg_of[@]}"; do command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 2
fi
echo "installing Debian packages: ${missing[*]}" >&2
apt-get update -qq -o DPkg::Lock::Timeout=300
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
