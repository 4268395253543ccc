#!/usr/bin/env bash
# Boots the nflab Debian VM (built or taken from the cache by build-image.sh) with qemu, waits
# until SSH answers, and prints how to reach it:
#   target=ssh://root@127.0.0.1:PORT  identity=<private key>  known_hosts=<file holding the VM's host key>
#
# Networking: qemu user-mode networking with restrict=on, so the guest can reach nothing outside
# (no route to this machine's networks or the internet) and the only way in is one hostfwd from
# 127.0.0.1:PORT on this machine's loopback to the guest's port 22. That listening socket is the
# only footprint in the root network namespace: no link, address, route or firewall rule changes.
# (Running qemu inside a namespace would hide even that port, but then every SSH client would need
# `ip netns exec`; plain ssh and `nflab --target` work as they are this way.)
#
# Every boot starts from the pristine image: the disk is a fresh copy-on-write overlay in the run
# directory, so nothing a lab did survives stop.sh.
#
# Usage: scripts/vm/boot.sh [--suite SUITE] [--name NAME] [--port PORT] [--memory MB] [--cpus N] [--timeout SECONDS] [--share DIR]
#        --suite SUITE  the Debian release of the image: bullseye, bookworm (default) or trixie
#                     (build-image.sh --suite; kernels 5.10, 6.1, 6.12)
#        --share DIR  DIR (e.g. this checkout) read-only at /mnt/nflab in the guest (9p), like Vagrant's
#                     /vagrant: with the image's Node, `cd /mnt/nflab && node bin/nflab.mjs ...` runs there
#        --stop-with PID  stop the VM once process PID has ended, even if it never runs stop.sh
#                     (a test runner killed on a timeout)
# Env:   NFLAB_VM_CACHE  cache directory (default /var/cache/nflab/vm)
#        NFLAB_VM_ACCEL  qemu accelerator (default tcg: software emulation; kvm where /dev/kvm works)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
ACCEL=${NFLAB_VM_ACCEL:-tcg}
SUITE=${NFLAB_VM_SUITE:-bookworm} NAME=default PORT='' MEMORY=1024 CPUS=2 TIMEOUT=600 SHARE='' STOP_WITH=''

while (($#)); do
  case $1 in
    --suite) SUITE=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --memory) MEMORY=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --share) SHARE=$2; shift 2 ;;
    --stop-with) STOP_WITH=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "boot.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || { echo "boot.sh: --name must be letters, digits, - or _" >&2; exit 2; }
[[ -z $STOP_WITH || $STOP_WITH =~ ^[0-9]+$ ]] || { echo "boot.sh: --stop-with takes a PID" >&2; exit 2; }
if [[ -n $SHARE ]]; then
  [[ -d $SHARE ]] || { echo "boot.sh: --share $SHARE is not a directory" >&2; exit 2; }
  SHARE=$(cd "$SHARE" && pwd)
  # qemu reads ',' as an option separator.
  [[ $SHARE != *,* ]] || { echo "boot.sh: --share path must not contain a comma" >&2; exit 2; }
fi

log() { printf 'boot: %s\n' "$*" >&2; }

IMAGE=$("$HERE/build-image.sh" --suite "$SUITE" | tail -1)
# Images of older recipes are only disk space now (a running VM keeps its own).
"$HERE/prune-images.sh" "$IMAGE" || log "could not prune older images (left in place)"
RUN=$CACHE/run/$NAME
mkdir -p "$RUN"

if [[ -f $RUN/qemu.pid ]] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; then
  log "VM '$NAME' is already running (pid $(cat "$RUN/qemu.pid")); stop it with scripts/vm/stop.sh --name $NAME"
  exit 3
fi
rm -f "$RUN/qemu.pid"

port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }
if [[ -z $PORT ]]; then
  for p in $(seq 2222 2299); do if port_free "$p"; then PORT=$p; break; fi; done
  [[ -n $PORT ]] || { log 'no free port in 2222-2299 on 127.0.0.1; pass --port'; exit 3; }
elif ! port_free "$PORT"; then
  log "port $PORT is already in use"; exit 3
fi

rm -f "$RUN/overlay.qcow2" "$RUN/console.log"
qemu-img create -q -f qcow2 -F qcow2 -b "$IMAGE/disk.qcow2" "$RUN/overlay.qcow2"
# The image's host key, so the first connection is verified instead of trusted blindly.
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$IMAGE/ssh_host_ed25519_key.pub")" >"$RUN/known_hosts"

share_opts=()
[[ -n $SHARE ]] && share_opts=(-virtfs "local,path=$SHARE,mount_tag=nflab,security_model=none,readonly=on")

# systemd waits 90 s for a device (the NIC the uplink unit renames) and for a unit to start by
# default; under software emulation on a loaded machine (VMs booting at once, other work) udev took
# longer, the uplink unit failed and SSH never answered. Both waits get the boot's own timeout:
# default_device_timeout_sec where systemd has it (>= 254: Debian 13), default_timeout_start_sec,
# which bounds device jobs in older ones (Debian 11 and 12).
BOOT_WAITS="systemd.default_timeout_start_sec=$TIMEOUT systemd.default_device_timeout_sec=$TIMEOUT"
accel_opts=(-accel tcg,thread=multi -cpu max)
[[ $ACCEL == kvm ]] && accel_opts=(-accel kvm -cpu host)

# A VM that fails to start or never answers is stopped again rather than left running.
trap '[[ -n ${READY:-} ]] || { log "giving up; last console lines:"; tail -20 "$RUN/console.log" >&2 2>/dev/null; "$HERE/stop.sh" --name "$NAME"; }' EXIT

start_ns=$(date +%s%N)
qemu-system-x86_64 \
  -name "nflab-$NAME" \
  -machine q35 "${accel_opts[@]}" -smp "$CPUS" -m "$MEMORY" \
  -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet $BOOT_WAITS" \
  -drive "file=$RUN/overlay.qcow2,if=virtio,format=qcow2" \
  -netdev "user,id=net0,restrict=on,net=192.168.76.0/24,hostfwd=tcp:127.0.0.1:$PORT-:22" \
  -device virtio-net-pci,netdev=net0 \
  "${share_opts[@]}" \
  -display none -monitor none -serial "file:$RUN/console.log" \
  -pidfile "$RUN/qemu.pid" -daemonize
PID=$(cat "$RUN/qemu.pid")
if [[ -n $STOP_WITH ]]; then
  # In a session of its own, with no descriptor of ours (callers wait for our output to end).
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 2; done; kill -0 "$2" 2>/dev/null && exec "$3" --name "$4"' \
    _ "$STOP_WITH" "$PID" "$HERE/stop.sh" "$NAME" </dev/null >/dev/null 2>&1 &
fi
log "qemu pid $PID ($ACCEL), ssh on 127.0.0.1:$PORT, console log $RUN/console.log"

SSH=(ssh -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=yes
  -o "UserKnownHostsFile=$RUN/known_hosts" -o IdentitiesOnly=yes -i "$IMAGE/id_ed25519"
  -p "$PORT" root@127.0.0.1)
deadline=$((SECONDS + TIMEOUT))
until "${SSH[@]}" true 2>/dev/null; do
  kill -0 "$PID" 2>/dev/null || { log 'qemu exited'; exit 1; }
  ((SECONDS < deadline)) || { log "SSH did not answer within ${TIMEOUT}s"; exit 1; }
  sleep 2
done
if [[ -n $SHARE ]] && ! "${SSH[@]}" 'mkdir -p /mnt/nflab && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 nflab /mnt/nflab'; then
  log "could not mount the shared directory $SHARE in the guest"
  exit 1
fi
READY=1
ms=$((($(date +%s%N) - start_ns) / 1000000))
secs=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))

{
  echo "target=ssh://root@127.0.0.1:$PORT"
  echo "identity=$IMAGE/id_ed25519"
  echo "known_hosts=$RUN/known_hosts"
  echo "pid=$PID"
  [[ -z $SHARE ]] || echo "share=/mnt/nflab"
} >"$RUN/target.env"
echo "boot_seconds=${secs}" >>"$RUN/target.env"
cat "$RUN/target.env"
log "ready after ${secs}s: ssh -i $IMAGE/id_ed25519 -o UserKnownHostsFile=$RUN/known_hosts -p $PORT root@127.0.0.1"
