#!/usr/bin/env bash
# Networking figures on the cloud `make run` started (cloud `petrel` in clouds.yaml, as root):
#   1. port create → ACTIVE: a port bound to this node, its tap joining the bridge, until the
#      API says ACTIVE (polled every 10 ms: the figure includes up to 10 ms of polling)
#   2. server create --network → the guest holds its DHCP lease: the control plane's share
#      (until ACTIVE) and the hypervisor's (until the console shows PETREL-GUEST-IP)
#   3. server add network → the NIC is in the running domain (the CLI returns once the node
#      attached it), beside `server show` as the CLI's own cost in the same run
#   4. the node's RSS idle with its three network agents, and with 50 more ports on a network
# Usage: Benchmarks/network-bench.sh [ROUNDS]   (default 5)
set -euo pipefail
rounds=${1:-5}
os() { openstack --os-cloud petrel "$@"; }
now_ms() { date +%s%3N; }
node=$(os network agent list --agent-type dhcp -f value -c Host | head -1)
[ -n "$node" ] || { echo "no DHCP agent alive: start the cloud with make run" >&2; exit 1; }
url=$(os endpoint list --service network --interface public -f value -c URL)
token=$(os token issue -f value -c id)
status() { curl -s -H "X-Auth-Token: $token" "$url/v2.0/ports/$1?fields=status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["port"]["status"])'; }
net=$(os network create "bench-$$" -f value -c id)
os subnet create --network "bench-$$" --subnet-range 198.18.120.0/24 "bench-$$" >/dev/null
cleanup() {
  for p in $(os port list --network "$net" --device-owner "" -f value -c ID 2>/dev/null); do os port delete "$p" >/dev/null 2>&1 || true; done
  os server delete --wait "bench-vm-$$" >/dev/null 2>&1 || true
  os subnet delete "bench-$$" >/dev/null 2>&1 || true
  os network delete "bench-$$" >/dev/null 2>&1 || true
  for t in $(ip -o link show | sed -n 's/^[0-9]*: \(tapbench[^:@]*\).*/\1/p'); do ip link del "$t" 2>/dev/null || true; done
}
trap cleanup EXIT
sleep 1

echo "== port create → ACTIVE (tap on the bridge), $rounds rounds"
total=0
for i in $(seq 1 "$rounds"); do
  port=$(os port create --network "bench-$$" --host "$node" "bench-p$i" -f value -c id)
  sleep 0.5   # the node has synced the port
  tap="tap${port:0:11}"
  start=$(now_ms)
  ip link add "$tap" type veth peer name "tapbench$i" && ip link set "$tap" master "brq${net:0:11}" up
  until [ "$(status "$port")" = ACTIVE ]; do sleep 0.01; done
  took=$(( $(now_ms) - start )); total=$((total + took))
  echo "  round $i: ${took} ms"
  ip link del "$tap"
done
echo "  mean: $((total / rounds)) ms (target ≤ 50 ms; Neutron's agents poll every 2 s)"

echo "== server create --network → DHCP lease in the guest"
image=$(os image list --name petrel-tiny -f value -c ID | head -1)
start=$(now_ms)
os server create --image "$image" --flavor m1.tiny --network "bench-$$" --wait "bench-vm-$$" >/dev/null
active=$(( $(now_ms) - start ))
until os console log show "bench-vm-$$" 2>/dev/null | grep -q PETREL-GUEST-IP=198.18.120; do sleep 0.2; done
leased=$(( $(now_ms) - start ))
echo "  ACTIVE after ${active} ms (control plane and domain start), lease after ${leased} ms (guest boot under $(sed -n 's/^virt_type *= *//p' /etc/petrel/petrel.conf))"

echo "== server add network → NIC hot-plugged into the running guest"
start=$(now_ms); os server show "bench-vm-$$" >/dev/null; reference=$(( $(now_ms) - start ))
start=$(now_ms); os server add network "bench-vm-$$" "bench-$$"; attached=$(( $(now_ms) - start ))
second=$(os port list --server "bench-vm-$$" -f value -c ID -c Status | awk 'NR == 2 {print $1}')
until [ "$(status "$second")" = ACTIVE ]; do sleep 0.01; done
wired=$(( $(now_ms) - start ))
echo "  server add network: ${attached} ms, its port seen ACTIVE by ${wired} ms (after a port list, itself a CLI call); server show (the CLI's own cost): ${reference} ms"
echo "  the attach itself: $((attached - reference)) ms beyond the CLI's cost"
os server delete --wait "bench-vm-$$" >/dev/null

rss() { ps -o rss= -p "$(cat /run/petrel/node.pid)" | awk '{printf "%.1f", $1 / 1024}'; }
echo "== petrel-node RSS"
echo "  with its agents, idle: $(rss) MB"
for i in $(seq 1 50); do os port create --network "bench-$$" "bench-m$i" >/dev/null; done
sleep 2
echo "  with 50 more ports on a DHCP network: $(rss) MB (target ≤ 45 MB for a release build; the Python DHCP agent alone: ~144 MB)"
