#!/usr/bin/env bash
# Regenerates docs/handouts/: lab 02's handout in Markdown (with its SVG diagram) and in HTML, both
# with the evidence of one real run. Run as root (the run builds namespaces): sudo scripts/handout-example.sh
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp)
trap 'rm -f "$report"' EXIT
# One run for both formats, so they show the same evidence. A failing run stops here (exit 1).
node bin/nflab.mjs run 02 --json > "$report"
node bin/nflab.mjs handout 02 --from-run "$report" --format md --out docs/handouts
node bin/nflab.mjs handout 02 --from-run "$report" --format html --out docs/handouts
