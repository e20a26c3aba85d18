#!/usr/bin/env bash
# Two hosts, one VXLAN network, through the unmodified `openstack` CLI and the real kernel:
#   network    node A alone: a network with a DHCP subnet is wired on A, which serves its DHCP
#   cross      node B up (in namespace HOST_B): a port on each host, a "guest" namespace on each
#              port's tap; each node's vxlan-<vni> floods to the other's tunnel address only
#              (l2 population), B's guest gets its lease from A's dnsmasq across the tunnel
#              and its SLAAC address from A's router advertisements, and the guests ping
#              each other over IPv4 and IPv6
#   last-port  B's port deleted: B removes its bridge and tunnel, A stops flooding to B
#   cleanup    everything deleted: A's bridge, tunnel and DHCP namespace go
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), NODE_A, NODE_B, HOST_B (node B's
# namespace), ADDR_A, ADDR_B (their tunnel addresses), TAG, WORK.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${NODE_A:?}" "${NODE_B:?}" "${HOST_B:?}" "${ADDR_A:?}" "${ADDR_B:?}" "${TAG:?}" "${WORK:?}"
fail() { echo "FAIL ($1): ${*:2}" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
waitfor() { local deadline=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.3; done; }
agents() { # "Linux bridge agent:True DHCP agent:True" for a host
  os network agent list --host "$1" -f json | python3 -c '
import json, sys
print(" ".join(sorted("%s:%s" % (a["Agent Type"], a["Alive"]) for a in json.load(sys.stdin))))'
}
alive() { [ "$(agents "$1")" = 'DHCP agent:True Linux bridge agent:True' ]; }
status_is() { [ "$(os port show "$1" -f value -c status)" = "$2" ]; }
# floods DEVICE-NAMESPACE VNI: the tunnel addresses vxlan-VNI floods to, sorted, one line
floods() { ip ${1:+-n "$1"} link show "vxlan-$2" >/dev/null 2>&1 || return 0
  bridge ${1:+-n "$1"} fdb show dev "vxlan-$2" | awk '$1 == "00:00:00:00:00:00" {for (i = 1; i < NF; i++) if ($i == "dst") print $(i + 1)}' | sort | tr '\n' ' '; }
floods_is() { [ "$(floods "$1" "$2")" = "$3" ]; }
lease() { # lease NAMESPACE: a DHCP lease on eth0, its address configured; prints "ip=… router=…"
  printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr add "$ip/$mask" dev "$interface"; echo "ip=$ip router=$router mtu=$mtu" > %s ;; esac\nexit 0\n' \
    "$WORK/lease-$1" > "$WORK/udhcpc-$1.sh"
  chmod +x "$WORK/udhcpc-$1.sh"
  ip netns exec "$1" busybox udhcpc -i eth0 -n -q -t 10 -T 2 -s "$WORK/udhcpc-$1.sh" >/dev/null 2>&1 && cat "$WORK/lease-$1"
}
# address_of PORT 4|6: the port's address of that version
address_of() { os port show "$1" -f json | python3 -c '
import json, sys
print([f["ip_address"] for f in json.load(sys.stdin)["fixed_ips"] if (":" in f["ip_address"]) == (sys.argv[1] == "6")][0])' "$2"; }
# has_v6 NAMESPACE ADDRESS: eth0 holds ADDRESS, past duplicate address detection
has_v6() { ip -n "$1" -6 addr show dev eth0 scope global | grep "inet6 $2/64" | grep -qv tentative; }
export -f os agents alive status_is floods floods_is has_v6

phase=${1:?phase}
case "$phase" in
network)
  waitfor 30 alive "$NODE_A" || fail "$phase" "node A's agents: $(agents "$NODE_A")"
  net=$(os network create "tn-$TAG" -f value -c id) || fail "$phase" "network create"
  echo "$net" > "$WORK/net"
  os network show "$net" -f value -c provider:segmentation_id > "$WORK/vni"
  os subnet create --network "$net" --subnet-range 198.18.92.0/24 "ts-$TAG" >/dev/null \
    && os subnet create --network "$net" --ip-version 6 --subnet-range fd00:198:18:92::/64 --ipv6-ra-mode slaac --ipv6-address-mode slaac \
      "ts6-$TAG" >/dev/null || fail "$phase" "subnet create"
  waitfor 20 test -e "/run/netns/qdhcp-$net" || fail "$phase" "node A serves no DHCP for the network"
  dhcp=$(os port list --network "$net" --device-owner network:dhcp -f value -c ID)
  [ "$(os port show "$dhcp" -f value -c binding_host_id)" = "$NODE_A" ] || fail "$phase" "the DHCP port is not on node A"
  ok "node A wires the network and serves its DHCP"
  ;;
cross)
  net=$(cat "$WORK/net"); vni=$(cat "$WORK/vni"); bridge="brq${net:0:11}"
  waitfor 30 alive "$NODE_B" || fail "$phase" "node B's agents: $(agents "$NODE_B")"
  ! ip -n "$HOST_B" link show "$bridge" >/dev/null 2>&1 || fail "$phase" "node B wired a network it has no port on"
  floods_is "" "$vni" "" || fail "$phase" "A floods to [$(floods "" "$vni")] with no port elsewhere"
  pa=$(os port create --network "$net" --host "$NODE_A" --mac-address fa:16:3e:92:00:0a "pa-$TAG" -f value -c id) \
    && pb=$(os port create --network "$net" --host "$NODE_B" --mac-address fa:16:3e:92:00:0b "pb-$TAG" -f value -c id) || fail "$phase" "port create"
  echo "$pa" > "$WORK/pa"; echo "$pb" > "$WORK/pb"
  waitfor 20 ip -n "$HOST_B" link show "$bridge" || fail "$phase" "node B did not wire the network for its port"
  ip -n "$HOST_B" -d link show "vxlan-$vni" | grep -q "local $ADDR_B" || fail "$phase" "B's vxlan-$vni: $(ip -n "$HOST_B" -d link show "vxlan-$vni" 2>&1)"
  # Each guest: a namespace whose eth0 is the peer of a tap on its host's bridge.
  ip netns add "${TAG}ga" && ip netns add "${TAG}gb" || fail "$phase" "guest namespaces"
  ip link add "tap${pa:0:11}" type veth peer name eth0 netns "${TAG}ga" \
    && ip -n "$HOST_B" link add "tap${pb:0:11}" type veth peer name eth0 netns "${TAG}gb" || fail "$phase" "taps"
  ip -n "${TAG}ga" link set eth0 address fa:16:3e:92:00:0a up && ip -n "${TAG}gb" link set eth0 address fa:16:3e:92:00:0b up \
    && ip link set "tap${pa:0:11}" master "$bridge" up && ip -n "$HOST_B" link set "tap${pb:0:11}" master "$bridge" up \
    || fail "$phase" "taps on the bridges"
  waitfor 10 status_is "$pa" ACTIVE && waitfor 10 status_is "$pb" ACTIVE || fail "$phase" "the ports are not ACTIVE"
  ok "a port on each host, ACTIVE once its tap joined the host's bridge"
  waitfor 10 floods_is "" "$vni" "$ADDR_B " && waitfor 10 floods_is "$HOST_B" "$vni" "$ADDR_A " \
    || fail "$phase" "flooding entries: A → [$(floods "" "$vni")], B → [$(floods "$HOST_B" "$vni")]"
  ok "l2 population: A's vxlan-$vni floods to $ADDR_B only, B's to $ADDR_A only"
  a=$(address_of "$pa" 4); b=$(address_of "$pb" 4)
  got=$(lease "${TAG}gb") || fail "$phase" "B's guest got no lease across the tunnel"
  [ "$got" = "ip=$b router=198.18.92.1 mtu=1450" ] || fail "$phase" "B's guest's lease: '$got', expected $b"
  got=$(lease "${TAG}ga") || fail "$phase" "A's guest got no lease"
  [ "$got" = "ip=$a router=198.18.92.1 mtu=1450" ] || fail "$phase" "A's guest's lease: '$got', expected $a"
  ok "B's guest leased $b from A's dnsmasq across the tunnel; A's guest leased $a"
  ip netns exec "${TAG}ga" ping -c 3 -i 0.2 -W 2 "$b" >/dev/null && ip netns exec "${TAG}gb" ping -c 3 -i 0.2 -W 2 "$a" >/dev/null \
    || fail "$phase" "the guests cannot reach each other"
  ok "the guest on A and the guest on B ping each other over VXLAN"
  # IPv6 SLAAC: dnsmasq's router advertisements reach B's guest across the tunnel, and each
  # guest's kernel makes the very EUI-64 address Neutron gave its port.
  a6=$(address_of "$pa" 6); b6=$(address_of "$pb" 6)
  waitfor 30 has_v6 "${TAG}gb" "$b6" && waitfor 10 has_v6 "${TAG}ga" "$a6" \
    || fail "$phase" "no SLAAC address $b6 / $a6: $(ip -n "${TAG}gb" -6 addr show dev eth0 | tr '\n' ' ') / $(ip -n "${TAG}ga" -6 addr show dev eth0 | tr '\n' ' ')"
  ip netns exec "${TAG}ga" ping -6 -c 3 -i 0.2 -W 2 "$b6" >/dev/null || fail "$phase" "the guests cannot reach each other over IPv6"
  ok "IPv6: both guests took their ports' EUI-64 addresses from router advertisements ($a6, $b6) and ping each other"
  ;;
last-port)
  net=$(cat "$WORK/net"); vni=$(cat "$WORK/vni"); pb=$(cat "$WORK/pb"); bridge="brq${net:0:11}"
  ip netns del "${TAG}gb"   # the guest goes (its tap with it), then its port, as Nova does
  os port delete "$pb" || fail "$phase" "port delete"
  waitfor 20 bash -c "! ip -n '$HOST_B' link show '$bridge'" || fail "$phase" "node B kept $bridge after its last port went"
  ! ip -n "$HOST_B" link show "vxlan-$vni" >/dev/null 2>&1 || fail "$phase" "node B kept vxlan-$vni"
  waitfor 20 floods_is "" "$vni" "" || fail "$phase" "A still floods to [$(floods "" "$vni")]"
  ip link show "$bridge" >/dev/null && test -e "/run/netns/qdhcp-$net" || fail "$phase" "A lost its bridge or DHCP namespace"
  ok "the last port on B gone: B removed its bridge and tunnel, A floods to nobody, A keeps the network"
  ;;
cleanup)
  net=$(cat "$WORK/net"); vni=$(cat "$WORK/vni"); pa=$(cat "$WORK/pa")
  ip netns del "${TAG}ga"
  os port delete "$pa" && os subnet delete "ts-$TAG" "ts6-$TAG" && os network delete "$net" || fail "$phase" "delete"
  gone() { ! ip link show "brq${net:0:11}" && ! ip link show "vxlan-$vni" && [ ! -e "/run/netns/qdhcp-$net" ]; }
  waitfor 20 gone || fail "$phase" "node A kept the network's bridge, tunnel or namespace"
  ok "network delete: node A removed its bridge, tunnel and DHCP namespace"
  ;;
esac
echo "phase $phase passed"
