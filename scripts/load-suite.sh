#!/usr/bin/env bash
# The lab suite next to a CPU load: every lab once on the machine as it is (the baseline), then
# again beside busy loops of 2.5x the cores (LOAD_FACTOR), and every check whose verdict differs
# between the two runs is reported (goal: none). Prints the load reached (1-minute load average,
# sampled every 5 s during the loaded run) and writes docs/load-suite.md.
#
#   scripts/load-suite.sh [nflab run options, e.g. --nodes docker]
#   LOAD_FACTOR=3 LOAD_LABS="01 06 12" scripts/load-suite.sh
#   LOAD_RECORD=0 scripts/load-suite.sh          # do not overwrite docs/load-suite.md
set -euo pipefail
cd "$(dirname "$0")/.."
cores=$(nproc)
factor="${LOAD_FACTOR:-2.5}"
loops=$(awk -v c="$cores" -v f="$factor" 'BEGIN { n = int(c * f + 0.5); print (n < 1 ? 1 : n) }')
labs="${LOAD_LABS:---all}"
dir="$(mktemp -d /tmp/nflab-load-XXXXXX)"
pids=()
stop_load() {
  # Only the processes this script started, by PID.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pids=()
}
trap stop_load EXIT

run_suite() { # $1 = run number
  local code=0 t0
  t0=$(date +%s)
  # shellcheck disable=SC2086 # LOAD_LABS is a list of lab ids (or --all)
  node bin/nflab.mjs run $labs --json "${@:2}" > "$dir/run-$1.json" 2> "$dir/run-$1.err" || code=$?
  echo "$code" > "$dir/run-$1.code"
  echo $(( $(date +%s) - t0 )) > "$dir/run-$1.seconds"
  echo "load-suite: run $1 exit $code ($(cat "$dir/run-$1.seconds") s)" >&2
}

started=$(date +%s)
echo "load-suite: baseline run (load now: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
run_suite 1 "$@"

echo "load-suite: starting $loops busy loops ($factor x $cores cores)" >&2
for _ in $(seq 1 "$loops"); do
  sh -c 'while :; do :; done' &
  pids+=("$!")
done
( while :; do cut -d' ' -f1 /proc/loadavg >> "$dir/load.samples"; sleep 5; done ) &
pids+=("$!")
# Let the 1-minute average climb before the labs start.
sleep "${LOAD_WARMUP:-30}"
run_suite 2 "$@"
stop_load

peak=$(sort -g "$dir/load.samples" | tail -1)
mean=$(awk '{ s += $1; n++ } END { if (n) printf "%.1f", s / n }' "$dir/load.samples")
out=docs/load-suite.md
[ "${LOAD_RECORD:-1}" = 0 ] && out=/dev/null
{
  echo "# Lab suite under CPU load"
  echo
  echo "The latest \`scripts/load-suite.sh\` run ($(date -u +%Y-%m-%d), kernel $(uname -r), $cores cores): the suite (\`nflab run $labs $*\`) once as the machine was (baseline, $(cat "$dir/run-1.seconds") s), then beside $loops busy loops ($factor × the cores, $(cat "$dir/run-2.seconds") s)."
  echo "Load reached during the loaded run (1-minute load average, every 5 s): peak $peak, mean $mean, i.e. $(awk -v p="$peak" -v c="$cores" 'BEGIN { printf "%.1f", p / c }') × the cores at the peak."
  echo "Below, run 1 is the baseline and run 2 the loaded run: a check whose verdict changed between them flipped under load."
  echo
  node --import tsx scripts/soak-report.ts "$dir" 2 "$(( $(date +%s) - started ))" "$labs $*" | sed '1,4d' || true
} | tee "$out"
echo "load-suite: runs kept in $dir" >&2
