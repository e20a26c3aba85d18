#!/usr/bin/env bash
# Server action benchmark (issue 17), release builds, one invocation: one server on QEMU (TCG)
# with the test guest on a node on this host, ITERATIONS times each of
#   resize (same host, to a bigger flavor) → VERIFY_RESIZE, then confirmResize → ACTIVE;
#   resize → VERIFY_RESIZE, then revertResize → ACTIVE;
#   shelve → SHELVED_OFFLOADED, then unshelve → ACTIVE;
# each end to end (the API call → the final status, task state cleared, seen by polling the API
# every 5 ms), split into the node's share and the control plane's. The node's share is what the
# node itself says the work took: `took_ms` of its "action done" log line (the action's body:
# libvirt calls, disk copies and resizes, a shelve's disk upload), and for an unshelve, which is a
# build, `prepare_ms` + `start_ms` of its "spawned" line (the shelved image's download, disks,
# domain, virDomainCreate); each line is found by the request id the API answered with. The
# control plane is the rest: API, database, conductor, scheduling and Placement, RPC both ways, the
# node's look-up of the instance and its report. The target is a control plane ≤ 300 ms per action.
# The node powers guests off at once (`shutdown_timeout = 0`): how long a guest takes to act on
# an ACPI shutdown (the busybox test guest has nothing that does) is the guest's, not Petrel's.
# Prints figures, not a pass/fail. Needs root, libvirtd, RabbitMQ (Packaging/host-services.sh)
# and the test guest (Packaging/guest-image/build.sh).
#
#   Benchmarks/action-bench.sh            ITERATIONS=5 Benchmarks/action-bench.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
iterations=${ITERATIONS:-3}
bin=$top/.build-release/release
if [ ! -x "$bin/petrel-node" ] || [ ! -x "$bin/petrel-controller" ] || [ -n "${REBUILD:-}" ]; then
  "$top/Packaging/release-build.sh"  # as they ship: static Swift runtime, lld, no exported symbols
fi
guest=$("$top/Packaging/guest-image/build.sh")
work=$(mktemp -d /tmp/petrel-bench-action.XXXXXX)
chmod 755 "$work"  # QEMU (its own user) reaches the disks through it
vhost=petrel-bench-$RANDOM
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
pids=()
cleanup() {
  trap '' INT TERM  # cleaning up is not cut short
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Until they are gone (`wait` can return early on a trapped signal): the node stops
  # gracefully and may still define and start the domain of the action it was running.
  local pid n
  for pid in "${pids[@]}"; do
    for n in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  # Our domains (their disks are under $work), again until none is left: one the node was
  # starting when it was stopped may refuse the first destroy while libvirt finishes that job.
  local attempt name left
  for attempt in $(seq 20); do
    left=
    for name in $(virsh -q list --all --name 2>/dev/null | grep '^petrel-'); do
      # (Not `| grep -q`: with pipefail, virsh killed by SIGPIPE would make a match a miss.)
      [[ "$(virsh dumpxml "$name" 2>/dev/null)" == *"$work"* ]] || continue
      left+=" $name"
      virsh destroy "$name" >/dev/null 2>&1; virsh undefine --managed-save "$name" >/dev/null 2>&1
    done
    [ -z "$left" ] && break
    sleep 1
  done
  [ -z "$left" ] || echo "could not remove the domains$left" >&2
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rabbitmqctl -q add_vhost "$vhost" && rabbitmqctl -q set_permissions -p "$vhost" guest ".*" ".*" ".*"
transport=rabbit://guest:guest@127.0.0.1:5672/$vhost
controller_conf=$(cat <<CONF
[DEFAULT]
transport_url = $transport
service_down_time = 4
allow_resize_to_same_host = true
[identity]
password_hash_rounds = 4
[image]
store_path = $work/images
CONF
)
host=bench-qemu
cat > "$work/node-$host.conf" <<CONF
[DEFAULT]
host = $host
transport_url = $transport
report_interval = 2
state_path = $work/state-$host
log_format = json
[libvirt]
uri = qemu:///system
virt_type = qemu
[compute]
shutdown_timeout = 0
[service_user]
auth_url = $url/v3
username = admin
password = bench-pw
project_name = admin
[node]
services = compute
metrics_listen = 127.0.0.1:$((20000 + RANDOM % 20000))
CONF
c=$bin/petrel-controller
. "$top/Benchmarks/controller.sh"
start_controller "$c" "$work" "$port" "$controller_conf"
pids+=($controller_pid)
"$bin/petrel-node" --config "$work/node-$host.conf" >"$work/node-$host.log" 2>&1 & pids+=($!)

echo "petrel server action benchmark: $("$c" --version), $(nproc) cores, release builds"
python3 - "$url" "$guest" "$work/node-$host.log" "$iterations" <<'PY'
import json, sys, time, urllib.request, urllib.error
url, guest, node_log, iterations = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
TARGET = 300  # ms of control plane per action (issue 17)

def call(method, path, body=None, token=None, headers=None, data=None):
    h = {"Content-Type": "application/json", "OpenStack-API-Version": "compute 2.87"}
    if token: h["X-Auth-Token"] = token
    h.update(headers or {})
    raw = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=raw, method=method, headers=h)
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
status, headers, _ = call("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": "bench-pw"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
token = headers["x-subject-token"]
_, _, image = call("POST", "/image/v2/images", {"name": "bench", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}, token)
call("PUT", f"/image/v2/images/{image['id']}/file", token=token, headers={"Content-Type": "application/octet-stream"}, data=open(guest, "rb").read())
flavors = []
def flavor(k):
    """The k-th flavor: 1 vCPU, 128 MB + 32 MB and 1 GB + 1 GB of root disk per step (each resize grows)."""
    while len(flavors) <= k:
        n = len(flavors)
        status, _, body = call("POST", "/compute/v2.1/flavors", {"flavor": {"name": f"bench.r{n}", "vcpus": 1, "ram": 128 + 32 * n, "disk": 1 + n}}, token)
        assert status in (200, 201), (status, body)
        flavors.append(body["flavor"])
    return flavors[k]

for _ in range(300):
    _, _, body = call("GET", "/compute/v2.1/os-services?binary=nova-compute", token=token)
    if any(s["state"] == "up" for s in body["services"]): break
    time.sleep(0.1)
else:
    raise SystemExit("the compute service did not come up")

def wait_for(server, wanted, started, every=0.005, limit=300):
    """Polls until the server shows `wanted` with no task; seconds since `started`."""
    while True:
        status, _, body = call("GET", f"/compute/v2.1/servers/{server}", token=token)
        assert status == 200, (status, body)
        s = body["server"]
        if s["status"] == wanted and s.get("OS-EXT-STS:task_state") is None: return time.monotonic() - started
        if s["status"] == "ERROR": raise SystemExit(f"server {server} ERROR: {s.get('fault')}")
        if time.monotonic() - started > limit: raise SystemExit(f"server {server} still {s['status']}/{s.get('OS-EXT-STS:task_state')} after {limit} s, not {wanted}")
        time.sleep(every)

def node_line(request_id, message, limit=15):
    """The node's log line `message` of the request (JSON lines), waited for: it is written after the report."""
    deadline = time.monotonic() + limit
    while True:
        for line in open(node_log):
            if request_id in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == request_id and record.get("message") == message: return record
        if time.monotonic() > deadline: raise SystemExit(f"no '{message}' line of {request_id} in the node's log")
        time.sleep(0.05)

def act(server, action, argument, wanted):
    """One action end to end: (total ms, node ms, a note on the node's part)."""
    started = time.monotonic()
    status, headers, body = call("POST", f"/compute/v2.1/servers/{server}/action", {action: argument}, token)
    assert status in (202, 204), (action, status, body)
    total = wait_for(server, wanted, started) * 1000
    request_id = headers["x-openstack-request-id"]
    if action == "unshelve":  # a build on the host the scheduler picked
        line = node_line(request_id, "spawned")
        prepare, start = int(line["prepare_ms"]), int(line["start_ms"])
        return total, prepare + start, f"prepare {prepare} + hypervisor start {start}"
    return total, int(node_line(request_id, "action done")["took_ms"]), ""

started = time.monotonic()
status, _, body = call("POST", "/compute/v2.1/servers", {"server": {"name": "bench", "imageRef": image["id"], "flavorRef": flavor(0)["id"], "networks": "none"}}, token)
assert status == 202, (status, body)
server = body["server"]["id"]
booted = wait_for(server, "ACTIVE", started)
print(f"\none server on QEMU (TCG), test guest, flavor 1 vCPU / 128 MB / 1 GB (booted in {booted*1000:.0f} ms, cold image cache); "
      f"{iterations} iterations; resizes grow by 32 MB RAM and 1 GB disk on the same host")
print(f"   {'#':>2}  {'action':<26}  {'end to end':>10}  {'node':>8}  {'control plane':>13}")
rows = {}
def record(n, label, result):
    total, node, note = result
    rows.setdefault(label, []).append((total, node, total - node))
    print(f"   {n+1:>2}  {label:<26}  {total:>7.0f} ms  {node:>5} ms  {total-node:>10.0f} ms" + (f"   (node: {note})" if note else ""))
k = 0
for n in range(iterations):
    k += 1
    record(n, "resize → VERIFY_RESIZE", act(server, "resize", {"flavorRef": flavor(k)["id"]}, "VERIFY_RESIZE"))
    record(n, "confirmResize → ACTIVE", act(server, "confirmResize", None, "ACTIVE"))
    record(n, "resize → VERIFY_RESIZE", act(server, "resize", {"flavorRef": flavor(k + 1)["id"]}, "VERIFY_RESIZE"))
    record(n, "revertResize → ACTIVE", act(server, "revertResize", None, "ACTIVE"))
    record(n, "shelve → SHELVED_OFFLOADED", act(server, "shelve", None, "SHELVED_OFFLOADED"))
    record(n, "unshelve → ACTIVE", act(server, "unshelve", None, "ACTIVE"))
_, _, body = call("GET", f"/compute/v2.1/servers/{server}", token=token)
assert body["server"]["flavor"]["ram"] == flavor(k)["ram"], body["server"]["flavor"]  # the confirms stuck, the reverts went back

median = lambda values: sorted(values)[len(values) // 2]
print(f"\n   median per action (resize: {len(rows['resize → VERIFY_RESIZE'])} runs, the others {iterations}); control plane against the {TARGET} ms target:")
for label, values in rows.items():
    total, node, plane = (median([v[i] for v in values]) for i in range(3))
    verdict = "within" if plane <= TARGET else "over"
    print(f"   {label:<26}  {total:>6.0f} ms = control plane {plane:>4.0f} ms + node {node:>5.0f} ms;"
          f"  control plane {plane/TARGET:.2f}× the target ({verdict})")
status, _, _ = call("DELETE", f"/compute/v2.1/servers/{server}", token=token)
while call("GET", f"/compute/v2.1/servers/{server}", token=token)[0] != 404: time.sleep(0.05)
PY
