#!/usr/bin/env bash
# Baseline 2, close to what the kernel needs: the same topology and checks as bridge-ip.sh, with as
# few processes as iproute2 allows. One `ip -batch` creates every namespace, one creates every veth
# pair (both ends directly in their namespaces), one configures the host (bridge, ports, pinned
# neighbours); each container then needs one process inside it (nsenter: IPv6 off with sysctl, then
# `ip -batch` for lo, address, MAC, up, pinned neighbours). The pings run 2×nproc containers at a
# time, each container pinging its targets concurrently.
# Usage: bridge-batch.sh PREFIX N [all-pairs:0|1]. Prints "phase seconds ok total" lines.
set -u
P=$1; N=$2; PAIRS=${3:-0}
. "$(dirname "$0")/common.sh"
H=${P}h
J=$(( $(nproc) * 2 ))
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
# Each container's batch, prepared before the clock starts (nflab prepares its plan before too).
for i in $(seq "$N"); do
  A=$(addr "$i")
  { echo "link set lo up"; echo "addr add $A/16 dev eth0"; echo "link set eth0 address $(mac "$A")"; echo "link set eth0 up"
    echo "neigh replace $GW lladdr $(mac $GW) dev eth0 nud permanent"
    if [ "$PAIRS" = 1 ]; then for j in $(seq "$N"); do [ "$i" = "$j" ] || echo "neigh replace $(addr "$j") lladdr $(mac "$(addr "$j")") dev eth0 nud permanent"; done; fi
  } > "$B/$i"
done
{ echo "link add br0 type bridge"; echo "link set br0 address $(mac $GW)"; echo "addr add $GW/16 dev br0"; echo "link set br0 up"; echo "link set lo up"
  for i in $(seq "$N"); do A=$(addr "$i"); echo "link set v$i master br0"; echo "link set v$i up"; echo "neigh replace $A lladdr $(mac "$A") dev br0 nud permanent"; done
} > "$B/host"
{ for i in $(seq "$N"); do echo "link add v$i netns $H type veth peer name eth0 netns ${P}c$i"; done; } > "$B/veths"

t=$(now)
fail() { echo "setup failed: $1" >&2; exit 1; }
{ echo "netns add $H"; for i in $(seq "$N"); do echo "netns add ${P}c$i"; done; } | ip -batch - || fail "netns add"
ip -batch "$B/veths" || fail veths
nsenter --net=/run/netns/"$H" sh -c 'sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && ip -batch "$1"' sh "$B/host" || fail host
seq "$N" | xargs -P "$J" -I{} nsenter --net=/run/netns/"${P}"c{} sh -c 'sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && ip -batch "$1"' sh "$B/{}" || fail containers
echo "setup $(since "$t") $N $N"

# RUN SOURCE-INDEX TARGET...: inside container SOURCE, ping every target at once; one "ok" per reply.
PING='for a; do (ping -c 1 -W 1 -q "$a" >/dev/null 2>&1 && echo ok) & done; wait'
RUN='ns=$1; shift; exec nsenter --net=/run/netns/'"$P"'c$ns sh -c "$0" sh "$@"'
t=$(now)
ok=$(for i in $(seq "$N"); do echo "$i $GW"; done | xargs -P "$J" -L 1 sh -c "$RUN" "$PING" | grep -c ok)
echo "gateway $(since "$t") $ok $N"

if [ "$PAIRS" = 1 ]; then
  lines=$(for i in $(seq "$N"); do printf '%s' "$i"; for j in $(seq "$N"); do [ "$i" = "$j" ] || printf ' %s' "$(addr "$j")"; done; echo; done)
  t=$(now)
  ok=$(echo "$lines" | xargs -P "$J" -L 1 sh -c "$RUN" "$PING" | grep -c ok)
  echo "allpairs $(since "$t") $ok $((N * (N - 1)))"
fi

t=$(now)
{ for i in $(seq "$N"); do echo "netns del ${P}c$i"; done; echo "netns del $H"; } | ip -batch -
echo "teardown $(since "$t") $N $N"
