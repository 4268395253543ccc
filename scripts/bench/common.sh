# Shared by the two bash baselines: the address plan of src/topology/generate.ts
# bridgeOfContainers(n) (gateway 10.80.0.1/16 on the bridge, container i at index i+1, MACs derived
# from the addresses, neighbours pinned as permanent entries like nflab's scale lab) and a clock.
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
# addr I: the address of container I (1-based) in 10.80.0.0/16.
addr() { local k=$(($1 + 1)); echo "10.80.$((k / 256)).$((k % 256))"; }
GW=10.80.0.1
# mac ADDRESS: 02:00 then the four bytes of the address (src/topology/generate.ts macOf).
mac() { local IFS=.; set -- $1; printf '02:00:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4"; }
