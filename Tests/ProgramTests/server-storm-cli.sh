#!/usr/bin/env bash
# Ten guests on two networks, the node killed (-9) while they boot (the test does that
# between the phases):
#   launch  two networks, five servers on each, not waited for;
#   check   after the node's restart: all ACTIVE, each guest with Neutron's address and its
#           metadata; one dnsmasq per network; each network's bridge holds exactly the taps
#           of its ports; deleting everything leaves no bridge and no namespace.
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), GUEST, TAG, WORK.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${GUEST:?}" "${TAG:?}" "${WORK:?}"
phase=${1:?phase}
fail() { echo "FAIL ($phase): $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
waitfor() { local deadline=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 2; done; }

case "$phase" in
launch)
  os image create --file "$GUEST" --disk-format qcow2 --container-format bare --public "img-$TAG" >/dev/null || fail "image create"
  os flavor create --vcpus 1 --ram 128 --disk 1 "fl-$TAG" >/dev/null || fail "flavor create"
  for n in 1 2; do
    net=$(os network create "s$n-$TAG" -f value -c id) || fail "network create"
    os subnet create --network "$net" --subnet-range "198.18.8$((5 + n)).0/24" "ss$n-$TAG" >/dev/null || fail "subnet create"
    echo "$net" >> "$WORK/nets"
  done
  for n in 1 2; do
    os server create --image "img-$TAG" --flavor "fl-$TAG" --network "s$n-$TAG" --min 5 --max 5 "st$n-$TAG" >/dev/null || fail "server create s$n"
  done
  echo "phase launch passed"
  ;;
check)
  all_active() { [ "$(os server list --name "^st[12]-$TAG" -f value -c Status | grep -c '^ACTIVE$')" = 10 ]; }
  waitfor 300 all_active || fail "not all ten servers are ACTIVE: $(os server list --name "^st[12]-$TAG" -f value -c Name -c Status | tr '\n' ';')"
  servers=$(os server list --name "^st[12]-$TAG" -f value -c ID)
  ok "all ten servers ACTIVE after the node's kill -9 and restart"
  for id in $servers; do
    address=$(os port list --server "$id" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Fixed IP Addresses"][0]["ip_address"])')
    ready() { os console log show "$id" | grep -q PETREL-GUEST-READY; }
    waitfor 240 ready || fail "$id did not come up: $(os console log show "$id" | grep PETREL | tr '\n' ';')"
    console=$(os console log show "$id")
    grep -q "PETREL-GUEST-IP=$address" <<<"$console" && grep -q "PETREL-GUEST-METADATA-OK uuid=$id" <<<"$console" \
      || fail "$id has not its lease $address or its metadata: $(grep PETREL <<<"$console" | tr '\n' ';')"
  done
  ok "every guest has Neutron's address and its own metadata"
  for net in $(cat "$WORK/nets"); do
    count=$(pgrep -fc "dnsmasq.*$net")
    [ "$count" = 1 ] || fail "$count dnsmasq processes serve $net"
    bridge="brq${net:0:11}"
    on_bridge=$(ls "/sys/class/net/$bridge/brif" | grep -v '^vxlan-' | sort)
    expected=$(os port list --network "$net" -f value -c ID | cut -c1-11 | sed 's/^/tap/' | sort)
    [ "$on_bridge" = "$expected" ] || fail "$bridge holds [$(echo $on_bridge)], its ports are [$(echo $expected)]"
  done
  ok "one dnsmasq per network; each bridge holds exactly its ports' taps"
  os server delete --wait $servers || fail "server delete"
  for n in 1 2; do os subnet delete "ss$n-$TAG" && os network delete "s$n-$TAG" || fail "network delete"; done
  for net in $(cat "$WORK/nets"); do
    gone() { [ ! -e "/sys/class/net/brq${net:0:11}" ] && [ ! -e "/run/netns/qdhcp-$net" ]; }
    waitfor 20 gone || fail "the bridge or namespace of $net outlived the network"
  done
  ok "deleting the servers and networks leaves no bridge and no namespace"
  os flavor delete "fl-$TAG"; os image delete "img-$TAG"
  echo "phase check passed"
  ;;
esac
