#!/usr/bin/env bash
# What the node reports, seen through the unmodified `openstack` CLI (issue 4):
#   hosts-cli.sh up        nova-compute and the hypervisor up, no agent or volume service; admin changes stored
#   hosts-cli.sh down      every service of the node is down (the node was stopped)
#   hosts-cli.sh up-again  they are up again (the node was started again)
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`), NODE (the node's host name), NODE_IP.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${NODE:?}" "${NODE_IP:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
# value JSON-LIST FIELD-FILTER FIELD: one field of the entry whose fields match.
pick() { python3 -c '
import json, sys
rows = json.load(sys.stdin)
want = dict(kv.split("=", 1) for kv in sys.argv[1].split(",") if kv)
match = [r for r in rows if all(str(r.get(k)) == v for k, v in want.items())]
if not match: sys.exit("no row with %s in %s" % (want, rows))
print(match[0][sys.argv[2]])' "$1" "$2"; }

states() { # the State of every service of $NODE across the three APIs, one per line
  os compute service list --host "$NODE" -f json | python3 -c 'import json,sys; [print("compute", r["Binary"], r["State"]) for r in json.load(sys.stdin)]'
  os network agent list --host "$NODE" -f json | python3 -c 'import json,sys; [print("network", r["Binary"], "up" if r["Alive"] else "down") for r in json.load(sys.stdin)]'
  os volume service list --host "$NODE@lvm" -f json | python3 -c 'import json,sys; [print("volume", r["Binary"], r["State"]) for r in json.load(sys.stdin)]'
}

expect_all() { # expect_all up|down: nova-compute is, and nothing else is reported
  local lines
  lines=$(states) || fail "listing the services failed"
  [ "$lines" = "compute nova-compute $1" ] || fail "expected only nova-compute $1 on $NODE, got: $lines"
  ok "nova-compute of $NODE is $1; no network agent and no volume service is reported"
}

case "${1:-up}" in
  up)
    expect_all up
    hypervisors=$(os hypervisor list -f json) || fail "hypervisor list"
    [ "$(pick "Hypervisor Hostname=$NODE" "Host IP" <<<"$hypervisors")" = "$NODE_IP" ] || fail "hypervisor list: $hypervisors"
    ok "hypervisor list shows $NODE at $NODE_IP"
    # (Resources are in hypervisor bodies only before 2.88; the CLI would ask the newest version.)
    show=$(os --os-compute-api-version 2.87 hypervisor show "$NODE" -f json) || fail "hypervisor show"
    python3 -c '
import json, sys
h = json.load(sys.stdin)
assert h["hypervisor_type"] == "TEST" and h["vcpus"] > 0 and h["memory_mb"] > 0 and h["local_gb"] > 0, h
assert h["state"] == "up" and h["status"] == "enabled", h' <<<"$show" || fail "hypervisor show: $show"
    ok "hypervisor show: type, vCPUs, memory, disk"
    os compute service set --disable --disable-reason "maintenance window" "$NODE" nova-compute || fail "compute service set --disable"
    listed=$(os compute service list --long --host "$NODE" -f json)
    [ "$(pick "Binary=nova-compute" Status <<<"$listed")" = disabled ] || fail "the disabled status is not shown: $listed"
    [ "$(pick "Binary=nova-compute" "Disabled Reason" <<<"$listed")" = "maintenance window" ] || fail "the reason is not shown: $listed"
    [ "$(os hypervisor show "$NODE" -f value -c status)" = disabled ] || fail "the hypervisor does not show its compute service disabled"
    ok "compute service set --disable is stored and shown (with its reason)"
    os compute service set --enable "$NODE" nova-compute || fail "compute service set --enable"
    [ "$(os compute service list --host "$NODE" -f value -c Status)" = enabled ] || fail "enable"
    os aggregate create --zone zone-a petrel-test-aggregate >/dev/null || fail "aggregate create"
    os aggregate add host petrel-test-aggregate "$NODE" >/dev/null || fail "aggregate add host"
    os aggregate add host petrel-test-aggregate no-such-host >/dev/null 2>&1 && fail "an unknown host joined an aggregate"
    zones=$(os availability zone list --compute --long -f value -c "Zone Name" -c "Host Name") || fail "availability zone list"
    grep -x "zone-a $NODE" <<<"$zones" >/dev/null || fail "the aggregate's zone does not list $NODE: $zones"
    ok "availability zone list --compute --long: $NODE in its aggregate's zone"
    [ "$(os aggregate show petrel-test-aggregate -f json | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a["availability_zone"], a["hosts"])')" = "zone-a ['$NODE']" ] ||
      fail "aggregate show"
    os aggregate remove host petrel-test-aggregate "$NODE" >/dev/null && os aggregate delete petrel-test-aggregate || fail "aggregate remove host/delete"
    ok "aggregate create/add host/show/remove host/delete"
    ;;
  down) expect_all down ;;
  up-again) expect_all up ;;
  *) fail "unknown phase $1" ;;
esac
echo "phase ${1:-up} passed"
