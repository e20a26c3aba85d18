#!/usr/bin/env bash
# A real guest on a real network through the unmodified `openstack` CLI: `server create
# --network` makes the port on the chosen host, the node wires the network before the domain
# starts, the guest's DHCP lease is the address Neutron allocated, the port goes ACTIVE, the
# guest answers ping and HTTP from the network's qdhcp- namespace; deleting the server deletes
# the port Nova made. Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), GUEST (the test
# guest's qcow2), TAG (unique names).
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${GUEST:?}" "${TAG:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
waitfor() { local deadline=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.5; done; }

os image create --file "$GUEST" --disk-format qcow2 --container-format bare --public "img-$TAG" >/dev/null || fail "image create"
os flavor create --vcpus 1 --ram 128 --disk 1 "fl-$TAG" >/dev/null || fail "flavor create"
net=$(os network create "net-$TAG" -f value -c id) || fail "network create"
os subnet create --network "net-$TAG" --subnet-range 198.18.80.0/24 "sub-$TAG" >/dev/null || fail "subnet create"
waitfor 20 test -e "/run/netns/qdhcp-$net" || fail "the node serves no DHCP for the network"

work=$(mktemp -d /tmp/petrel-server-network.XXXXXX)
trap 'rm -rf "$work"' EXIT
os keypair create --public-key <(ssh-keygen -q -t ed25519 -N "" -f "$work/key" && cat "$work/key.pub") "key-$TAG" >/dev/null || fail "keypair create"
# The guest's user data reads its public key back, and tries to pass for another instance.
cat > "$work/user-data" <<'UD'
#!/bin/sh
echo "NETMAC=$(wget -q -O - http://169.254.169.254/openstack/latest/network_data.json | sed -n 's/.*"ethernet_mac_address": *"\([^"]*\)".*/\1/p')"
echo "KEY=$(wget -q -O - http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key)"
echo "SPOOF=$(wget -q -O - --header 'X-Instance-ID: 00000000-0000-0000-0000-000000000000' --header 'X-Tenant-ID: other' http://169.254.169.254/openstack/latest/meta_data.json | sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p')"
UD
server=$(os server create --image "img-$TAG" --flavor "fl-$TAG" --network "net-$TAG" --key-name "key-$TAG" --user-data "$work/user-data" \
  --wait "vm-$TAG" -f value -c id) \
  || fail "server create --network --wait: $(os server show "vm-$TAG" -c fault -f value 2>&1)"
address=$(os port list --server "$server" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Fixed IP Addresses"][0]["ip_address"])') \
  || fail "port list --server"
case "$address" in 198.18.80.*) ;; *) fail "the server's port has no address on the subnet: $address" ;; esac
os server show "$server" -f json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["status"] == "ACTIVE", s["status"]
assert s["addresses"] == {"net-'"$TAG"'": ["'"$address"'"]}, s["addresses"]' || fail "server show addresses: $(os server show "$server" -c addresses -f value)"
ok "server create --network: ACTIVE, addresses net-$TAG=$address"

waitfor 90 bash -c "'$OSC' --os-cloud petrel console log show '$server' | grep -q 'PETREL-GUEST-IP='" || fail "the guest printed no address: $(os console log show "$server" | tail -5)"
os console log show "$server" | grep -q "PETREL-GUEST-IP=$address" || fail "the guest's DHCP address is not Neutron's $address: $(os console log show "$server" | grep PETREL)"
ok "the guest's DHCP lease is the address Neutron allocated ($address)"
port=$(os port list --server "$server" -f value -c ID)
waitfor 20 bash -c "[ \"\$('$OSC' --os-cloud petrel port show $port -f value -c status)\" = ACTIVE ]" || fail "the port is not ACTIVE"
ok "the server's port is ACTIVE"
waitfor 120 bash -c "'$OSC' --os-cloud petrel console log show '$server' | grep -q 'PETREL-USERDATA-END'" \
  || fail "the guest did not run its user data: $(os console log show "$server" | grep PETREL)"
console=$(os console log show "$server")
grep -q "PETREL-GUEST-METADATA-OK uuid=$server" <<<"$console" || fail "no metadata: $(grep PETREL <<<"$console")"
grep -q "KEY=$(cut -d' ' -f1,2 "$work/key.pub")" <<<"$console" || fail "the user data did not read the key pair: $(grep -A3 USERDATA-BEGIN <<<"$console")"
mac=$(os port show "$port" -f value -c mac_address)
grep -q "NETMAC=$mac" <<<"$console" || fail "network_data.json does not describe the guest's NIC $mac: $(grep NETMAC <<<"$console")"
grep -q "SPOOF=$server" <<<"$console" || fail "spoofed headers changed what the guest reads: $(grep SPOOF <<<"$console")"
ok "metadata: the guest read its uuid and its NIC in network_data.json, its user data ran and read its public key; spoofed headers still name the guest itself"
ip netns exec "qdhcp-$net" ping -c 3 -W 2 "$address" >/dev/null || fail "the guest does not answer ping from qdhcp-$net"
page=$(ip netns exec "qdhcp-$net" curl -s --max-time 5 "http://$address/") || fail "no HTTP answer from the guest"
[ -n "$page" ] || fail "the guest's page is empty"
ok "from qdhcp-$net the guest answers ping and HTTP ($page)"

os server delete --wait "$server" || fail "server delete"
[ -z "$(os port list --network "net-$TAG" --device-owner compute:nova -f value -c ID)" ] || fail "the port Nova made outlived the server"
ok "server delete: the port Nova made is gone"
os subnet delete "sub-$TAG" && os network delete "net-$TAG" || fail "network delete"
os flavor delete "fl-$TAG"; os image delete "img-$TAG"; os keypair delete "key-$TAG"
echo "server network CLI checks passed"
