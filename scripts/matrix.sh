#!/usr/bin/env bash
# The kernel × iptables-backend matrix: every numbered lab on Debian 11 (kernel 5.10), 12 (6.1) and
# 13 (6.12), each in its own VM (scripts/vm/boot.sh --suite), and on this machine's kernel, with
# iptables-nft and with iptables-legacy. Each cell is recorded (nflab run --record); then
# scripts/matrix-report.ts compares the records check by check (the same comparison as
# nflab run --compare) and writes docs/kernels.md.
#
# Usage: sudo scripts/matrix.sh [--suites "bullseye bookworm trixie"] [--backends "nft legacy"]
#                               [--labs "01 02 ..."] [--jobs N] [--no-host] [--out DIR] [--doc FILE]
#        --jobs N   machines at once (default: the number of cores)
#        --cpus N   virtual CPUs of each VM (default 2: TCG runs one host thread per vCPU)
#        --out DIR  where the records and logs go (default /var/tmp/nflab-matrix/<date>)
#        --doc FILE the report to write (default docs/kernels.md; '-' for none)
# Env:   NFLAB_VM_CACHE  image cache (as build-image.sh; default /var/cache/nflab/vm)
# Exit: 0 when the matrix ran (whatever the verdicts: the report says them), 1 when a cell could
# not run at all (a VM that did not boot), 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SUITES='bullseye bookworm trixie' BACKENDS='nft legacy' LABS='' JOBS=$(nproc) CPUS=2 HOST=1
OUT=/var/tmp/nflab-matrix/$(date -u +%Y%m%dT%H%M%SZ) DOC=docs/kernels.md
while (($#)); do
  case $1 in
    --suites) SUITES=$2; shift 2 ;;
    --backends) BACKENDS=$2; shift 2 ;;
    --labs) LABS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --no-host) HOST=''; shift ;;
    --out) OUT=$2; shift 2 ;;
    --doc) DOC=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "matrix.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "matrix.sh: --jobs takes a positive number" >&2; exit 2; }
for s in $SUITES; do [[ $s =~ ^(bullseye|bookworm|trixie)$ ]] || { echo "matrix.sh: unknown suite $s" >&2; exit 2; }; done
for b in $BACKENDS; do [[ $b =~ ^(nft|legacy)$ ]] || { echo "matrix.sh: unknown backend $b" >&2; exit 2; }; done
[[ $(id -u) == 0 ]] || { echo "matrix.sh: run as root (VMs, namespaces)" >&2; exit 3; }

# Every numbered lab (labs/NN-*.ts), unless told which.
if [[ -z $LABS ]]; then LABS=$(ls labs | sed -n 's/^\([0-9][0-9]\)-.*\.ts$/\1/p' | tr '\n' ' '); fi
mkdir -p "$OUT"
log() { printf 'matrix: %s\n' "$*" >&2; }
started=$(date +%s)

# Images first, one after another (each build uses every core), cached after the first time.
for s in $SUITES; do
  log "image $s"
  scripts/vm/build-image.sh --suite "$s" >"$OUT/image-$s.log" 2>&1 || { log "image $s failed: $OUT/image-$s.log"; exit 1; }
done

# One lab with one backend on one target, recorded (<machine>-<backend>-<lab>.json; the report
# merges a machine's labs). One run per lab, both backends in turn: a matrix stopped early still
# has both backends of the labs it reached. A run that exits 1 (a check not met) is still a result.
cell() {
  local name=$1 backend=$2 lab=$3; shift 3
  local t0=$(date +%s) code=0
  node bin/nflab.mjs run "$lab" --iptables "$backend" --record "$OUT/$name-$backend-$lab.json" "$@" >"$OUT/$name-$backend-$lab.log" 2>&1 || code=$?
  echo "$name $backend $lab exit=$code seconds=$(( $(date +%s) - t0 ))" >>"$OUT/cells.txt"
  log "$name $backend lab $lab: exit $code after $(( $(date +%s) - t0 ))s"
  ((code <= 1))
}
cells() {
  local name=$1 lab b ok=0; shift
  for lab in $LABS; do for b in $BACKENDS; do cell "$name" "$b" "$lab" "$@" || ok=1; done; done
  return $ok
}

# A machine: this one, or a VM booted for the suite and stopped afterwards (both backends in the
# same VM, one after the other: each run leaves nothing behind).
machine() {
  local what=$1 ok=0
  if [[ $what == host ]]; then cells host; return; fi
  local name=matrix-$what-$$ port attempt booted=''
  # A port of its own per suite: VMs booting at once would otherwise all find the same port free
  # (boot.sh looks for one) and all but one fail to bind it; another user may take it in between
  # too, so a second attempt takes another port.
  for attempt in 0 1 2; do
    port=$((2240 + attempt * 20 + $(index_of "$what")))
    if scripts/vm/boot.sh --suite "$what" --name "$name" --port "$port" --cpus "$CPUS" --memory 1536 --timeout 900 --stop-with $$ >>"$OUT/boot-$what.log" 2>&1; then booted=1; break; fi
  done
  if [[ -z $booted ]]; then
    log "VM $what did not boot: $OUT/boot-$what.log"
    echo "$what boot-failed" >>"$OUT/cells.txt"
    return 1
  fi
  local env=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}/run/$name/target.env target identity known
  target=$(sed -n 's/^target=//p' "$env"); identity=$(sed -n 's/^identity=//p' "$env"); known=$(sed -n 's/^known_hosts=//p' "$env")
  log "VM $what up ($(sed -n 's/^boot_seconds=//p' "$env") s)"
  # The image loads these at boot (modules-load.d), but under load systemd-modules-load once failed
  # (Debian 13): load them again rather than have every lab refused for want of br_netfilter.
  ssh -o BatchMode=yes -o IdentitiesOnly=yes -o "UserKnownHostsFile=$known" -i "$identity" -p "${target##*:}" "${target#ssh://}" \
    'modprobe -a br_netfilter ip_vs ip_vs_rr ip_vs_wrr dummy' >>"$OUT/boot-$what.log" 2>&1 || log "VM $what: modprobe failed (see $OUT/boot-$what.log)"
  cells "$what" --target "$target" --identity "$identity" --known-hosts "$known" || ok=1
  scripts/vm/stop.sh --name "$name" >/dev/null 2>&1 || true
  return $ok
}

index_of() { local i=0 s; for s in $SUITES; do [[ $s == "$1" ]] && { echo "$i"; return; }; i=$((i + 1)); done; echo 9; }
stop_vms() { for s in $SUITES; do scripts/vm/stop.sh --name "matrix-$s-$$" >/dev/null 2>&1 || true; done; }
trap stop_vms EXIT

# The slowest machines (VMs under software emulation) first; at most JOBS at once.
failed=0
running=0
for what in $SUITES ${HOST:+host}; do
  if ((running >= JOBS)); then wait -n || failed=1; running=$((running - 1)); fi
  machine "$what" &
  running=$((running + 1))
done
while ((running > 0)); do wait -n || failed=1; running=$((running - 1)); done

seconds=$(( $(date +%s) - started ))
echo "total seconds=$seconds jobs=$JOBS" >>"$OUT/cells.txt"
log "matrix took ${seconds}s; records in $OUT"
if [[ $DOC != - ]]; then
  node --import tsx scripts/matrix-report.ts --seconds "$seconds" --jobs "$JOBS" "$OUT"/*.json >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
  log "wrote $DOC"
fi
exit $failed
