#!/usr/bin/env bash
# Installs what nflab needs on a fresh Debian/Ubuntu machine (as root) and nothing it already has.
# Idempotent: safe to run before every lab or test run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Usage: scripts/setup.sh [--labs]         --labs: only what running the labs needs (scripts/labs.sh,
#                                           Vagrant provisioning), not the test suite's tools
#        scripts/setup.sh --list-packages labs|all   print that profile's apt packages and change nothing
profile=all
case ${1:-} in
  '') ;;
  --labs) profile=labs ;;
  --list-packages) profile=${2:-all}; list_only=1 ;;
  *) echo "setup: unknown argument $1 (usage: setup.sh [--labs] | --list-packages labs|all)" >&2; exit 2 ;;
esac

# Tools the labs run (plain-namespace mode) and the ones that build the offline Docker image.
packages=(iproute2 iptables nftables tcpdump conntrack iputils-ping fping socat procps util-linux kmod busybox-static ca-certificates)
# Docker mode: the engine itself (no registry needed; nflab builds its image locally).
packages+=(docker.io)
if [ "$profile" = all ]; then
  # Tests: xmllint validates the JUnit reports against a schema.
  packages+=(libxml2-utils)
  # Handouts: headless Chromium renders and prints the HTML handouts.
  packages+=(chromium fonts-wqy-microhei)
  # Tests: pdftotext and pdftoppm read the printed handouts back (no command broken inside a word).
  packages+=(poppler-utils)
  # SSH target tests: a real sshd started inside a namespace (the system service stays off).
  packages+=(openssh-server openssh-client)
  # Vagrant with its libvirt provider (`vagrant validate` needs a usable provider; the vagrant-up test
  # boots a box on QEMU). Not libvirt-daemon-system: its service would start libvirtd and its default
  # NAT network in this machine's root namespace; scripts/vagrant/libvirt-ns.sh runs a libvirtd of its
  # own inside a network namespace instead.
  packages+=(vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils)
fi
if [ -n "${list_only:-}" ]; then echo "${packages[*]}"; exit 0; fi

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: run as root (sudo $0)" >&2; exit 3; }; }
need_root

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps package installs from starting system services (sshd, dockerd) on their own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# iptables must be the nf_tables backend (the one the labs' expectations were verified with).
if ! iptables --version | grep -q nf_tables; then
  update-alternatives --set iptables /usr/sbin/iptables-nft
  update-alternatives --set ip6tables /usr/sbin/ip6tables-nft || true
fi

# br_netfilter provides net.bridge.bridge-nf-call-iptables (labs 01, 04-06).
[ -d /proc/sys/net/bridge ] || modprobe br_netfilter || echo "setup: warning: br_netfilter is not available; labs that need it will be skipped" >&2

scripts/start-dockerd.sh

[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
