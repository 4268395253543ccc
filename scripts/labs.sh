#!/usr/bin/env bash
# Quick start 1: set up this machine and run every lab (plain namespaces, then Docker containers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --labs
node bin/nflab.mjs run --all "$@"
