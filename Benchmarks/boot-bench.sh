#!/usr/bin/env bash
# Compute benchmark (issue 5), release builds, one invocation:
#   1. boot latency on QEMU (TCG) with a warm image cache: POST /servers → ACTIVE, split into
#      the control plane (API, scheduling, RPC, image cache hit, disk, domain XML) and the
#      hypervisor's own domain start (virDomainCreate, from the node's "spawned" log line);
#      and DELETE → gone;
#   2. 100 servers created concurrently on three nodes with libvirt's test driver: time until
#      all are ACTIVE, then deleted; controller and node RSS idle and after, the node's memory
#      by kind (private, shared libraries) and, as the floor, the RSS of a 15-line C program
#      that only opens a libvirt connection (Benchmarks/libvirt-floor.c).
# Prints figures, not a pass/fail. Needs root, libvirtd, RabbitMQ (Packaging/host-services.sh)
# and the test guest (Packaging/guest-image/build.sh).
#
#   Benchmarks/boot-bench.sh            BOOTS=10 Benchmarks/boot-bench.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
boots=${BOOTS:-5}
bin=$top/.build-release/release
if [ ! -x "$bin/petrel-node" ] || [ ! -x "$bin/petrel-controller" ] || [ -n "${REBUILD:-}" ]; then
  "$top/Packaging/release-build.sh"  # as they ship: static Swift runtime, lld, no exported symbols
fi
guest=$("$top/Packaging/guest-image/build.sh")
work=$(mktemp -d /tmp/petrel-bench-boot.XXXXXX)
chmod 755 "$work"  # QEMU (its own user) reaches the disks through it
vhost=petrel-bench-$RANDOM
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for name in $(virsh -q list --all --name 2>/dev/null | grep '^petrel-'); do
    # (Not `| grep -q`: with pipefail, virsh killed by SIGPIPE would make a match a miss.)
    [[ "$(virsh dumpxml "$name" 2>/dev/null)" == *"$work"* ]] && { virsh destroy "$name" >/dev/null 2>&1; virsh undefine --managed-save "$name" >/dev/null 2>&1; }
  done
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
rabbitmqctl -q add_vhost "$vhost" && rabbitmqctl -q set_permissions -p "$vhost" guest ".*" ".*" ".*"
transport=rabbit://guest:guest@127.0.0.1:5672/$vhost
controller_conf=$(cat <<CONF
[DEFAULT]
transport_url = $transport
service_down_time = 4
[identity]
password_hash_rounds = 4
[image]
store_path = $work/images
[quota]
instances = 1000
cores = 1000
ram = 1000000
CONF
)
node_conf() { # node_conf HOST URI
  cat > "$work/node-$1.conf" <<CONF
[DEFAULT]
host = $1
transport_url = $transport
report_interval = 2
state_path = $work/state-$1
[libvirt]
uri = $2
virt_type = qemu
[service_user]
auth_url = $url/v3
username = admin
password = bench-pw
project_name = admin
[node]
services = compute
metrics_listen = 127.0.0.1:$((20000 + RANDOM % 20000))
CONF
}
c=$bin/petrel-controller
. "$top/Benchmarks/controller.sh"
start_controller "$c" "$work" "$port" "$controller_conf"
controller=$controller_pid; pids+=($controller)
node_conf bench-qemu qemu:///system
"$bin/petrel-node" --config "$work/node-bench-qemu.conf" >"$work/node-bench-qemu.log" 2>&1 & qemu_node=$!; pids+=($qemu_node)
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
gcc -O2 -o "$work/libvirt-floor" "$top/Benchmarks/libvirt-floor.c" -lvirt
"$work/libvirt-floor" qemu:///system >/dev/null & floor=$!; pids+=($floor)

echo "petrel compute benchmark: $("$c" --version), $(nproc) cores, release builds"
python3 - "$url" "$guest" "$work" "$boots" "$controller" "$qemu_node" "$floor" "$bin/petrel-node" <<'PY'
import json, os, re, sys, threading, time, urllib.request, urllib.error
url, guest, work, boots, controller_pid, node_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
floor_pid, node_binary = sys.argv[7], os.path.realpath(sys.argv[8])

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
def call(method, path, body=None, token=None, headers=None, data=None):
    h = {"Content-Type": "application/json", "OpenStack-API-Version": "compute 2.87"}
    if token: h["X-Auth-Token"] = token
    h.update(headers or {})
    raw = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=raw, method=method, headers=h)
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
status, headers, _ = call("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": "bench-pw"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
token = headers["X-Subject-Token"]
_, _, image = call("POST", "/image/v2/images", {"name": "bench", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}, token)
call("PUT", f"/image/v2/images/{image['id']}/file", token=token, headers={"Content-Type": "application/octet-stream"}, data=open(guest, "rb").read())
flavor = call("POST", "/compute/v2.1/flavors", {"flavor": {"name": "bench.tiny", "vcpus": 1, "ram": 128, "disk": 1}}, token)[2]["flavor"]
nano = call("POST", "/compute/v2.1/flavors", {"flavor": {"name": "bench.nano", "vcpus": 1, "ram": 64, "disk": 1}}, token)[2]["flavor"]

def wait_hosts(count):
    for _ in range(300):
        _, _, body = call("GET", "/compute/v2.1/os-services?binary=nova-compute", token=token)
        if sum(1 for s in body["services"] if s["state"] == "up") >= count: return
        time.sleep(0.1)
    raise SystemExit("compute services did not come up")

def boot(name, flavor_id):
    started = time.monotonic()
    status, _, body = call("POST", "/compute/v2.1/servers", {"server": {"name": name, "imageRef": image["id"], "flavorRef": flavor_id, "networks": "none"}}, token)
    assert status == 202, (status, body)
    return body["server"]["id"], started

def wait_active(server, started, every=0.005):
    while True:
        _, _, body = call("GET", f"/compute/v2.1/servers/{server}", token=token)
        if body["server"]["status"] == "ACTIVE": return time.monotonic() - started
        if body["server"]["status"] == "ERROR": raise SystemExit(f"server {server} ERROR: {body['server'].get('fault')}")
        time.sleep(every)

def delete(server, every=0.005):
    started = time.monotonic()
    call("DELETE", f"/compute/v2.1/servers/{server}", token=token)
    while call("GET", f"/compute/v2.1/servers/{server}", token=token)[0] != 404: time.sleep(every)
    return time.monotonic() - started

wait_hosts(1)
time.sleep(1)
print(f"\nidle RSS (nothing running): controller {rss(controller_pid):.1f} MB, petrel-node {rss(node_pid):.1f} MB")
def kinds(pid):
    """RSS split into the program's own file, shared libraries and anonymous memory; PSS; private."""
    own = libs = anon = pss = private = 0
    mapping = ""
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if not parts[0].endswith(":"):
            mapping = parts[5] if len(parts) > 5 else ""
        elif parts[0] == "Rss:":
            size = int(parts[1])
            if mapping == node_binary: own += size
            elif mapping.startswith("/"): libs += size
            else: anon += size
        elif parts[0] == "Pss:": pss += int(parts[1])
        elif parts[0] in ("Private_Clean:", "Private_Dirty:"): private += int(parts[1])
    return own / 1024, libs / 1024, anon / 1024, pss / 1024, private / 1024
own, libs, anon, pss, private = kinds(node_pid)
print(f"   petrel-node: its own binary {own:.1f} MB + shared libraries {libs:.1f} MB + heap and stacks {anon:.1f} MB; "
      f"PSS {pss:.1f} MB, private {private:.1f} MB")
print(f"   floor: a C program that only holds a libvirt connection (Benchmarks/libvirt-floor.c) has RSS {rss(floor_pid):.1f} MB")
# Warm the image cache (the first boot downloads the image), then measure.
server, started = boot("warmup", flavor["id"])
cold = wait_active(server, started)
delete(server)
print(f"\n1. boot on QEMU (TCG), test guest, flavor 1 vCPU / 128 MB; cold cache (download) boot: {cold*1000:.0f} ms")
print(f"   {'boot':>4}  {'POST→ACTIVE':>11}  {'hypervisor start':>16}  {'control plane':>13}  {'(node prepare)':>14}  {'delete':>7}")
rows = []
for n in range(boots):
    server, started = boot(f"bench-{n}", flavor["id"])
    total = wait_active(server, started)
    log = open(os.path.join(work, "node-bench-qemu.log")).read()
    match = re.search(rf"spawned .*instance={server} prepare_ms=(\d+) .*start_ms=(\d+)", log)
    prepare, start = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    gone = delete(server)
    rows.append((total * 1000, start, total * 1000 - start, prepare, gone * 1000))
    print(f"   {n+1:>4}  {total*1000:>8.0f} ms  {start:>13} ms  {total*1000-start:>10.0f} ms  {prepare:>11} ms  {gone*1000:>4.0f} ms")
median = lambda values: sorted(values)[len(values) // 2]
total, start, plane, prepare, gone = (median([r[i] for r in rows]) for i in range(5))
print(f"   median: POST→ACTIVE {total:.0f} ms = control plane {plane:.0f} ms + hypervisor start {start:.0f} ms; delete {gone:.0f} ms")
print(f"   vs OpenStack's published Rally runs (boot→ACTIVE 12–13 s, delete ~2.5 s): boot {12500/total:.0f}× faster, delete {2500/gone:.0f}× faster")
print(f"   RSS after the boots: controller {rss(controller_pid):.1f} MB, petrel-node {rss(node_pid):.1f} MB")
open(os.path.join(work, "ids"), "w").write(json.dumps({"token": token, "image": image["id"], "nano": nano["id"]}))
PY

# 2. 100 servers at once on three simulated hosts.
kill "$qemu_node"; wait "$qemu_node" 2>/dev/null || true
sleep 5  # until the QEMU node counts as down (service_down_time), so nothing is placed there
test_nodes=()
for host in bench-t1 bench-t2 bench-t3; do
  node_conf "$host" test:///default
  "$bin/petrel-node" --config "$work/node-$host.conf" >"$work/node-$host.log" 2>&1 & test_nodes+=($!); pids+=($!)
done
python3 - "$url" "$work" "$controller" "${test_nodes[@]}" <<'PY'
import json, os, sys, threading, time, urllib.request, urllib.error
url, work, controller_pid, nodes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ids = json.load(open(os.path.join(work, "ids")))
token = ids["token"]
def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1]) / 1024
def call(method, path, body=None):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None, method=method,
                                     headers={"Content-Type": "application/json", "X-Auth-Token": token, "OpenStack-API-Version": "compute 2.87"})
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, error.read()
for _ in range(300):
    _, body = call("GET", "/compute/v2.1/os-services?binary=nova-compute")
    if sum(1 for s in body["services"] if s["state"] == "up" and s["host"].startswith("bench-t")) >= 3: break
    time.sleep(0.1)
time.sleep(2)
idle = [rss(pid) for pid in nodes]
print(f"\n2. 100 servers created concurrently on 3 nodes (libvirt test driver), flavor 1 vCPU / 64 MB")
print(f"   idle RSS: controller {rss(controller_pid):.1f} MB, nodes " + ", ".join(f"{r:.1f}" for r in idle) + " MB")
created, errors = [], []
def post(n):
    status, body = call("POST", "/compute/v2.1/servers", {"server": {"name": f"many-{n}", "imageRef": ids["image"], "flavorRef": ids["nano"], "networks": "none"}})
    (created.append(body["server"]["id"]) if status == 202 else errors.append((status, body)))
started = time.monotonic()
threads = [threading.Thread(target=post, args=(n,)) for n in range(100)]
for t in threads: t.start()
for t in threads: t.join()
accepted = time.monotonic() - started
assert not errors, errors[:3]
while True:
    _, body = call("GET", "/compute/v2.1/servers/detail?name=^many-")
    states = [s["status"] for s in body["servers"]]
    if states.count("ACTIVE") == 100: break
    if "ERROR" in states: raise SystemExit(f"ERROR among them: {[s.get('fault') for s in body['servers'] if s['status'] == 'ERROR'][:2]}")
    time.sleep(0.02)
active = time.monotonic() - started
hosts = {}
for s in body["servers"]: hosts[s["OS-EXT-SRV-ATTR:host"]] = hosts.get(s["OS-EXT-SRV-ATTR:host"], 0) + 1
print(f"   all 100 accepted in {accepted*1000:.0f} ms, all ACTIVE after {active*1000:.0f} ms ({100/active:.0f} servers/s); spread {dict(sorted(hosts.items()))}")
print(f"   RSS with 100 servers: controller {rss(controller_pid):.1f} MB, nodes " + ", ".join(f"{rss(pid):.1f}" for pid in nodes) + " MB")
started = time.monotonic()
threads = [threading.Thread(target=call, args=("DELETE", f"/compute/v2.1/servers/{i}")) for i in created]
for t in threads: t.start()
for t in threads: t.join()
while call("GET", "/compute/v2.1/servers?name=^many-")[1]["servers"]: time.sleep(0.02)
print(f"   all 100 deleted after {(time.monotonic()-started)*1000:.0f} ms")
PY
