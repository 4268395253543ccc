#!/usr/bin/env bash
# Installs what nflab needs on a fresh Debian/Ubuntu machine (as root) and nothing it already has.
# Idempotent: safe to run before every lab or test run.
#   scripts/setup.sh           what the labs need (network tools, Node packages)
#   scripts/setup.sh --tests   also what the test suite needs (Docker, Chromium, sshd, Vagrant, linters)
set -euo pipefail
case $0 in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac

# Node first (builtins only, so it also answers on a machine that has nothing else): every other
# step needs it, and Debian 12's and Ubuntu 24.04's nodejs (18) is too old for nflab.
NODE_NEEDED=20.19
node_advice() {
  local line
  while IFS= read -r line; do echo "$line" >&2; done <<ADVICE
  fix: install Node.js $NODE_NEEDED or newer, then run this again:
    Debian 13 (trixie) ships nodejs 20.19:   sudo apt-get install nodejs npm
    Ubuntu: 'apt-cache policy nodejs' shows the version your release ships; if it is $NODE_NEEDED or newer,
      sudo apt-get install nodejs npm
    Debian 12 (nodejs 18), Ubuntu 22.04 and 24.04 (12 and 18) ship an older one: install Node 20 or 22
      from the Node.js project's Linux binaries (unpack into /usr/local) or with nvm (nvm install 22),
      then check that root sees it too: sudo node -v (v$NODE_NEEDED or newer).
ADVICE
}
if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js is not installed; nflab needs Node.js >= $NODE_NEEDED" >&2
  node_advice; exit 3
fi
node_found=$(node -v 2>/dev/null || true)
if ! [[ "$node_found" =~ ^v([0-9]+)\.([0-9]+) ]] \
  || (( BASH_REMATCH[1] < 20 || (BASH_REMATCH[1] == 20 && BASH_REMATCH[2] < 19) )); then
  echo "setup: Node.js ${node_found:-(no version)} found at $(command -v node); nflab needs Node.js >= $NODE_NEEDED" >&2
  node_advice; exit 3
fi

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: run as root (sudo $0)" >&2; exit 3; }; }
need_root

tests=0
case ${1:-} in
  ''|--labs) ;;                                   # what running the labs needs (labs.sh, Vagrant provisioning)
  --tests) tests=1 ;;
  --list-packages) [ "${2:-labs}" = tests ] && tests=1; list_only=1 ;;   # print a profile's packages, change nothing
  *) echo "setup: unknown argument $1 (usage: setup.sh [--labs | --tests | --list-packages labs|tests])" >&2; exit 2 ;;
esac

# Tools the labs run (plain-namespace mode).
packages=(iproute2 iptables nftables tcpdump conntrack iputils-ping fping socat procps util-linux kmod ca-certificates)
if [ "$tests" = 1 ]; then
  # The offline Docker image for container nodes is built from busybox and the host's tools.
  packages+=(busybox-static)
  # Tests: xmllint validates the JUnit reports against a schema; shellcheck lints exported scripts.
  packages+=(libxml2-utils shellcheck)
  # The student-loop test drives nflab shell in a real terminal: tmux (send-keys, capture-pane).
  packages+=(tmux)
  # Docker mode: the engine itself (no registry needed; nflab builds its image locally).
  packages+=(docker.io)
  # Handouts: headless Chromium renders and prints the HTML handouts.
  packages+=(chromium fonts-wqy-microhei)
  # Tests: pdftotext and pdftoppm read the printed handouts back (no command broken inside a word).
  packages+=(poppler-utils)
  # SSH target tests: a real sshd started inside a namespace (the system service stays off).
  packages+=(openssh-server openssh-client)
  # Vagrant with its libvirt provider (`vagrant validate` needs a usable provider; the opt-in
  # vagrant-up test boots a box on QEMU). Not libvirt-daemon-system: its service would start
  # libvirtd and its default NAT network in this machine's root namespace;
  # scripts/vagrant/libvirt-ns.sh runs a libvirtd of its own inside a network namespace instead.
  packages+=(vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils)
fi
if [ -n "${list_only:-}" ]; then echo "${packages[*]}"; exit 0; fi

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

# The machine's own `iptables` alternative is left as it is: nflab calls iptables-nft (or, with
# --iptables legacy, iptables-legacy) by name, and says when plain `iptables` is the other one.

# br_netfilter provides net.bridge.bridge-nf-call-iptables (labs 01, 04-06).
[ -d /proc/sys/net/bridge ] || modprobe br_netfilter || echo "setup: warning: br_netfilter is not available; labs that need it will be skipped" >&2

[ "$tests" = 1 ] && scripts/start-dockerd.sh

if ! { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; }; then npm ci --no-audit --no-fund; fi
