#!/usr/bin/env bash
# Volume figures on the cloud `make run` started (cloud `petrel` in clouds.yaml, as root; run it
# on release builds: PETREL_BIN=.build-release/release make run):
#   1. create (file backend) → available: the API's answer, and until the volume is available
#      (polled every 10 ms), beside the node's own backend time (its "volume created" log line);
#   2. attach to a running guest → the guest sees the disk: the API's answer split into the
#      controller's share and the host's (libvirt hot-plug), from the controller's log line;
#      then until the guest prints that it sees the disk;
#   3. detach: the API's answer, the host's share (the guest letting go), until available;
#   4. delete → gone;
#   5. 100 volumes created at once: until all are available, then all deleted until gone.
#   6. boot from a volume made from the image (`--boot-from-volume 1`) beside a boot from the
#      image on local disk, in the same run: until ACTIVE and until the guest prints READY.
# Usage: Benchmarks/volume-bench.sh [ROUNDS]   (default 5)
set -euo pipefail
rounds=${1:-5}
os() { openstack --os-cloud petrel "$@"; }
now_ms() { date +%s%3N; }
url=$(os endpoint list --service volumev3 --interface public -f value -c URL)
compute=$(os endpoint list --service compute --interface public -f value -c URL)
project=$(os token issue -f value -c project_id)
token=$(os token issue -f value -c id)
log=/var/log/petrel
api() { curl -s -o "$work/out" -w '%{http_code}' -H "X-Auth-Token: $token" -H 'Content-Type: application/json' "$@"; }
status() { curl -s -H "X-Auth-Token: $token" "$url/$project/volumes/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("volume", {}).get("status", "gone"))'; }
until_status() { until [ "$(status "$1")" = "$2" ]; do sleep 0.01; done; }
console() { curl -s -H "X-Auth-Token: $token" -H 'Content-Type: application/json' -X POST "$compute/servers/$1/action" \
  -d '{"os-getConsoleOutput": {"length": 50}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["output"])'; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d" + sys.argv[2]))' "$work/out" "$1"; }
logged() { grep "$2" "$log/$1.log" | grep "$3" | tail -1 | sed -n "s/.* $4=\([^ ]*\).*/\1/p"; }
work=$(mktemp -d /tmp/petrel-bench-volume.XXXXXX)
cleanup() {
  os server delete --wait "bench-vm-$$" "bench-blocal-$$" "bench-bvolume-$$" >/dev/null 2>&1 || true
  for v in $(os volume list -f value -c ID -c Name | awk '/ bench-/ {print $1}'); do os volume delete --force "$v" >/dev/null 2>&1 || os volume delete "$v" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== volume create (file backend) → available, $rounds rounds"
for i in $(seq 1 "$rounds"); do
  start=$(now_ms)
  api -X POST "$url/$project/volumes" -d "{\"volume\": {\"size\": 1, \"name\": \"bench-c$i\"}}" >/dev/null
  answered=$(( $(now_ms) - start )); id=$(field '["volume"]["id"]')
  until_status "$id" available; ready=$(( $(now_ms) - start ))
  echo "  round $i: API answered in ${answered} ms, available after ${ready} ms (node's backend time: $(logged node "$id" "volume created" backend_us) µs)"
  start=$(now_ms)
  api -X DELETE "$url/$project/volumes/$id" >/dev/null
  answered=$(( $(now_ms) - start ))
  until [ "$(status "$id")" = gone ]; do sleep 0.01; done
  echo "           delete: API answered in ${answered} ms, gone after $(( $(now_ms) - start )) ms"
done

echo "== attach to a running guest, detach"
cat > "$work/user-data" <<'DATA'
#!/bin/sh
( seen=; while :; do
    for d in /sys/block/vd*; do
      s=$(cat "$d/serial" 2>/dev/null); [ -n "$s" ] || continue
      case " $seen " in *" $s "*) ;; *) echo "PETREL-BENCH-SEEN $s"; seen="$seen $s" ;; esac
    done
    sleep 0.05
  done ) &
DATA
image=$(os image list --name petrel-tiny -f value -c ID | head -1)
vm=$(os server create --image "$image" --flavor m1.tiny --nic none --config-drive true --user-data "$work/user-data" --wait "bench-vm-$$" -f value -c id)
until os console log show "$vm" 2>/dev/null | grep -q PETREL-GUEST-READY; do sleep 0.5; done
for i in $(seq 1 "$rounds"); do
  api -X POST "$url/$project/volumes" -d "{\"volume\": {\"size\": 1, \"name\": \"bench-a$i\"}}" >/dev/null
  id=$(field '["volume"]["id"]'); until_status "$id" available
  start=$(now_ms)
  api -X POST "$compute/servers/$vm/os-volume_attachments" -d "{\"volumeAttachment\": {\"volumeId\": \"$id\"}}" >/dev/null
  answered=$(( $(now_ms) - start ))
  until console "$vm" | grep -q "PETREL-BENCH-SEEN ${id:0:20}"; do sleep 0.05; done
  seen=$(( $(now_ms) - start ))
  host_ms=$(logged controller "$id" "volume attached" host_ms); total_ms=$(logged controller "$id" "volume attached" total_ms)
  echo "  round $i: attach answered in ${answered} ms (controller ${total_ms} ms, of which the host's hot-plug ${host_ms} ms: control plane $((total_ms - host_ms)) ms); the guest printed the disk after ${seen} ms (console polled every 50 ms)"
  start=$(now_ms)
  api -X DELETE "$compute/servers/$vm/os-volume_attachments/$id" >/dev/null
  answered=$(( $(now_ms) - start ))
  until_status "$id" available
  host_ms=$(logged controller "$id" "volume detached" host_ms); total_ms=$(logged controller "$id" "volume detached" total_ms)
  echo "           detach answered in ${answered} ms (controller ${total_ms} ms, of which the host's unplug, the guest letting go, ${host_ms} ms: control plane $((total_ms - host_ms)) ms)"
  api -X DELETE "$url/$project/volumes/$id" >/dev/null
done
os server delete --wait "bench-vm-$$" >/dev/null

echo "== boot from a volume (made from the image) vs from the image on local disk, $rounds rounds"
ready() { until os console log show "$1" 2>/dev/null | grep -q PETREL-GUEST-READY; do sleep 0.2; done; }
for i in $(seq 1 "$rounds"); do
  for kind in local volume; do
    extra=(); [ "$kind" = volume ] && extra=(--boot-from-volume 1)
    start=$(now_ms)
    vm=$(os server create --image "$image" --flavor m1.tiny --nic none "${extra[@]}" "bench-b$kind-$$" -f value -c id)
    answered=$(( $(now_ms) - start ))
    until [ "$(os server show "$vm" -f value -c status)" = ACTIVE ]; do sleep 0.1; done
    active=$(( $(now_ms) - start ))
    ready "$vm"
    echo "  round $i, $kind root: API answered in ${answered} ms, ACTIVE after ${active} ms, the guest READY after $(( $(now_ms) - start )) ms"
    os server delete --wait "$vm" >/dev/null
  done
done
for v in $(os volume list -f value -c ID -c Status | awk '$2 == "available" {print $1}'); do
  [ -n "$(os volume show "$v" -f value -c description | grep 'Volume of server')" ] && os volume delete "$v" >/dev/null
done

echo "== 100 volumes created at once"
os quota set --volumes 200 --gigabytes 2000 "$project" >/dev/null
start=$(now_ms)
seq 1 100 | xargs -P 100 -I{} curl -s -o "$work/c{}" -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
  -X POST "$url/$project/volumes" -d '{"volume": {"size": 1, "name": "bench-m{}"}}'
answered=$(( $(now_ms) - start ))
ids=$(cat "$work"/c* | python3 -c 'import json,sys; [print(json.loads(l)["volume"]["id"]) for l in sys.stdin.read().replace("}{", "}\n{").splitlines()]')
until [ "$(curl -s -H "X-Auth-Token: $token" "$url/$project/volumes/detail" | python3 -c 'import json,sys; print(sum(1 for v in json.load(sys.stdin)["volumes"] if v["name"].startswith("bench-m") and v["status"] == "available"))')" = 100 ]; do sleep 0.05; done
echo "  all 100 answered after ${answered} ms, all available after $(( $(now_ms) - start )) ms"
start=$(now_ms)
for id in $ids; do echo "$id"; done | xargs -P 100 -I{} curl -s -o /dev/null -H "X-Auth-Token: $token" -X DELETE "$url/$project/volumes/{}"
until [ -z "$(os volume list -f value -c Name | grep '^bench-m')" ]; do sleep 0.1; done
echo "  all 100 deleted after $(( $(now_ms) - start )) ms"
os quota delete --volume "$project" >/dev/null 2>&1 || true
