#!/usr/bin/env bash
# Stops a VM started by boot.sh: kills its qemu by the PID in the PID file (after checking that the
# PID is still that qemu) and removes the run directory with its disk overlay.
# Usage: scripts/vm/stop.sh [--name NAME]      Env: NFLAB_VM_CACHE (default /var/cache/nflab/vm)
set -euo pipefail

CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
NAME=default
while (($#)); do
  case $1 in
    --name) NAME=$2; shift 2 ;;
    *) echo "stop.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || { echo "stop.sh: bad --name" >&2; exit 2; }
RUN=$CACHE/run/$NAME

if [[ -f $RUN/qemu.pid ]]; then
  pid=$(cat "$RUN/qemu.pid")
  # A stale PID file may name an unrelated process by now: only kill our qemu.
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-name nflab-$NAME "; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stop: stopped VM '$NAME' (qemu pid $pid)" >&2
  else
    echo "stop: VM '$NAME' is not running" >&2
  fi
else
  echo "stop: VM '$NAME' is not running" >&2
fi
rm -rf "$RUN"
