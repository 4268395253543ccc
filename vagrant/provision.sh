#!/usr/bin/env bash
# Provisions the nflab VM: Node.js (the distribution's is too old), then the project's own setup
# for running labs (system packages, br_netfilter, ip_vs, a Docker engine, npm ci) from the synced folder.
# Downloads only what is missing: on nflab's local box (scripts/vagrant/build-box.sh) everything is
# there already and provisioning runs offline.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
NODE_VERSION=20.19.5

have_node() {
  command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'
}
missing=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || missing+=("$1"); }
need ipvsadm; need ipset
have_node || { need curl; need ca-certificates; need xz-utils; }
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! have_node; then
  arch=$(dpkg --print-architecture); case "$arch" in amd64) arch=x64;; arm64) arch=arm64;; esac
  curl -fsSL "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-${arch}.tar.xz" | tar -xJ -C /usr/local --strip-components=1
fi

# The VM's kernel has IPVS and dummy interfaces (the IPVS lab needs both); load them now.
modprobe ip_vs || true
modprobe dummy || true
modprobe br_netfilter || true

cd /vagrant
bash scripts/setup.sh --labs
echo "nflab is ready: vagrant ssh -c 'cd /vagrant && sudo npx nflab run --all'"
