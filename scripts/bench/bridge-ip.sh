#!/usr/bin/env bash
# Baseline 1, the articles' style: N containers (namespaces) on one bridge in a "host" namespace,
# one `ip` (or sysctl/ping) process per step, all in sequence. Same work as nflab's bridge lab:
# lo up, IPv6 off, one veth pair per container (created directly in the namespaces), the bridge
# with the gateway address, MACs and permanent neighbour entries (the gateway's for each container and
# each container's for the gateway, with all pairs every other container's too: the kernel's ARP
# table is shared by all namespaces and overflows past 1024 learned entries); then every container
# pings the gateway, optionally all pairs; teardown.
# Usage: bridge-ip.sh PREFIX N [all-pairs:0|1]. Prints "phase seconds ok total" lines.
set -eu
P=$1; N=$2; PAIRS=${3:-0}
. "$(dirname "$0")/common.sh"
H=${P}h
t=$(now)
ip netns add "$H"
ip netns exec "$H" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$H" link set lo up
ip -n "$H" link add br0 type bridge
ip -n "$H" link set br0 address "$(mac $GW)"
ip -n "$H" addr add $GW/16 dev br0
ip -n "$H" link set br0 up
for i in $(seq "$N"); do
  C=${P}c$i
  ip netns add "$C"
  ip netns exec "$C" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$C" link set lo up
  ip link add "v$i" netns "$H" type veth peer name eth0 netns "$C"
  ip -n "$H" link set "v$i" master br0
  ip -n "$H" link set "v$i" up
  A=$(addr "$i")
  ip -n "$C" addr add "$A/16" dev eth0
  ip -n "$C" link set eth0 address "$(mac "$A")"
  ip -n "$C" link set eth0 up
  ip -n "$C" neigh replace $GW lladdr "$(mac $GW)" dev eth0 nud permanent
  ip -n "$H" neigh replace "$A" lladdr "$(mac "$A")" dev br0 nud permanent
  if [ "$PAIRS" = 1 ]; then for j in $(seq "$N"); do
    [ "$i" = "$j" ] || ip -n "$C" neigh replace "$(addr "$j")" lladdr "$(mac "$(addr "$j")")" dev eth0 nud permanent
  done; fi
done
echo "setup $(since "$t") $N $N"

t=$(now); ok=0
set +e
for i in $(seq "$N"); do ip netns exec "${P}c$i" ping -c 1 -W 1 -q $GW >/dev/null 2>&1 && ok=$((ok + 1)); done
echo "gateway $(since "$t") $ok $N"

if [ "$PAIRS" = 1 ]; then
  t=$(now); ok=0
  for i in $(seq "$N"); do for j in $(seq "$N"); do
    [ "$i" = "$j" ] && continue
    ip netns exec "${P}c$i" ping -c 1 -W 1 -q "$(addr "$j")" >/dev/null 2>&1 && ok=$((ok + 1))
  done; done
  echo "allpairs $(since "$t") $ok $((N * (N - 1)))"
fi

t=$(now)
for i in $(seq "$N"); do ip netns del "${P}c$i"; done
ip netns del "$H"
echo "teardown $(since "$t") $N $N"
