#!/usr/bin/env bash
# Neutron's core API through the unmodified `openstack` CLI: networks (project VXLAN, flat and
# VXLAN provider networks), IPv4 and IPv6 subnets, ports with chosen and allocated addresses,
# filters, --long, tags, IP availability, extensions, quotas, and the refusals (a network in
# use, an address taken, a full subnet). Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin).
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-network-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
# check FILE PYTHON: run assertions on the JSON in FILE (as `j`).
check() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); $2" "$1"; }

os network create cli-net --tag blue -f json > "$work/net.json" || fail "network create"
check "$work/net.json" '
assert j["status"] == "ACTIVE" and j["mtu"] == 1450, j
assert j["provider:network_type"] == "vxlan" and isinstance(j["provider:segmentation_id"], int), j
assert j["tags"] == ["blue"] and j["router:external"] is False, j' || fail "the new network: $(cat "$work/net.json")"
ok "network create: a VXLAN project network with a VNI from the ranges, MTU 1450"

os network create --provider-network-type flat --provider-physical-network physnet-cli --share cli-flat -f json > "$work/flat.json" \
  || fail "network create --provider-network-type flat"
check "$work/flat.json" 'assert j["provider:network_type"] == "flat" and j["mtu"] == 1500 and j["shared"] is True, j' \
  || fail "the flat network: $(cat "$work/flat.json")"
os network create --provider-network-type vxlan --provider-segment 4000 cli-vx -f json > "$work/vx.json" || fail "network create vxlan 4000"
check "$work/vx.json" 'assert j["provider:segmentation_id"] == 4000, j' || fail "the VXLAN network: $(cat "$work/vx.json")"
if os network create --provider-network-type vxlan --provider-segment 4000 cli-vx2 >"$work/err" 2>&1; then fail "a second network on VNI 4000 was created"; fi
grep -q "4000 is in use" "$work/err" || fail "the refusal does not say why: $(cat "$work/err")"
ok "provider networks: flat (shared, MTU 1500), VXLAN 4000; a second VNI 4000 refused"

os subnet create --network cli-net --subnet-range 198.18.60.0/24 --dns-nameserver 198.18.60.53 \
  --allocation-pool start=198.18.60.10,end=198.18.60.12 --host-route destination=198.18.99.0/24,gateway=198.18.60.254 cli-v4 -f json \
  > "$work/v4.json" || fail "subnet create (IPv4)"
check "$work/v4.json" '
assert j["gateway_ip"] == "198.18.60.1" and j["enable_dhcp"] is True and j["ip_version"] == 4, j
pools = j["allocation_pools"]; pools = pools if isinstance(pools, list) else [pools]
assert "198.18.60.10" in str(pools) and "198.18.60.12" in str(pools), j
assert "198.18.60.53" in str(j["dns_nameservers"]) and "198.18.99.0/24" in str(j["host_routes"]), j' || fail "the IPv4 subnet: $(cat "$work/v4.json")"
os subnet create --network cli-net --ip-version 6 --subnet-range fd00:60::/64 --ipv6-ra-mode slaac --ipv6-address-mode slaac cli-v6 -f json \
  > "$work/v6.json" || fail "subnet create (IPv6 SLAAC)"
check "$work/v6.json" 'assert j["ipv6_address_mode"] == "slaac" and j["gateway_ip"] == "fd00:60::1", j' || fail "the IPv6 subnet: $(cat "$work/v6.json")"
if os subnet create --network cli-net --subnet-range 198.18.60.128/25 cli-overlap >"$work/err" 2>&1; then fail "an overlapping subnet was created"; fi
grep -q "overlaps" "$work/err" || fail "the overlap refusal: $(cat "$work/err")"
ok "subnet create: IPv4 with pool, DNS and routes; IPv6 SLAAC; an overlapping range refused"

os port create --network cli-net --fixed-ip subnet=cli-v4,ip-address=198.18.60.11 --dns-name web cli-port -f json > "$work/port.json" \
  || fail "port create --fixed-ip"
check "$work/port.json" '
ips = [f["ip_address"] for f in j["fixed_ips"]]
assert "198.18.60.11" in ips and any(ip.startswith("fd00:60::") and "ff:fe" in ip for ip in ips), ips
assert j["status"] == "DOWN" and j["mac_address"].startswith("fa:16:3e:") and j["binding_vif_type"] == "unbound", j' \
  || fail "the port: $(cat "$work/port.json")"
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/port.json")
os port create --network cli-net cli-port-b -f json > "$work/portb.json" || fail "port create (allocated)"
check "$work/portb.json" 'assert "198.18.60.10" in [f["ip_address"] for f in j["fixed_ips"]], j["fixed_ips"]' \
  || fail "the allocated address: $(cat "$work/portb.json")"
if os port create --network cli-net --fixed-ip ip-address=198.18.60.11 cli-taken >"$work/err" 2>&1; then fail "a held address was given twice"; fi
grep -q "already allocated" "$work/err" || fail "the taken-address refusal: $(cat "$work/err")"
os port create --network cli-net cli-port-c >/dev/null || fail "port create (the last address)"
if os port create --network cli-net cli-full >"$work/err" 2>&1; then fail "a port was created on a full subnet"; fi
grep -q "No more IP addresses available" "$work/err" || fail "the exhaustion refusal: $(cat "$work/err")"
[ "$(os port list --network cli-net -f value -c ID | wc -l)" = 3 ] || fail "a refused port was left behind: $(os port list --network cli-net)"
ok "port create: a chosen and an allocated address, EUI-64 on SLAAC; a held address and a full pool refused, nothing left behind"

os port list --fixed-ip ip-address=198.18.60.11 -f value -c ID > "$work/by-ip" || fail "port list --fixed-ip"
[ "$(cat "$work/by-ip")" = "$port" ] || fail "port list --fixed-ip ip-address=198.18.60.11: $(cat "$work/by-ip")"
os port list --long --network cli-net -f json > "$work/long.json" || fail "port list --long"
check "$work/long.json" 'assert len(j) == 3 and all("Status" in p for p in j), j' || fail "port list --long: $(cat "$work/long.json")"
os port set --name cli-port-renamed --description "the web port" cli-port || fail "port set"
os port show cli-port-renamed -f json > "$work/shown.json" || fail "port show"
check "$work/shown.json" 'assert j["description"] == "the web port" and j["revision_number"] == 2, j' || fail "port show: $(cat "$work/shown.json")"
ok "port list --fixed-ip and --long, port set, port show"

os network list --long -f json > "$work/networks.json" || fail "network list --long"
check "$work/networks.json" '
names = {n["Name"]: n for n in j}
assert {"cli-net", "cli-flat", "cli-vx"} <= set(names), names
assert names["cli-flat"]["Network Type"] == "flat" and names["cli-net"]["Network Type"] == "vxlan", names' || fail "network list --long: $(cat "$work/networks.json")"
[ "$(os network list --provider-network-type flat -f value -c Name)" = cli-flat ] || fail "network list --provider-network-type flat"
[ "$(os network list --tags blue -f value -c Name)" = cli-net ] || fail "network list --tags blue"
[ "$(os subnet list --network cli-net -f value -c Name | sort | tr '\n' ' ')" = "cli-v4 cli-v6 " ] || fail "subnet list --network"
[ "$(os subnet list --ip-version 6 -f value -c Name)" = cli-v6 ] || fail "subnet list --ip-version 6"
ok "network list --long, filters by type and tag; subnet list by network and version"

os ip availability show cli-net -f json > "$work/availability.json" || fail "ip availability show"
check "$work/availability.json" '
subnets = j["subnet_ip_availability"]; subnets = subnets if isinstance(subnets, list) else [subnets]
v4 = [s for s in subnets if s["ip_version"] == 4][0]
assert v4["total_ips"] == 3 and v4["used_ips"] == 3, subnets' || fail "ip availability show: $(cat "$work/availability.json")"
os extension list --network -f json > "$work/extensions.json" || fail "extension list --network"
check "$work/extensions.json" '
aliases = {e["Alias"] for e in j}
assert {"provider", "external-net", "binding", "quotas", "standard-attr-tag", "security-group", "router", "extraroute"} <= aliases, aliases
assert not aliases & {"l3-ha", "dvr", "qos", "trunk"}, aliases' || fail "extension list --network: $(cat "$work/extensions.json")"
os quota set --networks 7 admin || fail "quota set --networks"
os quota show --network admin -f json > "$work/quota.json" || fail "quota show --network"
check "$work/quota.json" '
rows = {r["Resource"]: r["Limit"] for r in j} if isinstance(j, list) else j
assert rows.get("networks") == 7 and rows.get("ports") == 500, rows' || fail "quota show --network: $(cat "$work/quota.json")"
ok "ip availability show, extension list --network, quota set/show --network"

if os network delete cli-net >"$work/err" 2>&1; then fail "a network with ports was deleted"; fi
for name in cli-port-renamed cli-port-b cli-port-c; do os port delete "$name" || fail "port delete $name"; done
os subnet delete cli-v6 || fail "subnet delete"
os network delete cli-net cli-flat cli-vx || fail "network delete"
[ -z "$(os network list -f value -c ID)" ] || fail "networks left: $(os network list)"
ok "a network in use refused deletion; ports, subnet and networks deleted"
echo "network CLI checks passed"
