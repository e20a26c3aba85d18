#!/usr/bin/env bash
# Scheduling across three nodes (libvirt's test driver): 30 servers created concurrently
# are spread by the free-RAM weigher, no host goes over its capacity, and each server's
# host is where libvirt runs it (the hypervisor's running_vms is libvirt's own count).
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), PETREL_URL, GUEST, HOSTS
# (the three host names, space-separated). Phase `dead-host` (after the first host's node was
# killed): a server placed there before the host counts as down is built elsewhere.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${PETREL_URL:?}" "${GUEST:?}" "${HOSTS:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-scheduling-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ "${1:-}" = dead-host ]; then
  dead=${HOSTS%% *}
  # Every host is empty: the weigher's tie goes to the first host name, whose node is dead
  # but not yet reported down. The build must not stay there.
  os server create --image sched-image --flavor sched.small --nic none --wait orphan -f json > "$work/orphan.json" ||
    fail "the server placed on a dead host did not become ACTIVE: $(os server show orphan -c status -c fault -f value)"
  host=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["OS-EXT-SRV-ATTR:host"])' "$work/orphan.json")
  [ -n "$host" ] && [ "$host" != "$dead" ] || fail "the server is on $host (dead: $dead)"
  os server delete --wait orphan && os image delete sched-image && os flavor delete sched.small || fail "cleanup"
  ok "a build placed on a host that died is taken back and built on $host"
  echo "dead-host passed"
  exit 0
fi

image=$(os image create --file "$GUEST" --disk-format qcow2 --public sched-image -f value -c id) || fail "image create"
flavor=$(os flavor create --vcpus 1 --ram 256 --disk 1 sched.small -f value -c id) || fail "flavor create"
project=$(os project show admin -f value -c id)
os quota set --instances 100 --cores 100 --ram 100000 "$project" || fail "quota set"
token=$(os token issue -f value -c id) || fail "token issue"

# 30 POST /servers at once.
for i in $(seq 1 30); do
  curl -s -D "$work/headers-$i" -o "$work/post-$i" -w '%{http_code}\n' -X POST "$PETREL_URL/compute/v2.1/servers" -H "X-Auth-Token: $token" \
    -H "Content-Type: application/json" -H "OpenStack-API-Version: compute 2.87" \
    -d "{\"server\": {\"name\": \"sched-$i\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\"}}" \
    > "$work/status-$i" &
done
wait
[ "$(cat "$work"/status-* | sort | uniq -c | awk '{print $1" "$2}')" = "30 202" ] || fail "POST statuses: $(cat "$work"/status-* | sort | uniq -c)"
ok "30 concurrent POST /servers → 202"
# The request id the API answered with, which the controller and the node log with the build.
echo "REQUEST-ID $(sed -n 's/^[Xx]-[Oo]pen[Ss]tack-[Rr]equest-[Ii]d: *//p' "$work/headers-1" | tr -d '\r')"
for ((i = 0; i < 60; i++)); do
  active=$(os server list --status ACTIVE -f value -c ID | wc -l)
  [ "$active" = 30 ] && break
  sleep 0.5
done
if [ "$active" != 30 ]; then
  for id in $(os server list -f value -c ID -c Status | awk '$2 != "ACTIVE" {print $1}'); do
    os server show "$id" -f value -c name -c status -c OS-EXT-STS:task_state -c OS-EXT-SRV-ATTR:host -c fault | tr '\n' ' ' >&2; echo >&2
  done
  fail "only $active of 30 servers ACTIVE"
fi
ok "all 30 ACTIVE"

# The body of GET /servers/{id} and /servers/detail at 2.87 has the fields of Nova's API
# sample (2.73, the newest with a server; security_groups comes with ports, i.e. networking).
one=$(os server list -f value -c ID | head -1)
for path in "/servers/$one" "/servers/detail"; do
  curl -sf "$PETREL_URL/compute/v2.1$path" -H "X-Auth-Token: $token" -H "OpenStack-API-Version: compute 2.87" > "$work/shape.json" ||
    fail "GET $path"
  python3 - "$work/shape.json" "$path" <<'PY' || fail "fields of GET $path"
import json, sys
body = json.load(open(sys.argv[1]))
server = body["server"] if "server" in body else body["servers"][0]
sample = set("""OS-DCF:diskConfig OS-EXT-AZ:availability_zone OS-EXT-SRV-ATTR:host OS-EXT-SRV-ATTR:hostname
OS-EXT-SRV-ATTR:hypervisor_hostname OS-EXT-SRV-ATTR:instance_name OS-EXT-SRV-ATTR:kernel_id OS-EXT-SRV-ATTR:launch_index
OS-EXT-SRV-ATTR:ramdisk_id OS-EXT-SRV-ATTR:reservation_id OS-EXT-SRV-ATTR:root_device_name OS-EXT-SRV-ATTR:user_data
OS-EXT-STS:power_state OS-EXT-STS:task_state OS-EXT-STS:vm_state OS-SRV-USG:launched_at OS-SRV-USG:terminated_at accessIPv4
accessIPv6 addresses config_drive created description flavor hostId host_status id image key_name links locked locked_reason
metadata name os-extended-volumes:volumes_attached progress server_groups status tags tenant_id trusted_image_certificates
updated user_id""".split())
if "detail" in sys.argv[2]:
    sample.discard("server_groups")  # Nova shows it when showing one server, not in lists
    assert "server_groups" not in server, server
missing = sample - set(server)
assert not missing, f"missing {sorted(missing)}"
assert set(server["flavor"]) == {"disk", "ephemeral", "extra_specs", "original_name", "ram", "swap", "vcpus"}, server["flavor"]
assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None and server["locked"] is False, server
PY
done
ok "GET /servers/{id} and /servers/detail carry the fields of Nova's sample"

os server list --long -f json > "$work/servers.json" || fail "server list --long"
os hypervisor list --long -f json > "$work/hypervisors.json" || fail "hypervisor list"
python3 - "$work/servers.json" "$HOSTS" <<'PY' || fail "spread: $(cat "$work/servers.json" | head -c 600)"
import collections, json, sys
servers = json.load(open(sys.argv[1]))
hosts = sys.argv[2].split()
count = collections.Counter(s["Host"] for s in servers)
assert set(count) == set(hosts), count
assert sorted(count.values()) == [10, 10, 10], count
print("spread:", dict(count))
PY
ok "the free-RAM weigher spread them 10/10/10"
for host in $HOSTS; do
  os --os-compute-api-version 2.87 hypervisor show "$host" -f json > "$work/hv-$host.json" || fail "hypervisor show $host"
  python3 - "$work/hv-$host.json" <<'PY' || fail "capacity of $host: $(cat "$work/hv-$host.json")"
import json, sys
h = json.load(open(sys.argv[1]))
assert h["vcpus_used"] <= h["vcpus"] * 16 and h["memory_mb_used"] <= h["memory_mb"] * 1.5, h
assert h["vcpus_used"] == 10 and h["memory_mb_used"] == 2560, h
PY
done
ok "no host over its capacity (vCPUs and RAM used as claimed)"
# running_vms_become "A B C ": each host's libvirt count (reported every second) reaches it.
running_vms_become() {
  local i
  for ((i = 0; i < 20; i++)); do
    running=$(for host in $HOSTS; do os --os-compute-api-version 2.87 hypervisor show "$host" -f value -c running_vms; done | tr '\n' ' ')
    [ "$running" = "$1" ] && return 0
    sleep 0.5
  done
  return 1
}
# Each host's libvirt runs exactly the servers the API places there.
running_vms_become "10 10 10 " || fail "libvirt's running domains per host: $running"
ok "libvirt runs 10 domains on each host, as the servers' hosts say"

# Placement (osc-placement): one provider per node, its inventory from the node's report, and
# the scheduler's claims as allocations equal to what each server's flavor asks.
os resource provider list -f json > "$work/providers.json" || fail "resource provider list"
python3 - "$work/providers.json" "$HOSTS" <<'PY' || fail "providers: $(cat "$work/providers.json")"
import json, sys
providers = json.load(open(sys.argv[1]))
assert sorted(p["name"] for p in providers) == sorted(sys.argv[2].split()), providers
assert all(p["uuid"] == p["root_provider_uuid"] and p["parent_provider_uuid"] is None for p in providers), providers
PY
for host in $HOSTS; do
  uuid=$(os resource provider list --name "$host" -f value -c uuid) && [ -n "$uuid" ] || fail "provider of $host"
  os resource provider inventory list "$uuid" -f json > "$work/inventory.json" || fail "inventory list $host"
  os --os-compute-api-version 2.87 hypervisor show "$host" -f json > "$work/hv.json" || fail "hypervisor show $host"
  python3 - "$work/inventory.json" "$work/hv.json" <<'PY' || fail "inventory of $host: $(cat "$work/inventory.json")"
import json, sys
inventory = {i["resource_class"]: i for i in json.load(open(sys.argv[1]))}
h = json.load(open(sys.argv[2]))
assert inventory["VCPU"]["total"] == h["vcpus"] and inventory["VCPU"]["allocation_ratio"] == 16.0, inventory
assert inventory["MEMORY_MB"]["total"] == h["memory_mb"] and inventory["MEMORY_MB"]["allocation_ratio"] == 1.5, inventory
assert inventory["VCPU"]["max_unit"] == h["vcpus"] and inventory["VCPU"]["reserved"] == 0, inventory
PY
  os resource provider usage show "$uuid" -f json > "$work/usage.json" || fail "usage show $host"
  python3 - "$work/usage.json" <<'PY' || fail "usages of $host: $(cat "$work/usage.json")"
import json, sys
usage = {u["resource_class"]: u["usage"] for u in json.load(open(sys.argv[1]))}
assert usage["VCPU"] == 10 and usage["MEMORY_MB"] == 2560 and usage["DISK_GB"] == 10, usage
PY
  os resource provider trait list "$uuid" -f value > "$work/traits" || fail "trait list of $host"
  grep -qx COMPUTE_NODE "$work/traits" && grep -qx COMPUTE_NET_ATTACH_INTERFACE "$work/traits" || fail "traits of $host: $(cat "$work/traits")"
done
ok "resource providers: one per node, inventory as the hypervisor reports, usages 10 VCPU / 2560 MB / 10 GB each"
for id in $(os server list -f value -c ID | head -3); do
  host=$(os server show "$id" -f value -c OS-EXT-SRV-ATTR:host)
  uuid=$(os resource provider list --name "$host" -f value -c uuid)
  os resource provider allocation show "$id" -f json > "$work/allocation.json" || fail "allocation show $id"
  python3 - "$work/allocation.json" "$uuid" <<'PY' || fail "allocation of $id on $host: $(cat "$work/allocation.json")"
import json, sys
allocations = json.load(open(sys.argv[1]))
assert len(allocations) == 1 and allocations[0]["resource_provider"] == sys.argv[2], allocations
assert allocations[0]["resources"] == {"VCPU": 1, "MEMORY_MB": 256, "DISK_GB": 1}, allocations
PY
done
ok "each server's allocation is its flavor on its host's provider"
os allocation candidate list --resource VCPU=1 -f json > "$work/candidates.json" || fail "allocation candidate list"
python3 - "$work/candidates.json" <<'PY' || fail "candidates: $(cat "$work/candidates.json")"
import json, sys
candidates = json.load(open(sys.argv[1]))
assert len({c["resource provider"] for c in candidates}) == 3, candidates
assert all(c["allocation"] == "VCPU=1" for c in candidates), candidates
PY
# More memory than any node has left (1.5 × RAM − 2560 MB) has no candidate.
big=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["memory_mb"] * 1.5) - 2560 + 1)' "$work/hv.json")
[ "$(os allocation candidate list --resource MEMORY_MB="$big" -f value | wc -l)" = 0 ] || fail "a candidate for $big MB"
os trait create CUSTOM_PETREL_SCHED || fail "trait create"
os trait list -f value > "$work/all-traits" || fail "trait list"
grep -qx CUSTOM_PETREL_SCHED "$work/all-traits" || fail "custom trait not listed"
grep -qx HW_CPU_X86_SSE42 "$work/all-traits" || fail "standard traits not listed"
os trait delete CUSTOM_PETREL_SCHED || fail "trait delete"
ok "allocation candidates fit what is left; traits standard and custom"

ids=$(os server list -f value -c ID)
os server delete --wait $ids || fail "server delete"
running_vms_become "0 0 0 " || fail "domains left after delete: $running"
ok "30 deleted; no domain left on any host"
for uuid in $(os resource provider list -f value -c uuid); do
  [ -z "$(os resource provider usage show "$uuid" -f value | awk '$2 != 0')" ] ||
    fail "usages left on $uuid after delete: $(os resource provider usage show "$uuid" -f value)"
done
ok "the deleted servers' allocations are gone"

# A server group with the anti-affinity policy: three servers on three hosts, a fourth refused
# with the group filter's reason; with affinity, every member on one host.
apart=$(os server group create --policy anti-affinity apart -f value -c id) || fail "server group create anti-affinity"
for n in 1 2 3; do
  os server create --image "$image" --flavor "$flavor" --nic none --hint group="$apart" --wait "apart-$n" >/dev/null || fail "apart-$n"
done
[ "$(os server list --name '^apart-' -f value -c ID | xargs -n1 sh -c "$OSC --os-cloud petrel server show -f value -c OS-EXT-SRV-ATTR:host \$0" | sort -u | wc -l)" = 3 ] ||
  fail "the anti-affinity group's three servers are not on three hosts"
os server create --image "$image" --flavor "$flavor" --nic none --hint group="$apart" --wait apart-4 >/dev/null 2>&1 &&
  fail "a fourth anti-affinity server found a host"
os server show apart-4 -c fault -f value | grep -q "ServerGroupAntiAffinityFilter" || fail "apart-4's fault: $(os server show apart-4 -c fault -f value)"
together=$(os server group create --policy affinity together -f value -c id) || fail "server group create affinity"
os server create --image "$image" --flavor "$flavor" --nic none --hint group="$together" --min 3 --max 3 --wait together >/dev/null ||
  fail "three servers in an affinity group"
[ "$(os server list --name '^together-' -f value -c ID | xargs -n1 sh -c "$OSC --os-cloud petrel server show -f value -c OS-EXT-SRV-ATTR:host \$0" | sort -u | wc -l)" = 1 ] ||
  fail "the affinity group's servers are on more than one host"
os server delete --wait $(os server list --name '^(apart|together)-' -f value -c ID) || fail "delete the groups' servers"
os server group delete "$apart" "$together" || fail "server group delete"
ok "anti-affinity: three servers on three hosts, a fourth refused (ServerGroupAntiAffinityFilter); affinity: three on one host"

# min_count/max_count: as many as fit the quota, at least min.
os server create --image "$image" --flavor "$flavor" --nic none --min 2 --max 3 --wait multi >/dev/null || fail "server create --min 2 --max 3"
[ "$(os server list --name '^multi-' -f value -c Name | sort | tr '\n' ' ')" = "multi-1 multi-2 multi-3 " ] ||
  fail "--min 2 --max 3: $(os server list -f value -c Name)"
os quota set --instances 4 "$project" || fail "quota set"
os server create --image "$image" --flavor "$flavor" --nic none --min 2 --max 5 many >/dev/null 2>"$work/err" &&
  fail "--min 2 with room for 1 was accepted"
grep -q "Quota exceeded for instances" "$work/err" || fail "min_count over quota: $(cat "$work/err")"
os server delete --wait $(os server list --name '^multi-' -f value -c ID) || fail "delete multi"
ok "min_count/max_count: 3 created and named -1..-3; min_count over the quota refused"

# The API's refusals, each with Nova's status and error body.
api() { # api METHOD PATH [BODY] → "STATUS BODY"
  curl -s -o "$work/body" -w '%{http_code}' -X "$1" "$PETREL_URL/compute/v2.1$2" -H "X-Auth-Token: $token" \
    -H "Content-Type: application/json" -H "OpenStack-API-Version: compute 2.87" ${3:+-d "$3"}
  echo " $(cat "$work/body")"
}
refused() { # refused STATUS KEY WHAT METHOD PATH [BODY]
  local expected=$1 key=$2 what=$3; shift 3
  local got; got=$(api "$@")
  python3 -c '
import json, sys
key, body, expected, status = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert status == expected and body[key]["code"] == expected and body[key]["message"], body
' "$key" "${got#* }" "$expected" "${got%% *}" 2>/dev/null || fail "$what: $got"
}
refused 400 badRequest "malformed JSON" POST /servers '{"server": '
refused 400 badRequest "no flavorRef" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"networks\": \"none\"}}"
refused 400 badRequest "no networks at 2.87" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\"}}"
refused 400 badRequest "an unexpected field" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\", \"colour\": 1}}"
refused 400 badRequest "min_count > max_count" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\", \"min_count\": 3, \"max_count\": 2}}"
refused 400 badRequest "user_data not base64" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\", \"user_data\": \"*not*\"}}"
refused 400 badRequest "an unknown key pair" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\", \"key_name\": \"nope\"}}"
refused 400 badRequest "an unknown zone" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\", \"availability_zone\": \"atlantis\"}}"
refused 400 badRequest "networks auto (nothing to allocate)" POST /servers "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"auto\"}}"
grep -q "Unable to automatically allocate a network for project $project" "$work/body" || fail "networks auto: $(cat "$work/body")"
# Forced hosts (availability_zone "zone:host", "zone::node"): admins only, Nova's forced_host policy.
forced=${HOSTS##* }  # the last name: with every host empty the weigher's tie would go to the first
os server create --image "$image" --flavor "$flavor" --nic none --availability-zone "nova:$forced" --wait forced -f json \
  > "$work/forced.json" || fail "server create on a forced host"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["OS-EXT-SRV-ATTR:host"])' "$work/forced.json")" = "$forced" ] ||
  fail "the forced server is not on $forced: $(cat "$work/forced.json")"
os server create --image "$image" --flavor "$flavor" --nic none --availability-zone "nova::$forced" --wait forced-node -f value -c OS-EXT-SRV-ATTR:host \
  > "$work/forced-node" || fail "server create on a forced node"
[ "$(cat "$work/forced-node")" = "$forced" ] || fail "the server forced to node $forced is on $(cat "$work/forced-node")"
os server delete --wait forced forced-node || fail "delete the forced servers"
zone() { echo "{\"server\": {\"name\": \"x\", \"imageRef\": \"$image\", \"flavorRef\": \"$flavor\", \"networks\": \"none\", \"availability_zone\": \"$1\"}}"; }
refused 400 badRequest "a forced host that does not exist" POST /servers "$(zone nova:nonexistent)"
grep -q "Compute host nonexistent could not be found" "$work/body" || fail "unknown forced host: $(cat "$work/body")"
refused 400 badRequest "an availability zone with three colons" POST /servers "$(zone a:b:c:d)"
# The security report's reproduction: a project member naming a host → 403, nothing created.
os project create forced-member-project >/dev/null && os user create --password member-pw --project forced-member-project forced-member >/dev/null &&
  os role add --user forced-member --project forced-member-project member || fail "member user"
admin_token=$token
token=$(os --os-username forced-member --os-password member-pw --os-project-name forced-member-project token issue -f value -c id) || fail "member token"
refused 403 forbidden "a member forcing an unknown host" POST /servers "$(zone nova:nonexistent)"
grep -q "os_compute_api:servers:create:forced_host" "$work/body" || fail "member's forced host: $(cat "$work/body")"
refused 403 forbidden "a member forcing a real host" POST /servers "$(zone nova:$forced)"
refused 403 forbidden "a member forcing a node" POST /servers "$(zone nova::$forced)"
token=$admin_token
ok "a forced host or node: admins' servers land there; an unknown one 400; a member is refused 403"

refused 404 itemNotFound "an unknown server" GET /servers/00000000-0000-0000-0000-000000000000
refused 404 itemNotFound "an action on an unknown server" POST /servers/00000000-0000-0000-0000-000000000000/action '{"os-stop": null}'
[ "$(os server list --all-projects -f value -c ID | wc -l)" = 0 ] || fail "a refused request created a server"
ok "malformed, incomplete, unexpected, inconsistent requests → 400 badRequest; unknown server → 404 itemNotFound; nothing created"
echo "scheduling passed"
