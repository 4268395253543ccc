#!/usr/bin/env bash
# Removes cached VM images of older recipes (about 650 MB each): image directories under
# $NFLAB_VM_CACHE/images of the same Debian suite built before the one named (images of other
# suites are the kernel matrix's, scripts/matrix.sh), except those a running VM still uses (its qemu
# command line names the image) and those a build holds locked. Newer ones stay: another checkout
# on this machine may use a newer recipe. boot.sh calls it after choosing its image.
#
# Usage: scripts/vm/prune-images.sh IMAGE_DIR_TO_KEEP
set -euo pipefail

CACHE=${NFLAB_VM_CACHE:-/var/cache/nflab/vm}
KEEP=${1:?usage: prune-images.sh IMAGE_DIR_TO_KEEP}
log() { printf 'prune-images: %s\n' "$*" >&2; }
# An image's suite from its recipe file (images built before --suite existed were all bookworm).
suite_of() { sed -n 's/^suite=//p' "$1/recipe" 2>/dev/null | grep . || echo bookworm; }

for dir in "$CACHE"/images/*/; do
  dir=${dir%/}
  key=${dir##*/}
  # Skip the image in use and the work directories of a build in progress.
  [[ $dir == "${KEEP%/}" || $key == *.* ]] && continue
  [[ $dir/disk.qcow2 -ot ${KEEP%/}/disk.qcow2 ]] || continue
  [[ $(suite_of "$dir") == $(suite_of "$KEEP") ]] || continue
  if grep -qasF "$dir/" /proc/[0-9]*/cmdline 2>/dev/null; then
    log "keeping $key: a running VM uses it"
    continue
  fi
  # The build lock: a build or a --rebuild of that recipe in progress keeps it.
  if (exec 8>"$CACHE/images/$key.lock"; flock -n 8 && rm -rf "$dir"); then
    rm -f "$CACHE/images/$key.lock"
    log "removed $key (an older recipe)"
  fi
done
