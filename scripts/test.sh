#!/usr/bin/env bash
# Quick start 2: set up this machine and run the whole test suite (type check, then ava).
set -euo pipefail
case $0 in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac
"$BASH" scripts/setup.sh --tests
# CI also boots a Debian VM (its kernel has IPVS) and runs the IPVS lab in it: build the cached image first.
if [ "${CI:-}" = true ] || [ "${NFLAB_VM_TESTS:-}" = 1 ]; then scripts/vm/build-image.sh >/dev/null; fi
npx tsc --noEmit
# The formatter (prettier, 120 columns): npm run format rewrites, this only checks.
npx prettier --check . >/dev/null || { npx prettier --list-different .; echo 'not formatted: run npm run format' >&2; exit 1; }
npx ava "$@"
