#!/usr/bin/env bash
# Soak: run the whole lab suite N times in a row (default 50) and report every check whose verdict
# changed between runs (a flaky check), every lab that did not always pass, and every run that did
# not produce a report. The report goes to stdout and to docs/soak.md (the latest result).
#
#   scripts/soak.sh [N] [nflab run options, e.g. --nodes docker]
#   SOAK_DIR=/tmp/soak scripts/soak.sh 10      # keep every run's JSON there
#   SOAK_RECORD=0 scripts/soak.sh 5            # do not overwrite docs/soak.md
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-50}"
[ $# -gt 0 ] && shift
dir="${SOAK_DIR:-$(mktemp -d /tmp/nflab-soak-XXXXXX)}"
mkdir -p "$dir"
started=$(date +%s)
for i in $(seq 1 "$n"); do
  t0=$(date +%s)
  # Exit 1 (a check not met) is exactly what a soak looks for: record it, do not stop.
  code=0
  node bin/nflab.mjs run --all --json "$@" > "$dir/run-$i.json" 2> "$dir/run-$i.err" || code=$?
  echo "$code" > "$dir/run-$i.code"
  echo "soak: run $i/$n exit $code ($(( $(date +%s) - t0 )) s)" >&2
done
out=docs/soak.md
[ "${SOAK_RECORD:-1}" = 0 ] && out=/dev/null
mkdir -p docs
node --import tsx scripts/soak-report.ts "$dir" "$n" "$(( $(date +%s) - started ))" "$*" | tee "$out"
