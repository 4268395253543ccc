#!/usr/bin/env bash
# Rehearses the README's quick start on a fresh machine of this kind: a Debian 12 system with only
# the base system (debootstrap minbase), git, and this machine's Node and npm, entered as a machine of
# its own on this kernel: chroot in a new mount and PID namespace (a privileged container by hand:
# Docker's --privileged cannot start here, the machine's bounding set lacks CAP_SYS_RESOURCE). It clones this repository's committed HEAD into it and runs, as root, the README's
# commands: scripts/labs.sh, then scripts/test.sh (or only the first). Prints PASS/FAIL and the time of
# each, and keeps their logs.
#
# Usage: scripts/rehearse-fresh.sh [--labs-only] [--run COMMAND] [--keep]
#        --labs-only  run scripts/labs.sh only
#        --run CMD    run CMD (in the clone, as root) instead of the README's commands
#        --keep       keep its root file system afterwards (chroot into it to look around)
# Env:   NFLAB_VM_CACHE    where the fresh root file system is cached (default /var/cache/nflab/vm)
#        NFLAB_VM_MIRROR   Debian mirror (default: the one this machine's apt uses)
#
# How the fresh machine reaches the package registries: the way this machine does. It shares this
# machine's network namespace (a NAT of our own would change the root namespace's firewall), and gets this machine's apt sources and apt settings,
# name resolution (/etc/hosts, resolv.conf), extra CA certificates and npm settings; nothing else.
# What it runs cannot change this machine's firewall, routes or sysctls any more than the README's
# commands on this machine can: the labs stay in namespaces, dockerd starts with --iptables=false
# --bridge=none. The root namespace is compared before and after, and a difference fails the rehearsal.
# Logs: $NFLAB_VM_CACHE/rehearsal/<time>/{labs,test,run}.log
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
LABS_ONLY='' KEEP='' RUN=''
while (($#)); do
  case $1 in
    --labs-only) LABS_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    --run) RUN=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "rehearse-fresh.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { printf 'rehearse: %s\n' "$*" >&2; }
[[ $(id -u) == 0 ]] || { log 'must run as root (debootstrap, docker)'; exit 3; }
command -v debootstrap >/dev/null || { log 'debootstrap is missing (apt-get install debootstrap)'; exit 3; }
NODE_BIN=$(readlink -f "$(command -v node)")
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
# This machine's Debian mirror, from its apt sources (deb822 or one-line).
MIRROR=${NFLAB_VM_MIRROR:-$({ cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
  sed -n -e 's/^URIs: *\([^ ]*\/debian\)\/\{0,1\}$/\1/p' -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\)\/\{0,1\} .*/\2/p' | sed -n 1p)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# The fresh base system, cached per recipe (the lines that build it, the mirror, Node's version) as a
# tar file: each rehearsal unpacks a new copy of it.
KEY=$({ sed -n '/^if \[\[ ! -f \$BASE \]\]/,/^fi$/p' "$0"; echo "$MIRROR"; "$NODE_BIN" --version; } | sha256sum | cut -c1-12)
BASE=$CACHE/fresh/bookworm-$KEY.tar
if [[ ! -f $BASE ]]; then
  mkdir -p "$CACHE/fresh"
  ROOT=$(mktemp -d "$CACHE/fresh/rootfs.XXXXXX")
  trap 'rm -rf "$ROOT"' EXIT
  log "debootstrap bookworm (minbase, git) from $MIRROR"
  debootstrap --variant=minbase --include=ca-certificates,git bookworm "$ROOT" "$MIRROR" >&2
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb
  install -m 755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
  mkdir -p "$ROOT/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  tar -C "$ROOT" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
  rm -rf "$ROOT"; trap - EXIT
  log "fresh base system $BASE"
fi

snapshot() {
  # (grep finds nothing, and fails, when no table is loaded at all.)
  { iptables-save | { grep -v '^#' || true; } | sed 's/\[[0-9]*:[0-9]*\]//'; nft list ruleset | sed 's/packets [0-9]* bytes [0-9]*//'
    ip route show table all; ip -6 route show table all; sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding; } 2>&1
}
OUT=$CACHE/rehearsal/$(date -u +%Y%m%dT%H%M%SZ)
ROOT=$OUT/root
mkdir -p "$ROOT"
cleanup() {
  [[ -n $KEEP ]] && { log "kept $ROOT"; return; }
  # Never rm -rf through a mount (a /dev or /sys bound into the root file system).
  if grep -q " $ROOT[/ ]" /proc/self/mountinfo; then log "mounts remain under $ROOT: left in place"; return; fi
  rm -rf "$ROOT"
}
trap cleanup EXIT
tar -C "$ROOT" -xf "$BASE"
snapshot >"$OUT/root-before.txt"

# This machine's ways to the registries: apt sources and settings, names, CAs, npm settings. Sources
# this fresh machine cannot authenticate (third-party keys it does not have) are left out.
for f in /etc/apt/sources.list /etc/apt/apt.conf.d /etc/apt/trusted.gpg.d /etc/hosts /etc/resolv.conf /root/.npmrc /usr/local/share/ca-certificates; do
  if [[ -d $f ]]; then mkdir -p "$ROOT$f"; cp -a "$f/." "$ROOT$f/"; elif [[ -e $f ]]; then cp -a "$f" "$ROOT$f"; fi
done
for f in /etc/apt/sources.list.d/*; do
  grep -q '/debian' "$f" || continue
  cp -a "$f" "$ROOT/etc/apt/sources.list.d/"
  # debootstrap's one-line sources.list would name the same mirror twice.
  [[ -e /etc/apt/sources.list ]] || rm -f "$ROOT/etc/apt/sources.list"
done
chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
# The committed HEAD, cloned as a user would clone it (no work-tree changes, no node_modules).
git -C "$REPO" bundle create "$OUT/head.bundle" HEAD >/dev/null 2>&1
cp "$OUT/head.bundle" "$ROOT/root/head.bundle"
chroot "$ROOT" git -c advice.detachedHead=false clone -q /root/head.bundle /root/nflab
log "cloned $(git -C "$REPO" rev-parse --short HEAD) into $ROOT/root/nflab"

# And this machine's environment for TLS and proxies (Node trusts the extra CAs only through
# NODE_EXTRA_CA_CERTS; the registries' egress here presents a CA of its own).
passenv=()
while IFS='=' read -r name _; do
  [[ $name =~ ^(NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE|[Hh][Tt][Tt][Pp][Ss]?_[Pp][Rr][Oo][Xx][Yy]|[Nn][Oo]_[Pp][Rr][Oo][Xx][Yy])$ ]] && passenv+=("$name=${!name}")
done < <(env)

status=0
step() {
  local label=$1 script=$2 start rc
  start=$(date +%s)
  set +e
  # The machine: the fresh root file system with this kernel's /sys, /dev and modules, its own /proc,
  # /run and /tmp, in a PID namespace (everything it started ends with it) and a private mount namespace.
  unshare --mount --pid --fork --propagation private bash -c '
    set -e; r=$1
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"; mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/run"; mount -t tmpfs tmpfs "$r/tmp"
    mkdir -p "$r/lib/modules"; mount --bind -o ro /lib/modules "$r/lib/modules"
    exec chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin CI=true LANG=C.UTF-8 "${@:3}" \
      bash -c "cd /root/nflab && $2 </dev/null"' _ "$ROOT" "$script" "${passenv[@]}" >"$OUT/$label.log" 2>&1
  rc=$?
  set -e
  local secs=$(($(date +%s) - start))
  if ((rc == 0)); then echo "PASS $label ($script) in ${secs}s"; else echo "FAIL $label ($script) exit $rc in ${secs}s; log $OUT/$label.log"; tail -25 "$OUT/$label.log"; status=1; fi
}
if [[ -n $RUN ]]; then
  step run "$RUN"
else
  step labs scripts/labs.sh
  [[ -n $LABS_ONLY ]] || step test scripts/test.sh
fi
grep -q " $ROOT[/ ]" /proc/self/mountinfo && { log "a mount of the rehearsal outlived it"; status=1; }

snapshot >"$OUT/root-after.txt"
if ! diff -u "$OUT/root-before.txt" "$OUT/root-after.txt" >"$OUT/root.diff"; then
  echo "FAIL the root namespace changed: $OUT/root.diff"; cat "$OUT/root.diff"; status=1
else
  echo "root namespace unchanged (iptables, nftables, routes, forwarding)"
fi
exit $status
