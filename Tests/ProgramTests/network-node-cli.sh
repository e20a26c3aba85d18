#!/usr/bin/env bash
# The node's network service through the unmodified `openstack` CLI and the real kernel:
#   network-node-cli.sh wire      agents alive; a network with a DHCP subnet gets its bridge, VXLAN device,
#                                 qdhcp- namespace and dnsmasq on the node; a port bound to the node goes
#                                 ACTIVE when its tap joins the bridge, and its "guest" (a test namespace)
#                                 gets exactly the port's address, router and MTU by DHCP
#   network-node-cli.sh adopted   after kill -9 and a restart of the node: the same dnsmasq serves, no duplicate
#   network-node-cli.sh cleanup   ports and network deleted: the node removes the bridge, tunnel and namespace
#   network-node-cli.sh down      the node is stopped: its agents are reported dead
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), NODE, STATE (the node's state_path), WORK (a scratch directory).
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${NODE:?}" "${STATE:?}" "${WORK:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
waitfor() { # waitfor SECONDS COMMAND...: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.2; done
}
guest=$(cat "$WORK/guest-ns" 2>/dev/null || echo "pt-guest-$RANDOM$RANDOM")

agents_alive() { # the node's L2 and DHCP agents, alive or not: "Linux bridge agent:True DHCP agent:True"
  os network agent list --host "$NODE" -f json | python3 -c '
import json, sys
print(" ".join(sorted("%s:%s" % (a["Agent Type"], a["Alive"]) for a in json.load(sys.stdin))))'
}

export -f os agents_alive
alive_is() { [ "$(agents_alive)" = "$1" ]; }
status_is() { [ "$(os port show "$1" -f value -c status)" = "$2" ]; }
export -f alive_is status_is

case "$1" in
  wire)
    waitfor 20 alive_is 'DHCP agent:True Linux bridge agent:True' || fail "the node's agents: $(agents_alive)"
    ok "network agent list: the node's Linux bridge and DHCP agents are alive"
    net=$(os network create node-net -f json | field id) || fail "network create"
    vni=$(os network show "$net" -f json | field provider:segmentation_id)
    os subnet create --network node-net --subnet-range 198.18.70.0/24 --dns-nameserver 198.18.70.53 node-v4 >/dev/null || fail "subnet create"
    bridge="brq${net:0:11}"
    waitfor 15 test -e "/run/netns/qdhcp-$net" || fail "no qdhcp-$net namespace on the node"
    waitfor 15 test -s "$STATE/dhcp/$net/pid" || fail "no dnsmasq for $net"
    ip link show "$bridge" >/dev/null || fail "no bridge $bridge"
    ip -d link show "vxlan-$vni" | grep -q "vxlan id $vni" || fail "no vxlan-$vni: $(ip -d link show "vxlan-$vni" 2>&1)"
    [ "$(cat /sys/class/net/vxlan-$vni/master/ifindex 2>/dev/null)" = "$(cat /sys/class/net/$bridge/ifindex)" ] || fail "vxlan-$vni is not on $bridge"
    dhcp_port=$(os port list --network node-net --device-owner network:dhcp -f value -c ID)
    [ -n "$dhcp_port" ] || fail "no DHCP port on the network"
    waitfor 15 status_is "$dhcp_port" ACTIVE || fail "the DHCP port is not ACTIVE"
    ok "the node wired the network: $bridge, vxlan-$vni on it, qdhcp-$net with dnsmasq, the DHCP port ACTIVE"

    port=$(os port create --network node-net --host "$NODE" --mac-address fa:16:3e:70:00:01 guest-port -f json | field id) || fail "port create --host"
    address=$(os port show "$port" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fixed_ips"][0]["ip_address"])')
    [ "$(os port show "$port" -f value -c status)" = DOWN ] || fail "the port is ACTIVE before its tap exists"
    # The guest's side: a tap named as Nova's would be, on the bridge, its peer in a test namespace.
    tap="tap${port:0:11}"
    ip netns add "$guest" && echo "$guest" > "$WORK/guest-ns"
    ip link add "$tap" type veth peer name eth0 netns "$guest" || fail "veth"
    ip -n "$guest" link set eth0 address fa:16:3e:70:00:01 up && ip -n "$guest" link set lo up
    ip link set "$tap" master "$bridge" up || fail "tap on the bridge"
    waitfor 5 status_is "$port" ACTIVE || fail "the port did not go ACTIVE"
    ok "port create --host: DOWN until its tap joined $bridge, then ACTIVE"
    printf '#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip router=$router mtu=$mtu dns=$dns" > %s\nexit 0\n' "$WORK/lease" > "$WORK/udhcpc.sh"
    chmod +x "$WORK/udhcpc.sh"
    ip netns exec "$guest" busybox udhcpc -i eth0 -n -q -t 30 -T 1 -s "$WORK/udhcpc.sh" >/dev/null 2>&1 || fail "no DHCP lease in the guest"
    grep -q "ip=$address router=198.18.70.1 mtu=1450 dns=198.18.70.53" "$WORK/lease" || fail "the lease: $(cat "$WORK/lease"), expected $address"
    ok "DHCP: the guest got $address, router 198.18.70.1, MTU 1450, DNS 198.18.70.53"
    cat "$STATE/dhcp/$net/pid" > "$WORK/dnsmasq-pid"
    echo "$net" > "$WORK/net"
    ;;
  adopted)
    net=$(cat "$WORK/net")
    waitfor 20 alive_is 'DHCP agent:True Linux bridge agent:True' || fail "agents after the restart: $(agents_alive)"
    [ "$(cat "$STATE/dhcp/$net/pid")" = "$(cat "$WORK/dnsmasq-pid")" ] || fail "dnsmasq was replaced"
    [ "$(pgrep -c -f "dnsmasq.*$net")" = 1 ] || fail "dnsmasq processes for $net: $(pgrep -a -f "dnsmasq.*$net")"
    rm -f "$WORK/lease"
    ip netns exec "$guest" busybox udhcpc -i eth0 -n -q -t 30 -T 1 -s "$WORK/udhcpc.sh" >/dev/null 2>&1 || fail "no lease after the restart"
    ok "after kill -9 and restart: the same dnsmasq (pid $(cat "$WORK/dnsmasq-pid")), one of it, still serving"
    ;;
  cleanup)
    net=$(cat "$WORK/net")
    vni=$(os network show "$net" -f json | field provider:segmentation_id)
    if os network delete "$net" >/dev/null 2>&1; then fail "a network with a port was deleted"; fi
    os port delete guest-port || fail "port delete"
    os network delete "$net" || fail "network delete"
    waitfor 15 bash -c "! test -e /run/netns/qdhcp-$net" || fail "qdhcp-$net is still there"
    waitfor 15 bash -c "! ip link show brq${net:0:11}" || fail "brq${net:0:11} is still there"
    ! ip link show "vxlan-$vni" >/dev/null 2>&1 || fail "vxlan-$vni is still there"
    ! pgrep -f "dnsmasq.*$net" >/dev/null || fail "dnsmasq for $net still runs"
    ip netns del "$guest" 2>/dev/null; rm -f "$WORK/guest-ns"
    ok "network delete: the node removed the bridge, the tunnel, the namespace and dnsmasq"
    ;;
  down)
    waitfor 20 alive_is 'DHCP agent:False Linux bridge agent:False' || fail "agents of a stopped node: $(agents_alive)"
    ok "the stopped node's agents are dead"
    ;;
esac
echo "phase $1 passed"
