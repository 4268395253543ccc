#!/usr/bin/env bash
# The scale benchmark: nflab against hand-written bash (one `ip` per step, and `ip -batch`) and
# Mininet on the same work, the lab suite per lab in both node modes, peak memory, Docker at scale.
# Run as root; takes 15-30 minutes with the defaults. Options: see scripts/bench/run.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
# One command on a fresh machine: the project's setup, then Mininet (the all-pairs baseline).
scripts/setup.sh --tests
missing=()
for p in mininet bridge-utils net-tools; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec node --import tsx scripts/bench/run.ts "$@"
