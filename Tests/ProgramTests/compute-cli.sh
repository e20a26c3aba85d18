#!/usr/bin/env bash
# Flavors and key pairs through the unmodified `openstack` CLI. Needs OSC,
# OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), PETREL_URL.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${PETREL_URL:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-compute-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT

os flavor create --vcpus 1 --ram 128 --disk 1 --id tiny-1 cli.tiny >/dev/null || fail "flavor create"
os flavor create --vcpus 2 --ram 512 --disk 4 --ephemeral 1 --swap 64 --private --property hw:cpu_policy=shared cli.private >/dev/null ||
  fail "flavor create --private --property"
os flavor create --vcpus 1 --ram 64 --disk 1 --id tiny-1 cli.other >/dev/null 2>&1 && fail "a duplicate flavor id was accepted"
os flavor create --vcpus 0 --ram 64 --disk 1 cli.zero >/dev/null 2>&1 && fail "a flavor with 0 vCPUs was accepted"
public=$(os flavor list -f value -c Name) || fail "flavor list"
grep -x cli.tiny <<<"$public" >/dev/null && ! grep -x cli.private <<<"$public" >/dev/null || fail "flavor list (public only): $public"
all=$(os flavor list --all -f value -c Name)
grep -x cli.private <<<"$all" >/dev/null || fail "flavor list --all: $all"
ok "flavor create/list (public, --all), duplicate id and 0 vCPUs refused"
os flavor show cli.private -f json > "$work/flavor.json" || fail "flavor show"
python3 - "$work/flavor.json" <<'PY' || fail "flavor show: $(cat "$work/flavor.json")"
import json, sys
f = json.load(open(sys.argv[1]))
assert (f["vcpus"], f["ram"], f["disk"], f["OS-FLV-EXT-DATA:ephemeral"], f["swap"]) == (2, 512, 4, 1, 64), f
assert f["os-flavor-access:is_public"] is False and f["properties"] == {"hw:cpu_policy": "shared"}, f
PY
os flavor set --property hw:numa_nodes=1 --description "two cores" cli.private || fail "flavor set"
os flavor unset --property hw:cpu_policy cli.private || fail "flavor unset"
[ "$(os flavor show cli.private -f json | python3 -c 'import json,sys; f=json.load(sys.stdin); print(f["properties"], f["description"])')" = "{'hw:numa_nodes': '1'} two cores" ] ||
  fail "flavor set/unset"
project=$(os project show admin -f value -c id)
os flavor set --project "$project" cli.private || fail "flavor set --project"
[ "$(os flavor show cli.private -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_project_ids"])')" = "['$project']" ] ||
  fail "flavor access"
os flavor unset --project "$project" cli.private || fail "flavor unset --project"
ok "flavor show/set/unset (properties, description, project access)"

os keypair create cli-generated > "$work/generated.key" || fail "keypair create"
grep -q "PRIVATE KEY" "$work/generated.key" || fail "keypair create printed no private key"
ssh-keygen -q -t rsa -b 2048 -N "" -C cli -f "$work/imported" || fail "ssh-keygen"
os keypair create --public-key "$work/imported.pub" cli-imported >/dev/null || fail "keypair create --public-key"
expected=$(ssh-keygen -E md5 -lf "$work/imported.pub" | awk '{print $2}' | sed 's/^MD5://')
[ "$(os keypair show cli-imported -f value -c fingerprint)" = "$expected" ] || fail "the fingerprint is not ssh-keygen's ($expected)"
echo "not a key" > "$work/bad.pub"
os keypair create --public-key "$work/bad.pub" cli-bad >/dev/null 2>&1 && fail "a malformed public key was accepted"
[ "$(os keypair list -f value -c Name | grep '^cli-' | sort | tr '\n' ' ')" = "cli-generated cli-imported " ] || fail "keypair list"
ok "keypair create (generated, imported with ssh-keygen's MD5 fingerprint), malformed key refused, list"
os keypair delete cli-generated cli-imported || fail "keypair delete"
os flavor delete cli.tiny cli.private || fail "flavor delete"
remaining=$(os flavor list --all -f value -c Name; os keypair list -f value -c Name)
grep "^cli" <<<"$remaining" >/dev/null && fail "left behind: $remaining"
ok "keypair delete, flavor delete"
project=$(os project show admin -f value -c id)
os quota set --instances 7 --cores 9 --ram 4096 "$project" || fail "quota set"
quota=$(os quota show --compute "$project" -f json) || fail "quota show --compute"
python3 -c '
import json, sys
limits = {row["Resource"]: row["Limit"] for row in json.load(sys.stdin)}
assert (limits["instances"], limits["cores"], limits["ram"]) == (7, 9, 4096), limits' <<<"$quota" || fail "quota show: $quota"
token=$(os token issue -f value -c id)
limits=$(curl -sf -H "X-Auth-Token: $token" "$PETREL_URL/compute/v2.1/limits") || fail "GET /limits"
python3 -c '
import json, sys
a = json.load(sys.stdin)["limits"]["absolute"]
assert (a["maxTotalInstances"], a["maxTotalCores"], a["maxTotalRAMSize"], a["totalInstancesUsed"]) == (7, 9, 4096, 0), a' <<<"$limits" ||
  fail "limits: $limits"
status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
  -d '{"quota_set": {"floating_ips": 3}}' "$PETREL_URL/compute/v2.1/os-quota-sets/$project")
[ "$status" = 400 ] || fail "an unknown quota resource gave $status"
curl -sf -X DELETE -H "X-Auth-Token: $token" "$PETREL_URL/compute/v2.1/os-quota-sets/$project" || fail "quota delete (reset)"
[ "$(os quota show --compute "$project" -f json | python3 -c 'import json,sys; print({r["Resource"]: r["Limit"] for r in json.load(sys.stdin)}["instances"])')" = 10 ] ||
  fail "the quota did not go back to the default"
ok "quota set/show --compute, GET /limits, unknown resource refused, reset to defaults"

# Usage (os-simple-tenant-usage): this cloud has no servers, so no project used anything.
usage=$(os usage list -f json) || fail "usage list"
[ "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$usage")" = 0 ] || fail "usage list: $usage"
os usage show --project admin -f json > "$work/usage.json" || fail "usage show --project admin"
python3 - "$work/usage.json" <<'PY' || fail "usage show: $(cat "$work/usage.json")"
import json, sys
u = json.load(open(sys.argv[1]))
assert "Servers" in u or "server_usages" in u, u
PY
os usage list --start 2020-02-01 --end 2020-01-01 >/dev/null 2>&1 && fail "usage list with the start after the end was accepted"
ok "usage list, usage show --project, a reversed period refused"

# The default quota class is the defaults of every project without its own limits.
os quota set --class --instances 20 default 2>/dev/null || fail "quota set --class"
classes=$(curl -sf -H "X-Auth-Token: $token" "$PETREL_URL/compute/v2.1/os-quota-class-sets/default") || fail "GET os-quota-class-sets/default"
python3 -c '
import json, sys
q = json.load(sys.stdin)["quota_class_set"]
assert (q["id"], q["instances"], q["cores"]) == ("default", 20, 20), q' <<<"$classes" || fail "quota class: $classes"
[ "$(os quota show --default --compute "$project" -f json | python3 -c 'import json,sys; print({r["Resource"]: r["Limit"] for r in json.load(sys.stdin)}["instances"])')" = 20 ] ||
  fail "quota show --default does not show the default class"
[ "$(os quota show --compute "$project" -f json | python3 -c 'import json,sys; print({r["Resource"]: r["Limit"] for r in json.load(sys.stdin)}["instances"])')" = 20 ] ||
  fail "a project without its own limits does not get the default class's"
os quota set --class --instances 10 default 2>/dev/null || fail "quota set --class (back)"
ok "quota set --class default, GET os-quota-class-sets/default, quota show --default follows the class"
echo "all compute CLI checks passed"
