# ---- nflab's shell helpers: build, observe, check, tear down ----------------------------------
# (the same for every exported lab; the lab itself follows below them)
# shellcheck disable=SC2317,SC2016
# SC2317: every exported lab carries all the helpers, and a lab calls only some of them.
# SC2016: single quotes keep awk programs and the lab's own text (its `commands`) literal, on purpose.
set -u
export LC_ALL=C

PREFIX="${NFLAB_PREFIX:-nfx-$(printf '%04x%04x' "$RANDOM" "$RANDOM")}"
if ! [[ "$PREFIX" =~ ^[A-Za-z0-9_.-]{1,40}$ ]]; then
  echo "NFLAB_PREFIX may hold only letters, digits, '_', '.', '-' (at most 40)" >&2
  exit 2
fi
IMAGE="${NFLAB_IMAGE:-nflab/lab}"
# The first end of each veth pair is created under a temporary name unique to this run (kernels
# before ~6.6 check that name in the root namespace), then renamed inside its node.
VTMP="nv$(printf '%04x%02x' "$RANDOM" $((RANDOM % 256)))"
declare -A NS=() CT=() PID=() CAP=()
CREATED_NS=()
CREATED_CT=()
OBSERVERS=()
PASSED=0
FAILED=0
SKIPPED=0
WORK=""

# Teardown always runs: on normal exit, on an error, on Ctrl-C (INT) and on TERM.
nflab_teardown() {
  local status=$? pid ns ct pids
  trap - EXIT INT TERM
  for pid in "${OBSERVERS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for ns in "${CREATED_NS[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086 # one word per pid
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  for ct in "${CREATED_CT[@]}"; do docker rm -f "$ct" >/dev/null 2>&1; done
  for pid in "${OBSERVERS[@]}"; do wait "$pid" 2>/dev/null; done
  [ -n "$WORK" ] && rm -rf "$WORK"
  exit "$status"
}
trap nflab_teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "error: $*" >&2; exit 1; }
show() { printf '$ %s\n' "$1"; }
indent() { sed 's/^/    /'; }

nflab_preflight() {
  local missing=() tool
  if [ "$(id -u)" != 0 ]; then
    echo "this lab creates network namespaces and iptables rules: run it as root (sudo bash $0)" >&2
    exit 3
  fi
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing tools: ${missing[*]}" >&2
    echo "  fix (Debian/Ubuntu): apt-get install -y iproute2 iptables tcpdump conntrack iputils-ping socat procps util-linux gawk" >&2
    exit 3
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/nflab-export.XXXXXX") || exit 3
}

# Run a command inside a node: a namespace, or a Docker container.
in_node() {
  local node=$1; shift
  if [ -n "${CT[$node]:-}" ]; then docker exec -i "${CT[$node]}" "$@"; else ip netns exec "${NS[$node]}" "$@"; fi
}

# A node's namespace name: $PREFIX-<node>, or the node's own name with NFLAB_NODE_NAMES=plain (a
# machine of its own, such as a scenario platform's, where typed commands use the lab's names).
ns_name() { if [ "${NFLAB_NODE_NAMES:-}" = plain ]; then printf '%s' "$1"; else printf '%s' "$PREFIX-$1"; fi; }

make_ns() {
  NS[$1]=$(ns_name "$1")
  CREATED_NS+=("${NS[$1]}")
  ip netns add "${NS[$1]}" || die "could not create namespace ${NS[$1]} for node $1"
}

make_container() {
  local node=$1 sysctls=() key
  CT[$node]="$PREFIX-$node"
  CREATED_CT+=("${CT[$node]}")
  # Docker changes these in a fresh namespace; set the kernel's defaults so both modes behave alike.
  for key in net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 'net.ipv4.ping_group_range=1 0' net.ipv4.ip_unprivileged_port_start=1024; do
    [ -e "/proc/sys/$(echo "${key%%=*}" | tr . /)" ] && sysctls+=(--sysctl "$key")
  done
  docker run -d --network none --cap-add NET_ADMIN --cap-add NET_RAW --name "${CT[$node]}" --hostname "$node" \
    --label "nflab.export=$PREFIX" --log-driver none "${sysctls[@]}" "$IMAGE" /bin/sleep infinity >/dev/null \
    || die "could not start a container for node $node from image $IMAGE (build it with: nflab image build)"
  PID[$node]=$(docker inspect -f '{{.State.Pid}}' "${CT[$node]}") || die "container ${CT[$node]} is not running"
  # Docker mounts /proc/sys read-only: make only /proc/sys/net writable, as nflab does.
  if ! { nsenter -t "${PID[$node]}" -m -p -- mount -o bind /proc/sys/net /proc/sys/net \
    && nsenter -t "${PID[$node]}" -m -p -- mount -o remount,bind,rw /proc/sys/net; }; then
    die "could not make /proc/sys/net writable in ${CT[$node]}"
  fi
}

# A node of a lab built by an earlier script (a scenario's background script): used, never removed.
attach_ns() {
  NS[$1]=$(ns_name "$1")
  ip netns pids "${NS[$1]}" >/dev/null 2>&1 || die "node $1 (namespace ${NS[$1]}) is not there: build the lab first"
}

# Keep what was built when the script ends (the scenario's lab lives on); only $WORK goes.
nflab_keep() { CREATED_NS=(); CREATED_CT=(); }

# Wait until each veth end is UP and each bridge port forwards (iface:1 for a bridge port).
wait_links() {
  local node=$1 end iface ready; shift
  for _ in $(seq 1 1000); do
    ready=1
    for end in "$@"; do
      iface=${end%:*}
      in_node "$node" ip -o link show dev "$iface" 2>/dev/null | grep -q ' state UP ' || { ready=0; break; }
      if [ "${end##*:}" = 1 ]; then
        in_node "$node" bridge -o link show dev "$iface" 2>/dev/null | grep -q ' state forwarding ' || { ready=0; break; }
      fi
    done
    [ "$ready" = 1 ] && return 0
    sleep 0.01
  done
  die "the links of node $node did not come up within 10 s"
}

# Wait until a responder listens on a TCP port (state 0A in /proc/net/tcp).
wait_listen() {
  local node=$1 hex
  hex=$(printf ':%04X ' "$2")
  for _ in $(seq 1 500); do
    in_node "$node" cat /proc/net/tcp | grep "$hex" | grep -q ' 0A ' && return 0
    sleep 0.01
  done
  die "the responder on $node:$2 did not start listening"
}

# A step's command finished: show its output; a status other than expected is a failed check.
cmd_done() {
  local status=$1 expect_failure=$2 shown=$3
  [ -s "$WORK/cmd.out" ] && indent < "$WORK/cmd.out"
  if [ "$expect_failure" = 1 ] && [ "$status" = 0 ]; then
    verdict 0 "command is refused: $shown" "exit status non-zero" "exit status 0"
  elif [ "$expect_failure" = 0 ] && [ "$status" != 0 ]; then
    verdict 0 "command succeeds: $shown" "exit status 0" "exit status $status"
  fi
}

# A step's TCP connections: destination|client address:port as the responder saw it, one per connection (check_conntrack).
step() { printf '\n== Step %s: %s\n' "$1" "$2"; : > "$WORK/clients"; }

verdict() {
  if [ "$1" = 1 ]; then
    PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$2"
  else
    FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$2"; printf '        expected: %s\n' "$3"
  fi
  printf '        observed: %s\n' "$4"
}

skip_check() { SKIPPED=$((SKIPPED + 1)); printf 'SKIP  %s\n        (%s)\n' "$1" "$2"; }

# count_ok N MIN MAX: MIN and MAX may be empty (no bound).
count_ok() { { [ -z "$2" ] || [ "$1" -ge "$2" ]; } && { [ -z "$3" ] || [ "$1" -le "$3" ]; }; }
count_words() { if [ -z "$1" ] && [ -z "$2" ]; then echo "any"; elif [ "$1" = "$2" ]; then echo "$1"; elif [ -z "$2" ]; then echo "at least $1"; elif [ -z "$1" ]; then echo "at most $2"; else echo "$1..$2"; fi; }

# ---- observations -------------------------------------------------------------------------------

# Every reading is taken before the step's traffic too, as nflab does: a check judges what its own
# traffic changed (counter deltas, new conntrack entries, xt_recent entries written), never what
# earlier traffic left.
# save_counters NODE before|after [bridge]: iptables-save -c, or ebtables-save -c to NODE.bridge.*.
save_counters() { if [ "${3:-}" = bridge ]; then in_node "$1" ebtables-save -c > "$WORK/$1.bridge.$2" 2>&1; else in_node "$1" iptables-save -c > "$WORK/$1.$2" 2>&1; fi; }
# read_conntrack NODE [before]: entries with their ids, so that check_conntrack counts only new ones.
read_conntrack() { in_node "$1" conntrack -L -o id > "$WORK/$1.conntrack${2:+.$2}" 2>/dev/null; }
# read_recent NODE LIST [before]
read_recent() { in_node "$1" cat "/proc/net/xt_recent/$2" > "$WORK/$1.recent.$2${3:+.$3}" 2>&1; echo $? > "$WORK/$1.recent.$2${3:+.$3}.rc"; }

cap_start() {
  local id=$1 node=$2 iface=$3
  # Emptied here, before the background child opens them: a step's capture reuses an earlier
  # step's id, and under load this shell could read the earlier tcpdump's "listening on" before the
  # child had truncated the file, and send its traffic before this tcpdump listened ("0 captured").
  : > "$WORK/$id.out"
  : > "$WORK/$id.err"
  # Started directly (not through a function, which would run in a subshell) so that $! is the
  # process that becomes tcpdump: `ip netns exec` and `nsenter` exec it.
  if [ -n "${CT[$node]:-}" ]; then
    nsenter -t "${PID[$node]}" -n tcpdump -nn -l -U --immediate-mode -i "$iface" > "$WORK/$id.out" 2> "$WORK/$id.err" < /dev/null &
  else
    ip netns exec "${NS[$node]}" tcpdump -nn -l -U --immediate-mode -i "$iface" > "$WORK/$id.out" 2> "$WORK/$id.err" < /dev/null &
  fi
  CAP[$id]=$!
  OBSERVERS+=("$!")
  # tcpdump says "listening on" once its socket is bound. Traffic sent before that is not seen, and
  # a SIGUSR1 (cap_stop) before tcpdump has set its handler kills it: wait as long as it takes on a
  # loaded machine, and a capture that never listened is a capture error, never "0 captured".
  local deadline=$((SECONDS + 120))
  until grep -q 'listening on' "$WORK/$id.err"; do
    if ! kill -0 "${CAP[$id]}" 2>/dev/null; then
      echo "nflab: cannot capture on $node:$iface: tcpdump ended before it was listening" >> "$WORK/$id.err"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "nflab: cannot capture on $node:$iface: tcpdump was not listening after 120 s" >> "$WORK/$id.err"
      return 0
    fi
    sleep 0.01
  done
}

# Stop tcpdump once it has printed every packet the kernel handed it (asked with SIGUSR1).
cap_stop() {
  local id=$1 iface=$2 pid=${CAP[$1]} stats captured received printed
  for _ in $(seq 1 100); do
    kill -USR1 "$pid" 2>/dev/null || break
    sleep 0.03
    stats=$(grep -E '[0-9]+ packets? captured, [0-9]+ packets? received by filter' "$WORK/$id.err" | tail -n 1)
    [ -n "$stats" ] || continue
    captured=$(echo "$stats" | sed -E 's/^[^0-9]*([0-9]+) packets? captured.*/\1/')
    received=$(echo "$stats" | sed -E 's/.* ([0-9]+) packets? received by filter.*/\1/')
    printed=$(grep -c . "$WORK/$id.out")
    # On lo the kernel counts each packet twice (out and in); tcpdump prints it once.
    [ "$iface" = lo ] && received=$(( (received + 1) / 2 ))
    [ "$captured" -ge "$received" ] && [ "$printed" -ge "$captured" ] && break
  done
  kill -INT "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# Packets of a capture that match (proto src dst sport dport icmp flags; empty = any), one per line.
NFLAB_AWK_PACKETS='
function icmpwords(s,   n, w, i, out) {
  i = index(s, ", "); if (i > 0) s = substr(s, 1, i - 1)
  n = split(s, w, " "); out = ""
  for (i = 1; i <= n; i++) {
    if (w[i] == "-" || w[i] == "" || w[i] ~ /^[0-9.]+$/ || w[i] ~ /^[0-9a-fA-F]*:[0-9a-fA-F:.]*$/) continue
    out = out (out == "" ? "" : "-") w[i]
  }
  return out
}
function endpoint(t, k,   n, p) {
  n = split(t, p, ".")
  if (v6 == 0 && n == 5) { A[k] = p[1] "." p[2] "." p[3] "." p[4]; P[k] = p[5] }
  else if (v6 == 1 && t ~ /\.[0-9]+$/) { A[k] = t; sub(/\.[0-9]+$/, "", A[k]); P[k] = substr(t, length(A[k]) + 2) }
  else { A[k] = t; P[k] = "" }
}
{
  rest = $0
  sub(/^([0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] )?[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+ /, "", rest)
  pr = "other"; s = ""; d = ""; sp = ""; dp = ""; ic = ""; fl = ""; v6 = 0; body = ""
  if (substr(rest, 1, 3) == "IP ") body = substr(rest, 4)
  else if (substr(rest, 1, 4) == "IP6 ") { body = substr(rest, 5); v6 = 1 }
  if (body != "") {
    gt = index(body, " > "); colon = index(body, ": ")
    if (gt > 0 && colon > gt) {
      endpoint(substr(body, 1, gt - 1), 1); endpoint(substr(body, gt + 3, colon - gt - 3), 2)
      s = A[1]; d = A[2]; payload = substr(body, colon + 2)
      if (v6 == 0 && substr(payload, 1, 5) == "ICMP ") { pr = "icmp"; ic = icmpwords(substr(payload, 6)) }
      else if (v6 == 1 && substr(payload, 1, 7) == "ICMP6, ") { pr = "icmp6"; ic = icmpwords(substr(payload, 8)) }
      else if (P[1] != "" && P[2] != "") {
        sp = P[1]; dp = P[2]
        if (substr(payload, 1, 7) == "Flags [") { pr = "tcp"; fl = substr(payload, 8); fl = substr(fl, 1, index(fl, "]") - 1) }
        else if (payload ~ /^(sctp|dccp|DCCP)/) pr = "other"
        else pr = "udp"
      }
    }
  } else if (substr(rest, 1, 5) == "ARP, ") {
    pr = "arp"
    n = split(substr(rest, 6), w, " ")
    if (w[1] == "Request" && w[2] == "who-has") {
      d = w[3]
      for (i = 4; i < n; i++) if (w[i] == "tell") { s = w[i + 1]; sub(/,$/, "", s); break }
    } else if (w[1] == "Reply") s = w[2]
  }
  if (proto != "" && pr != proto) next
  if (src != "" && s != src) next
  if (dst != "" && d != dst) next
  if (sport != "" && sp != sport) next
  if (dport != "" && dp != dport) next
  if (icmp != "" && ic != icmp) next
  if (flags != "" && fl != flags) next
  print rest
}'

# check_packets CAPTURE MIN MAX DESCRIPTION PROTO SRC DST SPORT DPORT ICMP FLAGS
check_packets() {
  local id=$1 min=$2 max=$3 desc=$4 matching n all err
  matching=$(awk -v proto="$5" -v src="$6" -v dst="$7" -v sport="$8" -v dport="$9" -v icmp="${10}" -v flags="${11}" "$NFLAB_AWK_PACKETS" "$WORK/$id.out")
  n=$(printf '%s' "$matching" | grep -c .)
  all=$(grep -c . "$WORK/$id.out")
  err=$(grep -iE 'No such device|permission|syntax error|can.t|cannot' "$WORK/$id.err" | head -n 1)
  if [ -n "$err" ]; then verdict 0 "$desc" "$(count_words "$min" "$max") packets" "capture error: $err"; return; fi
  local ok=0; count_ok "$n" "$min" "$max" && ok=1
  verdict "$ok" "$desc" "$(count_words "$min" "$max") matching packets" "$n matching of $all captured$( [ "$n" -gt 0 ] && printf '; %s' "$(printf '%s' "$matching" | head -n 3 | paste -sd '|' -)")"
}

# ---- rule and policy counters -------------------------------------------------------------------

# Finds one rule of TABLE CHAIN in `iptables-save -c` output (stdin) as nflab matches a rule the lab
# wrote: -s/-d/-i/-o/-p anywhere (B NEG OPT VALUE), the other words in order (R MODE VALUE ALT;
# MODE "~" compares numbers). Prints "OK delta-packets delta-bytes" against the BEFORE file, or
# "NONE chain-rules" / "MANY rules".
NFLAB_AWK_RULE='
function splitwords(s,   n, i, ch, w, inw, q, L) {
  n = 0; w = ""; inw = 0; q = ""; L = length(s)
  for (i = 1; i <= L; i++) {
    ch = substr(s, i, 1)
    if (q == "\"") { if (ch == "\\" && i < L) { i++; w = w substr(s, i, 1) } else if (ch == "\"") q = ""; else w = w ch; continue }
    if (q == "'"'"'") { if (ch == "'"'"'") q = ""; else w = w ch; continue }
    if (ch == " " || ch == "\t") { if (inw) { W[++n] = w; w = ""; inw = 0 }; continue }
    inw = 1
    if (ch == "\"" || ch == "'"'"'") { q = ch; continue }
    w = w ch
  }
  if (inw) W[++n] = w
  return n
}
function basic(o) {
  if (o == "-s" || o == "--source" || o == "--src") return "-s"
  if (o == "-d" || o == "--destination" || o == "--dst") return "-d"
  if (o == "-i" || o == "--in-interface") return "-i"
  if (o == "-o" || o == "--out-interface") return "-o"
  if (o == "-p" || o == "--protocol") return "-p"
  return ""
}
function same(saved, k) {
  if (saved == RV[k] || (RA[k] != "" && saved == RA[k])) return 1
  if (RM[k] == "~" && saved ~ /^[0-9.]+$/) return (saved - RV[k] < 0.000001 && RV[k] - saved < 0.000001)
  return 0
}
function matches(spec,   nw, i, j, k, neg, opt, vi, nsb, nsr, found, at) {
  nw = splitwords(spec); nsb = 0; nsr = 0
  for (i = 1; i <= nw; i++) {
    neg = (W[i] == "!" && i + 1 <= nw && basic(W[i + 1]) != "")
    opt = basic(neg ? W[i + 1] : W[i]); vi = i + (neg ? 2 : 1)
    if (opt != "" && vi <= nw && !(i > 1 && W[i - 1] == "--comment")) { nsb++; SN[nsb] = neg ? "1" : "0"; SO[nsb] = opt; SV[nsb] = W[vi]; i = vi; continue }
    SR[++nsr] = W[i]
    if (W[i] == "--comment" && i + 1 <= nw) { i++; SR[++nsr] = W[i] }
  }
  for (k = 1; k <= nb; k++) {
    found = 0
    for (j = 1; j <= nsb; j++) if (SN[j] == BN[k] && SO[j] == BO[k] && SV[j] == BV[k]) { found = 1; break }
    if (!found) return 0
  }
  at = 1
  for (k = 1; k <= nr; k++) {
    while (at <= nsr && !same(SR[at], k)) at++
    if (at > nsr) return 0
    at++
  }
  WORDS = nw
  return 1
}
function ruleline(line) {
  # "[p:b] -A CHAIN spec" -> sets rule_p rule_b rule_chain rule_spec (never RS: that is the record separator)
  if (substr(line, 1, 1) != "[") return 0
  cb = index(line, "]"); split(substr(line, 2, cb - 2), pb, ":"); rule_p = pb[1]; rule_b = pb[2]
  rest = substr(line, cb + 2)
  if (substr(rest, 1, 3) != "-A ") return 0
  rest = substr(rest, 4); sp = index(rest, " ")
  if (sp == 0) { rule_chain = rest; rule_spec = "" } else { rule_chain = substr(rest, 1, sp - 1); rule_spec = substr(rest, sp + 1) }
  return 1
}
BEGIN {
  T = ARGV[1]; C = ARGV[2]; nb = 0; nr = 0; want = 0
  for (i = 3; i < ARGC; i += 4) {
    if (ARGV[i] == "B") { nb++; BN[nb] = ARGV[i + 1]; BO[nb] = ARGV[i + 2]; BV[nb] = ARGV[i + 3]; want += (BN[nb] == "1" ? 3 : 2) }
    else { nr++; RM[nr] = ARGV[i + 1]; RV[nr] = ARGV[i + 2]; RA[nr] = ARGV[i + 3]; want++ }
  }
  ARGC = 1; n = 0; all = ""
}
/^\*/ { table = substr($0, 2); next }
table == T && ruleline($0) && rule_chain == C {
  all = all (all == "" ? "" : " | ") rule_spec
  if (matches(rule_spec)) { n++; CP[n] = rule_p; CB[n] = rule_b; CS[n] = rule_spec; CW[n] = WORDS }
}
END {
  if (n > 1) {
    # A rule written in full is that rule, even if it is also part of a longer one.
    m = 0; for (i = 1; i <= n; i++) if (CW[i] == want) { m++; pick = i }
    if (m == 1) { CP[1] = CP[pick]; CB[1] = CB[pick]; CS[1] = CS[pick]; n = 1 }
  }
  if (n == 0) { print "NONE " (all == "" ? "(the chain is empty)" : all); exit }
  if (n > 1) { s = CS[1]; for (i = 2; i <= n; i++) s = s " | " CS[i]; print "MANY " s; exit }
  bp = 0; bb = 0; table = ""
  while ((getline line < before) > 0) {
    if (substr(line, 1, 1) == "*") { table = substr(line, 2); continue }
    if (table == T && ruleline(line) && rule_chain == C && rule_spec == CS[1]) { bp = rule_p; bb = rule_b; break }
  }
  print "OK " (CP[1] - bp) " " (CB[1] - bb) " -A " C " " CS[1]
}'

# The policy counter of a built-in chain: "packets bytes POLICY".
policy_of() {
  awk -v T="$2" -v C="$3" '/^\*/ { t = substr($0, 2); next } t == T && substr($0, 1, 1) == ":" && substr($1, 2) == C { c = $3; gsub(/[\[\]]/, "", c); split(c, pb, ":"); print pb[1], pb[2], $2; exit }' "$1"
}

# check_counter NODE TABLE CHAIN PMIN PMAX BMIN BMAX DESCRIPTION policy
# check_counter NODE TABLE CHAIN PMIN PMAX BMIN BMAX DESCRIPTION rule "SHOWN WORDS" TOKENS... [rule ...]
# PMIN/PMAX may be answers:TRAFFIC:NODE (as many packets as NODE answered connections of TRAFFIC).
check_counter() {
  local node=$1 table=$2 chain=$3 pmin=$4 pmax=$5 bmin=$6 bmax=$7 desc=$8 what=$9
  shift 8
  local before="$WORK/$node.before" after="$WORK/$node.after" packets=0 bytes=0 shown problem="" found b a tokens
  if [[ "$pmin" == answers:* ]]; then
    local spec=${pmin#answers:}
    pmin=$(awk -F'\t' -v by="${spec#*:}" '$1 == "connects" && $2 == by { n++ } END { print n + 0 }' "$WORK/${spec%%:*}.res")
    pmax=$pmin
  fi
  if [ "$what" = policy ]; then
    b=$(policy_of "$before" "$table" "$chain"); a=$(policy_of "$after" "$table" "$chain")
    if [ -z "$a" ]; then problem="no chain $table $chain"; else
      local bp bb policy
      read -r packets bytes policy <<< "$a"; shown="$chain $policy"
      if [ -n "$b" ]; then read -r bp bb _ <<< "$b"; packets=$((packets - bp)); bytes=$((bytes - bb)); fi
    fi
  else
    shown=""
    while [ $# -gt 0 ] && [ "$1" = rule ]; do
      local words=$2; shift 2
      tokens=()
      while [ $# -gt 0 ] && [ "$1" != rule ]; do tokens+=("$1" "$2" "$3" "$4"); shift 4; done
      found=$(awk -v before="$before" "$NFLAB_AWK_RULE" "$table" "$chain" "${tokens[@]}" < "$after")
      case "$found" in
        OK\ *) local dp db rule
               read -r dp db rule <<< "${found#OK }"
               packets=$((packets + dp)); bytes=$((bytes + db)); shown="$shown${shown:+ + }$rule";;
        NONE\ *) problem="no rule in $table $chain matches \"$words\"; the chain holds: ${found#NONE }"; break;;
        *) problem="\"$words\" matches several rules in $table $chain: ${found#MANY }"; break;;
      esac
    done
  fi
  local expected
  expected="packets $(count_words "$pmin" "$pmax"), bytes $(count_words "$bmin" "$bmax")"
  if [ -n "$problem" ]; then verdict 0 "$desc" "$expected" "$problem"; return; fi
  local ok=0; count_ok "$packets" "$pmin" "$pmax" && count_ok "$bytes" "$bmin" "$bmax" && ok=1
  verdict "$ok" "$desc" "$expected" "$packets packets, $bytes bytes ($shown)"
}

# ---- conntrack ------------------------------------------------------------------------------------

# check_conntrack NODE MIN MAX DESCRIPTION PROTO OSRC ODST OSPMIN OSPMAX ODPMIN ODPMAX RSRC RDST RSPMIN RSPMAX RDPMIN RDPMAX MARK
check_conntrack() {
  local node=$1 min=$2 max=$3 desc=$4 lines n all
  lines=$(awk -v before="$WORK/$node.conntrack.before" -v clients="$WORK/clients" -v proto="$5" -v os="$6" -v od="$7" -v ospa="$8" -v ospb="$9" -v odpa="${10}" -v odpb="${11}" \
    -v rs="${12}" -v rd="${13}" -v rspa="${14}" -v rspb="${15}" -v rdpa="${16}" -v rdpb="${17}" -v mark="${18:-}" '
    function portok(v, a, b) { if (a == "" && b == "") return 1; if (v == "") return 0; return (a == "" || v + 0 >= a + 0) && (b == "" || v + 0 <= b + 0) }
    function entryid(l) { return match(l, / id=[0-9]+ *$/) ? substr(l, RSTART + 4) + 0 : "" }
    BEGIN {
      while ((getline l < before) > 0) { i = entryid(l); if (i != "") seen[i] = 1 }
      while ((getline l < clients) > 0) made[l]++
    }
    {
      eid = entryid($0)
      off = 0
      if (($1 == "ipv4" || $1 == "ipv6") && $2 ~ /^[0-9]+$/) off = 2
      if ($(off + 1) !~ /^[a-z][a-z0-9-]*$/ || $(off + 2) !~ /^[0-9]+$/ || $(off + 3) !~ /^[0-9]+$/) next
      p = $(off + 1); cur = -1; m = 0
      delete t
      for (i = off + 4; i <= NF; i++) {
        if ($i ~ /^\[[A-Z_]+\]$/) continue
        eq = index($i, "=")
        if (eq == 0) continue
        k = substr($i, 1, eq - 1); v = substr($i, eq + 1)
        if ((k == "src" || k == "dst" || k == "sport" || k == "dport" || k == "type" || k == "code" || k == "id") && cur < 2) {
          if (k == "src") cur++
          if (cur >= 0 && cur < 2) t[cur, k] = v
          continue
        }
        if (cur >= 0) cur = 2
        if (k == "mark") m = v + 0
      }
      if (!((0, "src") in t) || !((0, "dst") in t) || !((1, "src") in t) || !((1, "dst") in t)) next
      if (proto != "" && p != proto) next
      if (os != "" && t[0, "src"] != os) next
      if (od != "" && t[0, "dst"] != od) next
      if (!portok(t[0, "sport"], ospa, ospb) || !portok(t[0, "dport"], odpa, odpb)) next
      if (rs != "" && t[1, "src"] != rs) next
      if (rd != "" && t[1, "dst"] != rd) next
      if (!portok(t[1, "sport"], rspa, rspb) || !portok(t[1, "dport"], rdpa, rdpb)) next
      if (mark != "" && m != mark + 0) next
      # As nflab counts: an entry of the baseline is one of this step when its reply tuple is one of
      # the connections of the step (the kernel gave a reused tuple the old id), and an entry counts
      # as many connections as the step made with its tuple (a client reused a source port at once).
      w = made[t[0, "dst"] "|" t[1, "dst"] ":" t[1, "dport"]] + 0
      if (eid != "" && (eid in seen) && w == 0) next
      print (w > 0 ? w : 1) "\t" $0
    }' "$WORK/$node.conntrack")
  n=$(printf '%s' "$lines" | awk -F'\t' '{ n += $1 } END { print n + 0 }')
  lines=$(printf '%s' "$lines" | cut -f2-)
  all=$(grep -c '=' "$WORK/$node.conntrack")
  local ok=0; count_ok "$n" "$min" "$max" && ok=1
  verdict "$ok" "$desc" "$(count_words "$min" "$max") matching entries" "$n matching of $all entries$( [ "$n" -gt 0 ] && printf '; %s' "$(printf '%s' "$lines" | head -n 2 | paste -sd '|' -)")"
}

# ---- ping and TCP -----------------------------------------------------------------------------------

# check_ping TRAFFIC succeeds|fails ERROR-TEXT DESCRIPTION
check_ping() {
  local id=$1 expect=$2 error=$3 desc=$4 counts tx rx errtext ok=0 outcome
  counts=$(awk '
    /packets transmitted/ { tx = $1; rx = $4; stats = 1 }
    /^[0-9]+ bytes from / { replies++; s = $0; sub(/.*seq=/, "", s); sub(/ .*/, "", s); S[s] = 1 }
    /^From [^ ]+ icmp_seq=/ { s = $0; sub(/.*icmp_seq=/, "", s); sub(/ .*/, "", s); S[s] = 1 }
    END { if (!stats) { rx = replies; tx = 0; for (k in S) tx++ } print tx + 0, rx + 0 }' "$WORK/$id.out")
  tx=${counts% *}; rx=${counts#* }
  errtext=$(grep -v '^[[:space:]]*$' "$WORK/$id.err" | head -n 1)
  [ -z "$errtext" ] && errtext=$(grep -E '^From [^ ]+ icmp_seq=' "$WORK/$id.out" | head -n 1)
  if [ "$tx" -gt 0 ] && [ "$rx" = "$tx" ]; then outcome=succeeds; else outcome=fails; fi
  if [ "$expect" = succeeds ]; then [ "$outcome" = succeeds ] && ok=1; else [ "$rx" = 0 ] && ok=1; fi
  if [ -n "$error" ]; then
    local text=$errtext
    [ -z "$text" ] && text=$(cat "$WORK/$id.out" "$WORK/$id.err")
    [[ "$text" == *"$error"* ]] || ok=0
  fi
  verdict "$ok" "$desc" "$expect${error:+ with \"$error\"}" "$outcome (transmitted $tx, received $rx)${errtext:+; $errtext}"
}

# One line per connection: RESULT<TAB>ANSWERED-BY<TAB>CLIENT-SEEN<TAB>ERROR, from the client's output.
NFLAB_AWK_TCP='
function flush(rc,   res, t) {
  t = (eline != "" ? eline : firstline)
  if (ans != "") res = "connects"
  else if (t ~ /Connection refused/) res = "refused"
  else if (t ~ /Network is unreachable|No route to host|Host is unreachable/) res = "unreachable"
  else if (t ~ /timed out/) res = "timeout"
  else if (rc == 0 && eline == "") res = "connects"
  else res = "error"
  print res "\t" (ans != "" ? by : "-") "\t" (ans != "" ? cl : "-") "\t" t
  ans = ""; eline = ""; firstline = ""
}
/^@@nflab-connection-end rc=/ { flush(substr($0, 27) + 0); next }
{
  line = $0; sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line)
  if (ans == "" && line ~ /^[^ ]+ client=[^ ]+:[0-9]+$/) {
    by = substr(line, 1, index(line, " ") - 1); cl = substr(line, index(line, "client=") + 7); sub(/:[0-9]+$/, "", cl); ans = line; next
  }
  if (eline == "" && line ~ /socat\[[0-9]+\] E /) { eline = line; sub(/.*socat\[[0-9]+\] E /, "", eline) }
  if (firstline == "" && line != "") firstline = line
}'

tcp_done() {
  awk "$NFLAB_AWK_TCP" "$WORK/$1.raw" > "$WORK/$1.res"
  grep -o ' client=[^ ]*:[0-9][0-9]*$' "$WORK/$1.raw" | sed "s/^ client=/$2|/" >> "$WORK/clients"
  if [ "$(grep -c . "$WORK/$1.res")" -le 1 ]; then grep -v '^@@nflab-connection-end' "$WORK/$1.raw" | indent; else echo "    $(tcp_tally "$1")"; fi
}

tcp_tally() {
  awk -F'\t' '{ k = $1; if ($2 != "-") k = k " by " $2 " (client " $3 ")"; if (!(k in c)) o[++n] = k; c[k]++ }
    END { for (i = 1; i <= n; i++) printf "%s%d x %s", (i > 1 ? ", " : ""), c[o[i]], o[i]; if (n == 0) printf "no connection" }' "$WORK/$1.res"
}

# check_tcp TRAFFIC connects|refused|timeout|unreachable CONNECTIONS ANSWERED-BY CLIENT-SEEN DESCRIPTION
check_tcp() {
  local id=$1 expect=$2 n=$3 by=$4 client=$5 desc=$6 total good ok=0
  total=$(grep -c . "$WORK/$id.res")
  good=$(awk -F'\t' -v e="$expect" -v by="$by" -v cl="$client" '$1 == e && (by == "" || $2 == by) && (cl == "" || $3 == cl) { n++ } END { print n + 0 }' "$WORK/$id.res")
  [ "$total" = "$n" ] && [ "$good" = "$n" ] && ok=1
  verdict "$ok" "$desc" "$n x $expect${by:+ by $by}${client:+ (client $client)}" "$(tcp_tally "$id")"
}

# check_distribution TRAFFIC CONNECTIONS DESCRIPTION NODE MIN MAX [NODE MIN MAX ...]
check_distribution() {
  local id=$1 n=$2 desc=$3 ok=1 counts="" expected="" node c total answered
  shift 3
  total=$(grep -c . "$WORK/$id.res")
  answered=$(awk -F'\t' '$1 == "connects" && $2 != "-" { n++ } END { print n + 0 }' "$WORK/$id.res")
  [ "$total" = "$n" ] && [ "$answered" = "$n" ] || ok=0
  local known=" "
  while [ $# -gt 0 ]; do
    node=$1; c=$(awk -F'\t' -v by="$1" '$1 == "connects" && $2 == by { n++ } END { print n + 0 }' "$WORK/$id.res")
    count_ok "$c" "$2" "$3" || ok=0
    counts="$counts${counts:+, }$node=$c"; expected="$expected${expected:+, }$node $2..$3"; known="$known$node "
    shift 3
  done
  # A backend outside the shares fails the check.
  while IFS= read -r node; do [[ "$known" == *" $node "* ]] || { ok=0; counts="$counts, $node=?"; }; done < <(awk -F'\t' '$1 == "connects" { print $2 }' "$WORK/$id.res" | sort -u)
  verdict "$ok" "$desc" "$n connections, $expected" "$counts ($(tcp_tally "$id"))"
}

# check_sticky TRAFFIC CONNECTIONS DESCRIPTION [AMONG...]
check_sticky() {
  local id=$1 n=$2 desc=$3 ok=0 backends total answered
  shift 3
  total=$(grep -c . "$WORK/$id.res")
  answered=$(awk -F'\t' '$1 == "connects" && $2 != "-" { n++ } END { print n + 0 }' "$WORK/$id.res")
  backends=$(awk -F'\t' '$1 == "connects" && $2 != "-" { print $2 }' "$WORK/$id.res" | sort -u)
  if [ "$total" = "$n" ] && [ "$answered" = "$n" ] && [ "$(printf '%s' "$backends" | grep -c .)" = 1 ]; then
    ok=1
    if [ $# -gt 0 ]; then ok=0; for node in "$@"; do [ "$node" = "$backends" ] && ok=1; done; fi
  fi
  verdict "$ok" "$desc" "$n connections, one backend${1:+ among $*}" "$(tcp_tally "$id")"
}

# check_output OUTPUT DESCRIPTION (include|exclude TEXT)...
check_output() {
  local id=$1 desc=$2 ok=1 text expected=""
  shift 2
  text=$(cat "$WORK/$id.out")
  while [ $# -gt 0 ]; do
    if [ "$1" = include ]; then [[ "$text" == *"$2"* ]] || ok=0; expected="$expected${expected:+, }shows \"$2\""
    else [[ "$text" != *"$2"* ]] || ok=0; expected="$expected${expected:+, }does not show \"$2\""; fi
    shift 2
  done
  verdict "$ok" "$desc" "$expected" "$(printf '%s' "$text" | head -n 12 | paste -sd '|' -)"
}

# check_recent NODE has|lacks|empty ADDRESS CHOSEN-BY-TRAFFIC DESCRIPTION (BACKEND LIST)...
# BACKEND is "-" for a single list by name.
check_recent() {
  local node=$1 expect=$2 address=$3 chosen=$4 desc=$5 ok=0 held="" total=0 observed="" list backend entries
  shift 5
  local -A lists=()
  while [ $# -gt 0 ]; do
    backend=$1; list=$2; shift 2
    lists[$backend]=$list
    if [ "$(cat "$WORK/$node.recent.$list.rc")" != 0 ]; then verdict 0 "$desc" "$expect" "list $list: $(head -n 1 "$WORK/$node.recent.$list")"; return; fi
    entries=$(grep -c '^src=' "$WORK/$node.recent.$list")
    total=$((total + entries))
    # has: only an entry the step's traffic wrote (a line not in the baseline: --set refreshes last_seen);
    # lacks and empty judge the list as it is.
    if [ -n "$address" ]; then
      if [ "$expect" = has ] && [ -f "$WORK/$node.recent.$list.before" ]; then
        grep -F "src=$address " "$WORK/$node.recent.$list" 2>/dev/null | grep -qvxFf "$WORK/$node.recent.$list.before" && held="$held${held:+ }$list"
      else
        grep -qF "src=$address " "$WORK/$node.recent.$list" 2>/dev/null && held="$held${held:+ }$list"
      fi
    fi
    observed="$observed${observed:+; }$list: $(grep -o '^src=[^ ]*' "$WORK/$node.recent.$list" | cut -c5- | paste -sd ' ' -)"
  done
  case "$expect" in
    empty) [ "$total" = 0 ] && ok=1 ;;
    lacks) [ -z "$held" ] && ok=1 ;;
    has)
      if [ -z "${lists[-]:-}" ] && [ -n "$chosen" ]; then
        local by
        by=$(awk -F'\t' '$2 != "-" { print $2 }' "$WORK/$chosen.res" | sort -u)
        [ "$(printf '%s' "$by" | grep -c .)" = 1 ] && [ -n "${lists[$by]:-}" ] && [ "$held" = "${lists[$by]}" ] && ok=1
        observed="$observed; chosen: ${by:-none}"
      else
        [ "$(echo "$held" | wc -w)" = 1 ] && ok=1
      fi ;;
  esac
  verdict "$ok" "$desc" "$expect${address:+ $address}" "${observed}${held:+; held by $held}"
}

# Many one-packet pings: REACH-ID WAIT PARALLEL, then "SOURCE TARGET..." words per source node
# joined by ";". One shell per source node sends all its pings at once (as src/traffic/reach.ts).
NFLAB_REACH_SCRIPT='w=$1; shift; for a; do (ping -c 1 -W "$w" -q "$a" >/dev/null 2>&1; echo "$a $?") & done; wait'
reach_run() {
  local id=$1 wait=$2 parallel=$3 node
  shift 3
  [ "$parallel" = auto ] && parallel=$(( 2 * $(nproc 2>/dev/null || echo 1) ))
  : > "$WORK/$id.reach"
  while [ $# -gt 0 ]; do
    node=$1; shift
    local targets=()
    while [ $# -gt 0 ] && [ "$1" != ";" ]; do targets+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
    in_node "$node" sh -c "$NFLAB_REACH_SCRIPT" sh "$wait" "${targets[@]}" < /dev/null 2>/dev/null | sed "s/^/$node /" >> "$WORK/$id.reach" &
  done
  wait
}

# check_reach REACH-ID succeeds|fails PINGS DESCRIPTION
check_reach() {
  local id=$1 expect=$2 total=$3 desc=$4 answered seen ok=0
  answered=$(awk '$3 == 0 { n++ } END { print n + 0 }' "$WORK/$id.reach")
  seen=$(grep -c . "$WORK/$id.reach")
  if [ "$expect" = succeeds ]; then [ "$answered" = "$total" ] && ok=1; else [ "$answered" = 0 ] && ok=1; fi
  verdict "$ok" "$desc" "$total pings, $( [ "$expect" = succeeds ] && echo 'every one answered' || echo 'none answered')" "$answered of $total answered ($seen ran)$(awk '$3 != 0 { printf "%s%s->%s", (n++ ? ", " : "; unanswered: "), $1, $2 } n >= 5 { exit }' "$WORK/$id.reach")"
}

nflab_summary() {
  printf '\n%s checks passed, %s failed, %s skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
  [ "$FAILED" = 0 ]
}
# ---- end of nflab's helpers ------------------------------------------------------------------------
