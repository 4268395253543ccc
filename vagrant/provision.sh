#!/usr/bin/env bash
# Provisions the nflab VM: Node.js (the distribution's is too old), then the project's own setup
# (system packages, br_netfilter, ip_vs, a Docker engine, npm ci) from the synced folder.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
NODE_VERSION=20.19.5

apt-get update -qq
apt-get install -y -qq curl ca-certificates xz-utils ipvsadm ipset >/dev/null

have_node() {
  command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'
}
if ! have_node; then
  arch=$(dpkg --print-architecture); case "$arch" in amd64) arch=x64;; arm64) arch=arm64;; esac
  curl -fsSL "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-${arch}.tar.xz" | tar -xJ -C /usr/local --strip-components=1
fi

# The VM's kernel has IPVS and dummy interfaces (the IPVS lab needs both); load them now.
modprobe ip_vs || true
modprobe dummy || true
modprobe br_netfilter || true

cd /vagrant
bash scripts/setup.sh
echo "nflab is ready: vagrant ssh -c 'cd /vagrant && sudo npx nflab run --all'"
