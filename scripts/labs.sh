#!/usr/bin/env bash
# Quick start: install only what the labs need on this machine, then run every lab (in namespaces).
set -euo pipefail
case $0 in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac
"$BASH" scripts/setup.sh
node bin/nflab.mjs run --all "$@"
