#!/usr/bin/env bash
# Guests on several networks through the unmodified `openstack` CLI, in phases the test
# runs around a node crash:
#   boot   two guests on one network reach each other; a guest on a second network with
#          the same CIDR cannot reach them; `server add network` hot-plugs a NIC that the
#          guest takes a DHCP lease on, answering ping on the new network.
#   after  (the node was killed and restarted meanwhile) everything still answers;
#          `server add port` / `server remove network` plug and unplug a user's port (it
#          stays, unbound); `server remove port` unplugs a NIC Nova made (it goes); clean up.
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), GUEST, TAG, WORK (a directory
# the phases share).
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${GUEST:?}" "${TAG:?}" "${WORK:?}"
phase=${1:?phase}
fail() { echo "FAIL ($phase): $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
waitfor() { local deadline=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 1; done; }
console_has() { "$OSC" --os-cloud petrel console log show "$1" | grep -q -- "$2"; }
markers() { os console log show "$1" | grep -E 'PETREL|PEER|HOTPLUG' | tail -8; }
address_on() { # server network: the server's address on that network
  os port list --server "$1" --network "$2" -f json | python3 -c 'import json,sys; p=json.load(sys.stdin); print(p[0]["Fixed IP Addresses"][0]["ip_address"] if p else "")'
}
save() { echo "$2" > "$WORK/$1"; }
load() { cat "$WORK/$1"; }
macs() { virsh -c qemu:///system domiflist "petrel-$1" | awk 'NR > 2 && $5 {print $5}'; }

case "$phase" in
boot)
  os image create --file "$GUEST" --disk-format qcow2 --container-format bare --public "img-$TAG" >/dev/null || fail "image create"
  os flavor create --vcpus 1 --ram 128 --disk 1 "fl-$TAG" >/dev/null || fail "flavor create"
  # A and B have the same CIDR (pools apart): only the networks keep their guests apart.
  a=$(os network create "a-$TAG" -f value -c id) && b=$(os network create "b-$TAG" -f value -c id) \
    && c=$(os network create "c-$TAG" -f value -c id) || fail "network create"
  os subnet create --network "a-$TAG" --subnet-range 198.18.84.0/24 --allocation-pool start=198.18.84.10,end=198.18.84.100 "sa-$TAG" >/dev/null \
    && os subnet create --network "b-$TAG" --subnet-range 198.18.84.0/24 --allocation-pool start=198.18.84.200,end=198.18.84.250 "sb-$TAG" >/dev/null \
    && os subnet create --network "c-$TAG" --subnet-range 198.18.85.0/24 "sc-$TAG" >/dev/null || fail "subnet create"
  save net-a "$a"; save net-b "$b"; save net-c "$c"
  for net in "$a" "$b" "$c"; do waitfor 30 test -e "/run/netns/qdhcp-$net" || fail "no DHCP namespace for $net"; done

  # vm1 waits for a hot-plugged eth1, takes a lease on it, and says when it is gone again.
  cat > "$WORK/ud-watch" <<'UD'
#!/bin/sh
(
  while [ ! -e /sys/class/net/eth1 ]; do sleep 1; done
  ip link set eth1 up
  if udhcpc -i eth1 -s /etc/udhcpc.script -t 20 -T 2 -A 3 -n -q >/dev/null 2>&1; then
    echo "HOTPLUG-IP=$(ip -4 -o addr show dev eth1 | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p')"
  else
    echo "HOTPLUG-IP=none"
  fi
  while [ -e /sys/class/net/eth1 ]; do sleep 1; done
  echo "HOTPLUG-GONE"
) &
UD
  vm1=$(os server create --image "img-$TAG" --flavor "fl-$TAG" --network "a-$TAG" --user-data "$WORK/ud-watch" --wait "vm1-$TAG" -f value -c id) \
    || fail "server create vm1: $(os server show "vm1-$TAG" -c fault -f value 2>&1)"
  save vm1 "$vm1"
  addr1=$(address_on "$vm1" "$a"); save addr1 "$addr1"
  waitfor 150 console_has "$vm1" PETREL-GUEST-READY || fail "vm1 did not come up: $(markers "$vm1")"
  console_has "$vm1" "PETREL-GUEST-IP=$addr1" || fail "vm1's lease is not $addr1: $(markers "$vm1")"
  ok "vm1 on a-$TAG has its lease ($addr1)"

  # vm2 (same network) and vm3 (network B, same CIDR) try to ping vm1.
  printf '#!/bin/sh\nfor i in $(seq 1 %s); do if ping -c 1 -W 1 %s >/dev/null 2>&1; then echo PEER-PING-OK; exit 0; fi; sleep 1; done\necho PEER-PING-FAIL\n' \
    15 "$addr1" > "$WORK/ud-peer"
  printf '#!/bin/sh\nfor i in $(seq 1 %s); do if ping -c 1 -W 1 %s >/dev/null 2>&1; then echo PEER-PING-OK; exit 0; fi; sleep 1; done\necho PEER-PING-FAIL\n' \
    5 "$addr1" > "$WORK/ud-stranger"
  vm2=$(os server create --image "img-$TAG" --flavor "fl-$TAG" --network "a-$TAG" --user-data "$WORK/ud-peer" "vm2-$TAG" -f value -c id) \
    && vm3=$(os server create --image "img-$TAG" --flavor "fl-$TAG" --network "b-$TAG" --user-data "$WORK/ud-stranger" "vm3-$TAG" -f value -c id) \
    || fail "server create vm2/vm3"
  save vm2 "$vm2"; save vm3 "$vm3"
  waitfor 180 console_has "$vm2" PETREL-GUEST-READY || fail "vm2 did not come up: $(markers "$vm2")"
  waitfor 180 console_has "$vm3" PETREL-GUEST-READY || fail "vm3 did not come up: $(markers "$vm3")"
  console_has "$vm2" PEER-PING-OK || fail "vm2 cannot reach vm1 on their network: $(markers "$vm2")"
  addr3=$(address_on "$vm3" "$b")
  case "$addr3" in 198.18.84.2[0-5][0-9]) ;; *) fail "vm3 has no address from b's pool: $addr3" ;; esac
  console_has "$vm3" "PETREL-GUEST-IP=$addr3" && console_has "$vm3" "PETREL-GUEST-METADATA-OK uuid=$vm3" \
    || fail "vm3 is not up on its own network: $(markers "$vm3")"
  console_has "$vm3" PEER-PING-FAIL || fail "vm3 reached vm1 across networks: $(markers "$vm3")"
  ok "vm2 pings vm1 on a-$TAG; vm3 on b-$TAG (same CIDR, up with $addr3) cannot reach it"

  # Hot-plug: a NIC on c, the guest's DHCP lease on it is Neutron's address.
  os server add network "$vm1" "c-$TAG" || fail "server add network"
  addrc=$(address_on "$vm1" "$c"); save addrc "$addrc"
  case "$addrc" in 198.18.85.*) ;; *) fail "no port of vm1 on c-$TAG: '$addrc'" ;; esac
  [ "$(macs "$vm1" | wc -l)" = 2 ] || fail "the domain has not two NICs: $(macs "$vm1")"
  waitfor 60 console_has "$vm1" HOTPLUG-IP= || fail "the guest saw no hot-plugged NIC: $(markers "$vm1")"
  console_has "$vm1" "HOTPLUG-IP=$addrc" || fail "the hot-plugged NIC's lease is not $addrc: $(markers "$vm1")"
  os server show "$vm1" -f json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["addresses"] == {"a-'"$TAG"'": ["'"$addr1"'"], "c-'"$TAG"'": ["'"$addrc"'"]}, s["addresses"]' || fail "server show addresses after the attach"
  os server show "$vm1" -f json >/dev/null
  [ "$(os port show "$(os port list --server "$vm1" --network "$c" -f value -c ID)" -f value -c status)" = ACTIVE ] || fail "the hot-plugged port is not ACTIVE"
  ip netns exec "qdhcp-$c" ping -c 2 -W 2 "$addrc" >/dev/null || fail "vm1 does not answer on c-$TAG"
  ok "server add network: a second NIC, leased $addrc, ACTIVE, answering ping on c-$TAG"
  echo "phase boot passed"
  ;;
after)
  vm1=$(load vm1); vm2=$(load vm2); vm3=$(load vm3); a=$(load net-a); c=$(load net-c); addr1=$(load addr1); addrc=$(load addrc)
  ip netns exec "qdhcp-$a" ping -c 2 -W 2 "$addr1" >/dev/null && ip netns exec "qdhcp-$c" ping -c 2 -W 2 "$addrc" >/dev/null \
    || fail "vm1 stopped answering after the node's restart"
  for vm in "$vm1" "$vm2" "$vm3"; do
    [ "$(os server show "$vm" -f value -c status)" = ACTIVE ] || fail "$vm is not ACTIVE after the restart"
  done
  for port in $(os port list --device-owner compute:nova -f value -c ID); do
    [ "$(os port show "$port" -f value -c status)" = ACTIVE ] || fail "port $port is not ACTIVE after the restart"
  done
  ok "after the node's restart every guest answers and every port is ACTIVE"

  # Refusals change nothing: another server's port, a network that does not exist.
  port1=$(os port list --server "$vm1" --network "$a" -f value -c ID)
  out=$(os server add port "$vm2" "$port1" 2>&1) && fail "server add port took vm1's port"
  grep -q "still in use" <<<"$out" || fail "no 'in use' refusal: $out"
  out=$(os server add network "$vm2" 00000000-0000-4000-8000-000000000000 2>&1) && fail "server add network took a network that does not exist"
  [ "$(macs "$vm2" | wc -l)" = 1 ] && [ "$(os port show "$port1" -f value -c device_id)" = "$vm1" ] || fail "a refused attach changed something"
  ok "server add port of a port in use, add network of no network: refused, nothing changed"

  # A user's port, plugged into vm2 and unplugged by network: it stays, unbound.
  port=$(os port create --network "c-$TAG" "up-$TAG" -f value -c id) || fail "port create"
  mac=$(os port show "$port" -f value -c mac_address)
  os server add port "$vm2" "$port" || fail "server add port"
  macs "$vm2" | grep -q "$mac" || fail "vm2's domain has no NIC $mac: $(macs "$vm2")"
  [ "$(os port show "$port" -f value -c device_id)" = "$vm2" ] || fail "the port is not vm2's"
  waitfor 20 bash -c "[ \"\$('$OSC' --os-cloud petrel port show $port -f value -c status)\" = ACTIVE ]" || fail "the user's port is not ACTIVE"
  os server remove network "$vm2" "c-$TAG" || fail "server remove network"
  ! macs "$vm2" | grep -q "$mac" || fail "vm2's domain still has NIC $mac"
  [ -z "$(os port show "$port" -f value -c device_id)" ] || fail "the user's port is still bound after the detach"
  ok "server add port / remove network: the user's port is plugged, unplugged, and kept"

  # The NIC Nova made for vm1: unplugged, the guest sees it go, the port is deleted.
  portc=$(os port list --server "$vm1" --network "$c" -f value -c ID)
  os server remove port "$vm1" "$portc" || fail "server remove port"
  [ "$(macs "$vm1" | wc -l)" = 1 ] || fail "vm1's domain kept the NIC: $(macs "$vm1")"
  waitfor 30 console_has "$vm1" HOTPLUG-GONE || fail "the guest did not see its NIC go: $(markers "$vm1")"
  ! os port show "$portc" >/dev/null 2>&1 || fail "the port Nova made for the attach outlived its detach"
  os server show "$vm1" -f value -c addresses | grep -q "c-$TAG" && fail "vm1 still shows an address on c-$TAG"
  ok "server remove port: the NIC is gone from the domain and the guest, its port deleted"

  os server delete --wait "$vm1" "$vm2" "$vm3" || fail "server delete"
  os port delete "$port" || fail "port delete"
  for s in a b c; do os subnet delete "s$s-$TAG" && os network delete "$s-$TAG" || fail "network delete $s"; done
  os flavor delete "fl-$TAG"; os image delete "img-$TAG"
  echo "phase after passed"
  ;;
esac
