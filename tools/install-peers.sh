#!/usr/bin/env bash
# Installs the real peers that the integration tests talk to: Debian packages
# through apt, and npm packages from peers/package-lock.json.
#
# The npm tree (~340 MB, minutes to install) is cached per lockfile hash in
# SEDIS_PEER_CACHE (default ~/.cache/sedis/peers), so every checkout on this
# machine shares one install; .cache/peers in the checkout links to it.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(ipfs-cid debootstrap rpm skopeo umoci oci-image-tool docker-registry busybox-static podman runc
  docker.io containerd prometheus prometheus-alertmanager influxdb influxdb-client chromium fonts-dejavu-core)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman reads these only from /etc/containers: conmon runs its cleanup with an
# empty environment, so they cannot come from variables. Without them every
# run waits ~20 s on hybrid cgroups or fails on rlimits.
containers_conf=/etc/containers/containers.conf
if [ ! -f "$containers_conf" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "writing $containers_conf for podman"
  $sudo mkdir -p /etc/containers
  $sudo tee "$containers_conf.tmp.$$" >/dev/null <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  $sudo mv "$containers_conf.tmp.$$" "$containers_conf"
fi

lock_hash=$(cat peers/package.json peers/package-lock.json peers/polyfill.cjs | sha256sum | cut -c1-16)
cache_root="${SEDIS_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sedis/peers}"
cache="$cache_root/$lock_hash"
mkdir -p "$cache_root"
# One install at a time per machine: a second caller waits, then finds it done.
exec 9>"$cache_root/.lock"
flock 9
rm -rf "$cache_root"/*.partial.*
if [ ! -f "$cache/.complete" ]; then
  echo "installing npm peers into $cache (a few minutes, once per machine)"
  staging="$cache.partial.$$"
  rm -rf "$staging"
  mkdir -p "$staging"
  cp peers/package.json peers/package-lock.json peers/polyfill.cjs "$staging/"
  # npm ci would refuse this lock: deep in js-ipfs's tree an optional dependency
  # points at a git tarball that cannot be fetched. npm install still takes every
  # version from the lock and skips that optional package.
  (cd "$staging" && npm install --no-audit --no-fund --loglevel=error)
  touch "$staging/.complete"
  rm -rf "$cache"
  mv "$staging" "$cache"
fi
mkdir -p .cache
ln -sfn "$cache" .cache/peers
