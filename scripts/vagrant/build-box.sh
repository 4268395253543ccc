#!/usr/bin/env bash
# Builds a local Vagrant box for the libvirt provider from nflab's own VM image (scripts/vm/build-image.sh):
# for machines that cannot download debian/bookworm64 (CI, offline classrooms). The box is cached under
# $NFLAB_VM_CACHE/boxes/<key>; the key covers this file and the image it starts from.
#
# Usage: scripts/vagrant/build-box.sh     prints the .box file's path on the last line of stdout
#        then: vagrant box add --name nflab/bookworm-local <that file>; NFLAB_VAGRANT_BOX=nflab/bookworm-local vagrant up
# Env:   NFLAB_VM_CACHE   cache directory (default /var/cache/nflab/vm)
#        NFLAB_VM_MIRROR  Debian mirror for the packages added to the image (default http://deb.debian.org/debian)
#        NFLAB_BOX_SIZE   the box's disk size (default 4G)
#
# What the box adds to the image, as a Vagrant base box needs (Vagrant's "creating a base box" rules):
# a `vagrant` user with Vagrant's insecure key and password-less sudo, DHCP on eth0 (systemd-networkd:
# vagrant-libvirt finds the VM by its DHCP lease), rsync (the synced folder), dbus (hostnamectl), npm
# beside the image's Node, and the packages `scripts/setup.sh --labs` installs, so provisioning runs
# offline. The image boots without a boot loader; the box's own Vagrantfile points libvirt at the
# kernel and initrd shipped inside the box (direct kernel boot).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
MIRROR=${NFLAB_VM_MIRROR:-http://deb.debian.org/debian}
SIZE=${NFLAB_BOX_SIZE:-4G}

log() { printf 'build-box: %s\n' "$*" >&2; }
[[ $(id -u) == 0 ]] || { log 'must run as root (loop mount, chroot)'; exit 3; }
case ${1:-} in -h|--help) sed -n '2,17p' "$0"; exit 0 ;; '') ;; *) log "unknown argument $1"; exit 2 ;; esac

IMAGE=$("$REPO/scripts/vm/build-image.sh" | tail -1)
read -ra LAB_PACKAGES <<<"$("$REPO/scripts/setup.sh" --list-packages labs)"
# libnss-myhostname: the name Vagrant gives the machine (config.vm.hostname) resolves without DNS,
# or every sudo waits on a resolver that is not there.
EXTRA_PACKAGES=(rsync dbus sudo openssh-server libnss-myhostname)
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
KEY=$({ cat "$0"; basename "$IMAGE"; printf '%s\n' "$SIZE" "$MIRROR" "${LAB_PACKAGES[*]}"; cat "$NPM_DIR/package.json"; } | sha256sum | cut -c1-16)
DIR=$CACHE/boxes/$KEY
if [[ -f $DIR/nflab.box ]]; then log "cached box $KEY"; echo "$DIR/nflab.box"; exit 0; fi
mkdir -p "$CACHE/boxes"
exec 9>"$CACHE/boxes/$KEY.lock"
flock 9
if [[ -f $DIR/nflab.box ]]; then echo "$DIR/nflab.box"; exit 0; fi

start=$(date +%s)
OUT=$(mktemp -d "$CACHE/boxes/$KEY.build.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
log "box from image $(basename "$IMAGE") into $OUT"
qemu-img convert -f qcow2 -O raw "$IMAGE/disk.qcow2" "$OUT/box.raw"
truncate -s "$SIZE" "$OUT/box.raw"
e2fsck -fy "$OUT/box.raw" >&2 || (($? < 4))
resize2fs "$OUT/box.raw" >&2

# Runs in a private mount namespace: the loop mount and the chroot's /proc, /sys, /dev go with it.
configure_box() {
  set -euo pipefail
  local root=$OUT/root
  mkdir -p "$root"
  mount -o loop "$OUT/box.raw" "$root"
  mount -t proc proc "$root/proc"; mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"; mount -t devpts devpts "$root/dev/pts"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  echo "deb $MIRROR bookworm main" >"$root/etc/apt/sources.list"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  # shellcheck disable=SC2086
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS >&2
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root/usr/sbin/policy-rc.d"
  : >"$root/etc/resolv.conf"

  # The vagrant user: Vagrant's insecure key (replaced by a fresh key on the first `vagrant up`),
  # sudo without a password. Its password is '*' rather than locked ('!'): sshd refuses a locked
  # account when PAM is off, as it is in nflab's image.
  chroot "$root" useradd -m -s /bin/bash -p '*' vagrant
  install -d -m 700 "$root/home/vagrant/.ssh"
  install -m 600 "$INSECURE_KEY" "$root/home/vagrant/.ssh/authorized_keys"
  chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
  echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"; chmod 440 "$root/etc/sudoers.d/vagrant"
  rm -f "$root/root/.ssh/authorized_keys"
  echo nflab-box >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 nflab-box\n' >"$root/etc/hosts"

  # eth0 by DHCP from libvirt's network; nflab's own static uplink (vm0 on qemu user networking) is off.
  rm -f "$root/etc/systemd/system/multi-user.target.wants/nflab-uplink.service"
  mkdir -p "$root/etc/systemd/network"
  printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-eth0.network"
  ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  mkdir -p "$root/etc/systemd/system/sockets.target.wants"
  ln -sf /lib/systemd/system/systemd-networkd.socket "$root/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
  # A fresh host key per box build (Vagrant does not check it; nflab --target vagrant follows Vagrant).
  rm -f "$root"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C nflab-box-host -f "$root/etc/ssh/ssh_host_ed25519_key"
  # Docker's engine is started by scripts/start-dockerd.sh when provisioning asks for it, never at boot.
  rm -f "$root/etc/systemd/system/multi-user.target.wants/docker.service" "$root/etc/systemd/system/sockets.target.wants/docker.socket"

  # npm (npx nflab) beside the image's Node: this machine's own, as the image's Node is.
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$root/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # The box has no internet: npm (npx nflab) must not wait on the registry for what is not there.
  mkdir -p "$root/usr/local/etc"
  printf '%s\n' offline=true update-notifier=false fund=false audit=false >"$root/usr/local/etc/npmrc"

  umount "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc" "$root"
}
export -f configure_box
export OUT MIRROR NPM_DIR INSECURE_KEY
# Debian's vagrant package keeps it in its gem directory; Vagrant's own packages under /opt/vagrant.
INSECURE_KEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | tail -1 || true)
[[ -f $INSECURE_KEY ]] || { log "Vagrant's insecure public key (keys/vagrant.pub of the vagrant package) not found: install vagrant"; exit 3; }
export PKGS="${LAB_PACKAGES[*]} ${EXTRA_PACKAGES[*]}"
unshare --mount --propagation private bash -c configure_box

log 'writing box.img (qcow2)'
qemu-img convert -f raw -O qcow2 "$OUT/box.raw" "$OUT/box.img"
rm -f "$OUT/box.raw"
rmdir "$OUT/root"
cp "$IMAGE/vmlinuz" "$IMAGE/initrd.img" "$OUT/"
gib=$(( ($(qemu-img info --output=json "$OUT/box.img" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p') + (1<<30) - 1) >> 30 ))
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$gib" >"$OUT/metadata.json"
cat >"$OUT/Vagrantfile" <<'VF'
# nflab's local box: nflab's Debian 12 image, booted without a boot loader (the kernel and initrd
# travel in the box, beside this file).
Vagrant.configure("2") do |config|
  config.vm.provider "libvirt" do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
    lv.disk_bus = "virtio"
    # Headless: no display for software emulation to draw.
    lv.graphics_type = "none"
    lv.video_type = "none"
  end
end
VF
tar -C "$OUT" -cf "$OUT/nflab.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
rm -f "$OUT/box.img"
echo $(($(date +%s) - start)) >"$OUT/build-seconds"
rm -rf "$DIR"; mv "$OUT" "$DIR"; trap - EXIT
# Boxes of older recipes are only disk space now (Vagrant keeps its own copy of an added box).
for old in "$CACHE"/boxes/*/; do
  old=${old%/}
  [[ $old == "$DIR" || $old == *.build.* ]] || rm -rf "$old" "$old.lock"
done
log "built box $KEY in $(cat "$DIR/build-seconds")s"
echo "$DIR/nflab.box"
