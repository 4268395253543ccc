#!/usr/bin/python3
"""Mininet's side of the all-pairs benchmark: what `mn --switch lxbr --controller none --topo single,N
--test pingall` does, through Mininet's Python API so that set-up, pingall and stop are timed apart.
With --arp every host gets static ARP entries for every other one (mn --arp), the same work as
nflab's all-pairs lab, which pins every neighbour (the kernel's ARP table is shared by all namespaces
and overflows past 1024 learned entries).
Run it only in a namespace and a PID namespace of its own (scripts/bench.sh does):
  ip netns exec hb8-mn unshare --pid --fork --mount-proc /usr/bin/python3 mininet-pingall.py N [--arp]
Mininet's clean-up after an error runs `killall ping mnexec ...`: in its own PID namespace that
reaches only its own processes. Prints "phase seconds ok total" lines like the bash baselines."""
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import SingleSwitchTopo

n = int(sys.argv[1])
arp = '--arp' in sys.argv
setLogLevel('error')
t = time.time()
net = Mininet(topo=SingleSwitchTopo(n), switch=LinuxBridge, controller=None, autoStaticArp=arp)
net.start()
print('setup %.3f %d %d' % (time.time() - t, n, n), flush=True)
t = time.time()
loss = net.pingAll(timeout='1')
pairs = n * (n - 1)
print('allpairs %.3f %d %d' % (time.time() - t, round(pairs * (100 - loss) / 100), pairs), flush=True)
t = time.time()
net.stop()
print('teardown %.3f %d %d' % (time.time() - t, n, n), flush=True)
