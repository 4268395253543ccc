#!/usr/bin/env bash
# Starts a Docker engine if none answers. It is started so that it leaves the root namespace's
# firewall and forwarding alone (nflab's containers use --network none and their own bridge).
set -euo pipefail
timeout 5 docker info >/dev/null 2>&1 && exit 0
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl start docker && exit 0
fi
mkdir -p /var/log
nohup dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none >/var/log/nflab-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  timeout 5 docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; see /var/log/nflab-dockerd.log" >&2
exit 3
