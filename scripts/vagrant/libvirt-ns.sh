#!/usr/bin/env bash
# A libvirtd of nflab's own, inside a network namespace and a mount namespace that this script creates
# and removes, so that libvirt's networks (bridges, dnsmasq, iptables NAT rules, ip_forward) exist only
# there and this machine's root namespace is never touched. Vagrant runs inside it too (`exec`): it must
# reach the VMs' management addresses, which live on bridges in that namespace.
#
# Usage: scripts/vagrant/libvirt-ns.sh up NAME             start the namespace and its libvirtd
#        scripts/vagrant/libvirt-ns.sh exec NAME -- CMD... run CMD inside (vagrant, virsh, nflab)
#        scripts/vagrant/libvirt-ns.sh down NAME           destroy its domains, stop its processes, remove it all
# Env:   NFLAB_VM_CACHE  where its state and storage pool live (default /var/cache/nflab/vm): libvirt/NAME
#
# Inside, /etc/libvirt, /var/lib/libvirt, /run/libvirt, /var/log/libvirt and /var/cache/libvirt are this
# instance's own directories, so its domains, volumes and networks are nobody else's, and `down` leaves
# nothing: the network namespace (with its links and firewall) is deleted, every process in it is ended
# by PID, the state directory removed. qemu runs as root without a security driver or cgroups (a
# throwaway VM on a machine without AppArmor or a systemd to delegate cgroups).
set -euo pipefail
CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
log() { printf 'libvirt-ns: %s\n' "$*" >&2; }
usage() { sed -n '6,9p' "$0" >&2; exit 2; }

(($# >= 2)) || usage
CMD=$1 NAME=$2; shift 2
[[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,19}$ ]] || { log "NAME must be 1-20 lower-case letters, digits or -"; exit 2; }
[[ $(id -u) == 0 ]] || { log 'must run as root (network namespaces, mounts)'; exit 3; }
NS=nflab-lv-$NAME
DIR=$CACHE/libvirt/$NAME
MOUNTS=(/etc/libvirt /var/lib/libvirt /run/libvirt /var/log/libvirt /var/cache/libvirt)

# setns() into a mount namespace resets the working directory: keep the caller's.
in_ns() { nsenter --net="/run/netns/$NS" --mount="$DIR/mntns" --wd="$PWD" -- "$@"; }

write_config() {
  local etc=$DIR/state/etc/libvirt
  mkdir -p "$etc/qemu/networks" "$etc/storage" "$DIR/pool"
  for d in "${MOUNTS[@]}"; do mkdir -p "$DIR/state$d"; done
  cat >"$etc/libvirtd.conf" <<'CONF'
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
  cat >"$etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
CONF
  : >"$etc/network.conf"
}

up() {
  [[ ! -e /run/netns/$NS ]] || { log "namespace $NS exists already (scripts/vagrant/libvirt-ns.sh down $NAME)"; exit 3; }
  command -v libvirtd >/dev/null || { log 'libvirtd is missing: run scripts/setup.sh (package libvirt-daemon)'; exit 3; }
  mkdir -p "$DIR"
  write_config
  # Mount points that do not exist yet are created, and removed again by `down`.
  : >"$DIR/created-mountpoints"
  for d in "${MOUNTS[@]}"; do [[ -d $d ]] || { mkdir -p "$d"; echo "$d" >>"$DIR/created-mountpoints"; }; done
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  # A namespace file can be bind-mounted only onto a private mount.
  mount --bind "$DIR" "$DIR"
  mount --make-private "$DIR"
  : >"$DIR/mntns"
  # The new mount namespace sees this network namespace's /sys (libvirt reads bridges from /sys/class/net).
  unshare --mount="$DIR/mntns" --propagation private \
    nsenter --net="/run/netns/$NS" -- bash -c '
      set -e
      mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
      for d in "${@:2}"; do mount --bind "$1/state$d" "$d"; done' _ "$DIR" "${MOUNTS[@]}"
  in_ns libvirtd --daemon --pid-file /run/libvirt/nflab-libvirtd.pid
  local i
  for ((i = 0; i < 120; i++)); do
    in_ns virsh -q -c qemu:///system version >/dev/null 2>&1 && break
    sleep 1
  done
  in_ns virsh -q -c qemu:///system version >/dev/null || { log "libvirtd did not answer; its log: $DIR/state/var/log/libvirt/libvirtd.log"; down; exit 1; }
  in_ns virsh -q -c qemu:///system pool-define-as default dir --target "$DIR/pool" >/dev/null
  in_ns virsh -q -c qemu:///system pool-start default >/dev/null
  log "libvirtd pid $(cat "$DIR/state/run/libvirt/nflab-libvirtd.pid") in network namespace $NS"
}

# Ends a process by PID: TERM, then KILL after 10 s.
end_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  if [[ -e /run/netns/$NS && -s $DIR/mntns ]] && in_ns virsh -q -c qemu:///system version >/dev/null 2>&1; then
    local dom
    for dom in $(in_ns virsh -q -c qemu:///system list --all --name); do
      in_ns virsh -q -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
    done
  fi
  [[ -f $DIR/state/run/libvirt/nflab-libvirtd.pid ]] && end_pid "$(cat "$DIR/state/run/libvirt/nflab-libvirtd.pid")"
  # Whatever still runs in the namespace was started in it by us (qemu, dnsmasq, vagrant's ssh).
  if [[ -e /run/netns/$NS ]]; then
    local pid
    for pid in $(ip netns pids "$NS"); do end_pid "$pid"; done
  fi
  mountpoint -q "$DIR/mntns" 2>/dev/null && umount "$DIR/mntns"
  mountpoint -q "$DIR" 2>/dev/null && umount "$DIR"
  [[ -e /run/netns/$NS ]] && ip netns del "$NS"
  if [[ -f $DIR/created-mountpoints ]]; then
    local d
    while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$DIR/created-mountpoints"
  fi
  rm -rf "$DIR"
}

case $CMD in
  up) up ;;
  down) down ;;
  exec)
    [[ ${1:-} == -- ]] && shift
    (($#)) || usage
    [[ -e /run/netns/$NS ]] || { log "namespace $NS is not up (scripts/vagrant/libvirt-ns.sh up $NAME)"; exit 3; }
    in_ns env LIBVIRT_DEFAULT_URI=qemu:///system "$@" ;;
  *) usage ;;
esac
