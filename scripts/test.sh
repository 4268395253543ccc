#!/usr/bin/env bash
# Quick start 2: set up this machine and run the whole test suite (type check, then ava).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npx tsc --noEmit
npx ava "$@"
