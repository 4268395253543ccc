#!/usr/bin/env bash
# Builds the small Debian VM that runs the labs needing kernel features this machine lacks
# (IPVS, dummy links), and the other kernels of the matrix (scripts/matrix.sh). The image is cached
# under $NFLAB_VM_CACHE/images/<recipe hash>: the hash covers this file (the recipe) and the suite,
# so editing the package list or the guest configuration below builds a new image, and a second
# run with the same recipe is instant.
#
# Usage: scripts/vm/build-image.sh [--suite SUITE] [--rebuild]   prints the image directory on the last line of stdout
#        --suite    bullseye (Debian 11, kernel 5.10), bookworm (12, kernel 6.1; the default),
#                   trixie (13, kernel 6.12): Debian's own kernel and packages of that release
#        --rebuild  build again even if cached (newer Debian packages); stop VMs using the image first
# Env:   NFLAB_VM_CACHE   cache directory (default /var/cache/nflab/vm)
#        NFLAB_VM_SUITE   the suite when --suite is not given (default bookworm)
#        NFLAB_VM_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#        NFLAB_VM_SIZE    root filesystem size (default 2G)
# The image directory holds: disk.qcow2 (ext4 root file system, no partition table), vmlinuz,
# initrd.img, id_ed25519 (root's login key), ssh_host_ed25519_key.pub, recipe, build-seconds.
set -euo pipefail

CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
MIRROR=${NFLAB_VM_MIRROR:-http://deb.debian.org/debian}
SIZE=${NFLAB_VM_SIZE:-2G}
SUITE=${NFLAB_VM_SUITE:-bookworm}
# Everything a lab runs in the guest. Labs arrive over SSH; Node is there to run nflab inside the
# VM too (scripts/vm/boot.sh --share), and is this machine's own: Debian 12's nodejs (18) is older
# than the project needs (>= 20.19), and nodejs.org may not be reachable.
PACKAGES=(
  linux-image-amd64 systemd-sysv udev kmod
  openssh-server ipvsadm ipset iproute2 iptables nftables tcpdump conntrack socat curl
  iputils-ping procps busybox-static sudo libstdc++6
)
NODE_BIN=$(command -v node || true)
if [[ -n $NODE_BIN ]] && ! "$NODE_BIN" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  NODE_BIN=''
fi

REBUILD=''
while (($#)); do
  case $1 in
    --rebuild) REBUILD=1; shift ;;
    --suite) SUITE=${2:-}; shift 2 || { echo "build-image.sh: --suite needs a value" >&2; exit 2; } ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf 'build-image: %s\n' "$*" >&2; }

case $SUITE in
  bullseye|bookworm|trixie) ;;
  *) log "unknown suite '$SUITE' (bullseye, bookworm or trixie)"; exit 2 ;;
esac

[[ $(id -u) == 0 ]] || { log 'must run as root (debootstrap, chroot)'; exit 3; }

need_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

recipe_key() {
  { cat "$0"; printf '%s\n' "$SUITE" "$MIRROR" "$SIZE" "${NODE_BIN:+$("$NODE_BIN" --version)}"; } | sha256sum | cut -c1-16
}

# Runs inside a private mount namespace (unshare -m), so the /proc, /sys and /dev mounts made
# for the chroot disappear with it even if the build fails half-way.
build_rootfs() {
  local root=$1
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" >&2

  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"
  mount -t devpts devpts "$root/dev/pts"

  # Services must not start inside the chroot while packages are installed.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  chroot "$root" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >&2
  chroot "$root" apt-get clean
  rm -f "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/*

  # An initrd with only what mounts the root disk: Debian's default (MODULES=most) is 37 MB,
  # and unpacking it costs seconds of every boot under software emulation.
  echo MODULES=list >"$root/etc/initramfs-tools/conf.d/nflab"
  printf '%s\n' virtio_pci virtio_blk ext4 >>"$root/etc/initramfs-tools/modules"
  chroot "$root" update-initramfs -u -k all >&2

  umount "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc"

  configure_guest "$root"
}

configure_guest() {
  local root=$1
  echo nflab-vm >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 nflab-vm\n' >"$root/etc/hosts"
  echo '/dev/vda / ext4 defaults,noatime 0 1' >"$root/etc/fstab"

  # qemu user-mode networking on 192.168.76.0/24 (boot.sh): the guest is 192.168.76.15. The NIC is
  # renamed vm0 and kept off 10.0.2.0/24 so that the labs' own host eth0 and subnets never collide
  # with it when a lab runs in the VM's root namespace (nflab run --root-namespace).
  # A static address set by `ip` calls: systemd-networkd took 20 s to start under software
  # emulation. No default route: with restrict=on there is nothing to reach beyond the slirp gateway.
  cat >"$root/etc/systemd/system/nflab-uplink.service" <<'UNIT'
[Unit]
Description=nflab: the uplink vm0 on qemu user networking
# No dependency on the eth0 device unit: under software emulation on a loaded machine udev took
# longer than systemd's device timeout to announce it, the unit failed and SSH never answered.
# The NIC exists once virtio-net has probed it; the script waits for that itself, without a limit
# (boot.sh bounds the whole boot).
Before=network.target ssh.service
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
ExecStart=/bin/sh -c 'until [ -e /sys/class/net/eth0 ] || [ -e /sys/class/net/vm0 ]; do sleep 0.2; done; if [ -e /sys/class/net/eth0 ]; then ip link set eth0 name vm0; fi; ip link set vm0 up; ip addr replace 192.168.76.15/24 dev vm0'
[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/nflab-uplink.service \
    "$root/etc/systemd/system/multi-user.target.wants/nflab-uplink.service"

  ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
  # What the labs need from the kernel, loaded at boot: bridged IPv4 through iptables (labs 01,
  # 04-07), IPVS and dummy interfaces (the IPVS lab).
  printf '%s\n' br_netfilter ip_vs ip_vs_rr ip_vs_wrr dummy >"$root/etc/modules-load.d/nflab.conf"
  # Nothing waits for the network to be "online", no periodic jobs run during a lab, no virtual
  # consoles nobody sees, and no ipvsadm boot-time rule loader (labs add their own rules).
  local unit
  for unit in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service \
    getty-static.service getty@.service ipvsadm.service dpkg-db-backup.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done

  # One host key that the image publishes (boot.sh writes it into a known_hosts file), key login only.
  rm -f "$root"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C nflab-vm-host -f "$root/etc/ssh/ssh_host_ed25519_key"
  cat >"$root/etc/ssh/sshd_config.d/nflab.conf" <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
# No PAM session per command: a quarter less time per exec under emulation, and root's key login
# does not need it.
UsePAM no
SSHD

  install -d -m 700 "$root/root/.ssh"
  install -m 600 "$OUT/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
  cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$OUT/ssh_host_ed25519_key.pub"

  # Direct kernel boot: no boot loader in the image.
  cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)" "$OUT/vmlinuz"
  cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)" "$OUT/initrd.img"
}

main() {
  local key dir start
  need_tools
  key=$(recipe_key)
  dir=$CACHE/images/$key
  if [[ -f $dir/disk.qcow2 && -z $REBUILD ]]; then
    log "cached image $key"
    echo "$dir"
    return
  fi
  mkdir -p "$CACHE/images"
  # One build per recipe at a time; a second caller waits and then finds the image cached.
  exec 9>"$CACHE/images/$key.lock"
  flock 9
  if [[ -n $REBUILD ]]; then rm -rf "$dir"; fi
  if [[ -f $dir/disk.qcow2 ]]; then echo "$dir"; return; fi

  start=$(date +%s)
  OUT=$(mktemp -d "$CACHE/images/$key.build.XXXXXX")
  WORK=$(mktemp -d "$CACHE/images/$key.rootfs.XXXXXX")
  trap 'rm -rf "$OUT" "$WORK"' EXIT
  ssh-keygen -q -t ed25519 -N '' -C nflab -f "$OUT/id_ed25519"

  log "debootstrap $SUITE from $MIRROR into $WORK"
  export -f build_rootfs configure_guest log
  export SUITE MIRROR OUT
  export PACKAGES_LIST="${PACKAGES[*]}"
  unshare --mount --propagation private bash -c \
    'set -euo pipefail; read -ra PACKAGES <<<"$PACKAGES_LIST"; build_rootfs "$1"' _ "$WORK"

  if [[ -n $NODE_BIN ]]; then
    install -D -m 755 "$(readlink -f "$NODE_BIN")" "$WORK/usr/local/bin/node"
  else
    log 'no Node >= 20.19 on this machine: the image gets none (nflab can still reach the VM over SSH)'
  fi
  log "writing ext4 image ($SIZE)"
  mkfs.ext4 -q -L nflab-root -d "$WORK" "$OUT/disk.raw" "$SIZE" >&2
  qemu-img convert -f raw -O qcow2 "$OUT/disk.raw" "$OUT/disk.qcow2"
  rm -f "$OUT/disk.raw"
  printf '%s\n' "suite=$SUITE" "mirror=$MIRROR" "size=$SIZE" "packages=${PACKAGES[*]}" >"$OUT/recipe"
  echo $(($(date +%s) - start)) >"$OUT/build-seconds"

  rm -rf "$WORK"
  mv "$OUT" "$dir"
  trap - EXIT
  log "built image $key in $(cat "$dir/build-seconds")s"
  echo "$dir"
}

main "$@"
