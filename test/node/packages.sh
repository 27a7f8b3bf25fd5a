#!/usr/bin/env bash
# Installs the Debian packages a node needs (containerd, runc, the CNI plugins, iptables),
# only those missing. Idempotent: a machine that has them is left as it is.
set -euo pipefail
packages=(containerd runc containernetworking-plugins iptables)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "node packages: installed ($(dpkg-query -W -f='${Package} ${Version}  ' "${packages[@]}"))"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "node packages missing (${missing[*]}): run this as root or install them with apt-get" >&2; exit 1; }
echo "node packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt run (e.g. the image tools) may hold the locks: wait for it instead of failing
# (DPkg::Lock::Timeout covers the dpkg lock only, not the lists lock `update` takes).
for attempt in $(seq 1 60); do
  apt-get -o DPkg::Lock::Timeout=600 update -qq && break
  [ "$attempt" = 60 ] && exit 1
  echo "node packages: apt is busy, retrying in 10s"; sleep 10
done
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "node packages: $(dpkg-query -W -f='${Package} ${Version}  ' "${packages[@]}")"
