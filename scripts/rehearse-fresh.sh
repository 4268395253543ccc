#!/usr/bin/env bash
# Rehearses the README's quick start on a fresh machine of this kind: a Debian 12 system with only
# the base system (debootstrap minbase), git, and this machine's Node and npm, run as a privileged
# Docker container. It clones this repository's committed HEAD into it and runs, as root, the README's
# commands: scripts/labs.sh, then scripts/test.sh (or only the first). Prints PASS/FAIL and the time of
# each, and keeps their logs.
#
# Usage: scripts/rehearse-fresh.sh [--labs-only] [--keep]
#        --labs-only  run scripts/labs.sh only
#        --keep       keep the container afterwards (inspect it with `docker exec -it <name> bash`)
# Env:   NFLAB_VM_CACHE    where the fresh root file system is cached (default /var/cache/nflab/vm)
#        NFLAB_VM_MIRROR   Debian mirror (default: the one this machine's apt uses)
#
# How the fresh machine reaches the package registries: the way this machine does. It shares this
# machine's network namespace (--network host: Docker here runs without a bridge, and a NAT of our own
# would change the root namespace's firewall), and gets this machine's apt sources and apt settings,
# name resolution (/etc/hosts, resolv.conf), extra CA certificates and npm settings; nothing else.
# What it runs cannot change this machine's firewall, routes or sysctls any more than the README's
# commands on this machine can: the labs stay in namespaces, dockerd starts with --iptables=false
# --bridge=none. The root namespace is compared before and after, and a difference fails the rehearsal.
# Logs: $NFLAB_VM_CACHE/rehearsal/<time>/{labs,test}.log
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
LABS_ONLY='' KEEP=''
while (($#)); do
  case $1 in
    --labs-only) LABS_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "rehearse-fresh.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { printf 'rehearse: %s\n' "$*" >&2; }
[[ $(id -u) == 0 ]] || { log 'must run as root (debootstrap, docker)'; exit 3; }
command -v debootstrap >/dev/null || { log 'debootstrap is missing (apt-get install debootstrap)'; exit 3; }
timeout 10 docker info >/dev/null 2>&1 || { log 'no Docker engine answers (scripts/start-dockerd.sh)'; exit 3; }
NODE_BIN=$(readlink -f "$(command -v node)")
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
# This machine's Debian mirror, from its apt sources (deb822 or one-line).
MIRROR=${NFLAB_VM_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
  sed -n -e 's/^URIs: *\([^ ]*\/debian\)\/\{0,1\}$/\1/p' -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\)\/\{0,1\} .*/\2/p' | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# The fresh base system, cached per recipe (this file, the mirror, Node's version): the container,
# not the base image, is what each rehearsal starts new.
KEY=$({ cat "$0"; echo "$MIRROR"; "$NODE_BIN" --version; } | sha256sum | cut -c1-12)
IMAGE=nflab/fresh-bookworm:$KEY
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  ROOT=$(mktemp -d "$CACHE/fresh-rootfs.XXXXXX")
  trap 'rm -rf "$ROOT"' EXIT
  log "debootstrap bookworm (minbase, git) from $MIRROR"
  debootstrap --variant=minbase --include=ca-certificates,git bookworm "$ROOT" "$MIRROR" >&2
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb
  install -m 755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
  mkdir -p "$ROOT/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  tar -C "$ROOT" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$ROOT"; trap - EXIT
  log "fresh image $IMAGE"
fi

snapshot() {
  { iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; nft list ruleset | sed 's/packets [0-9]* bytes [0-9]*//'
    ip route show table all; ip -6 route show table all; sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding; } 2>&1
}
OUT=$CACHE/rehearsal/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
snapshot >"$OUT/root-before.txt"

NAME=nflab-rehearsal-$$
# This machine's ways to the registries, read-only: apt sources and settings, names, CAs, npm settings.
mounts=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/apt.conf.d /etc/apt/trusted.gpg.d /etc/hosts /etc/resolv.conf /root/.npmrc /usr/local/share/ca-certificates; do
  [[ -e $f ]] && mounts+=(-v "$f:/host$f:ro")
done
docker run -d --name "$NAME" --privileged --network host \
  -v /lib/modules:/lib/modules:ro "${mounts[@]}" "$IMAGE" sleep infinity >/dev/null
cleanup() { [[ -n $KEEP ]] && { log "kept container $NAME"; return; }; docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# Copied, not mounted: the rehearsal's apt and update-ca-certificates may write them.
docker exec "$NAME" bash -euc '
  cd /host
  for f in etc/apt/sources.list etc/apt/sources.list.d etc/apt/apt.conf.d etc/apt/trusted.gpg.d usr/local/share/ca-certificates root/.npmrc; do
    if [ -d "$f" ]; then mkdir -p "/$f"; cp -a "$f/." "/$f/"; elif [ -e "$f" ]; then cp -a "$f" "/$f"; fi
  done
  # Sources this fresh machine cannot authenticate (a third-party key it does not have) are left out.
  for s in /etc/apt/sources.list.d/*; do
    grep -q "deb.debian.org\|/debian" "$s" || rm -f "$s"
  done
  cat /host/etc/resolv.conf >/etc/resolv.conf
  cat /host/etc/hosts >/etc/hosts
  update-ca-certificates >/dev/null 2>&1 || true'
# The committed HEAD, cloned as a user would clone it (no work-tree changes, no node_modules).
git -C "$REPO" bundle create "$OUT/head.bundle" HEAD >/dev/null 2>&1
docker cp "$OUT/head.bundle" "$NAME:/root/head.bundle" >/dev/null
docker exec "$NAME" git clone -q /root/head.bundle /root/nflab
log "cloned $(git -C "$REPO" rev-parse --short HEAD) into $NAME:/root/nflab"

status=0
step() {
  local label=$1 script=$2 start rc
  start=$(date +%s)
  set +e
  docker exec -w /root/nflab -e CI=true "$NAME" bash -c "$script </dev/null" >"$OUT/$label.log" 2>&1
  rc=$?
  set -e
  local secs=$(($(date +%s) - start))
  if ((rc == 0)); then echo "PASS $label ($script) in ${secs}s"; else echo "FAIL $label ($script) exit $rc in ${secs}s; log $OUT/$label.log"; tail -25 "$OUT/$label.log"; status=1; fi
}
step labs scripts/labs.sh
[[ -n $LABS_ONLY ]] || step test scripts/test.sh

snapshot >"$OUT/root-after.txt"
if ! diff -u "$OUT/root-before.txt" "$OUT/root-after.txt" >"$OUT/root.diff"; then
  echo "FAIL the root namespace changed: $OUT/root.diff"; cat "$OUT/root.diff"; status=1
else
  echo "root namespace unchanged (iptables, nftables, routes, forwarding)"
fi
exit $status
