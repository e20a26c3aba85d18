#!/usr/bin/env bash
# Servers on real libvirt/QEMU through the unmodified `openstack` CLI (issue 5's acceptance).
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), GUEST (the test guest's qcow2),
# INSTANCES (the node's instances_path), TAG (unique names). Phases:
#   main                 images, flavors, key pairs, a server through every action, failures, quotas
#   build-start          creates a server without waiting; prints its id
#   build-finish ID      waits until it is ACTIVE or ERROR (never stuck in BUILD), deletes it, no leftovers
#   persist-create       a server, ACTIVE; prints its id
#   persist-check ID     the server survived a controller restart: ACTIVE, stop/start work, delete
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${GUEST:?}" "${INSTANCES:?}" "${TAG:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-servers-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
image=tiny-$TAG flavor=tiny-$TAG

# state SERVER → "STATUS TASK_STATE"
state() { os server show "$1" -f json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["status"], s["OS-EXT-STS:task_state"])'; }
# wait_status SERVER STATUS [SECONDS]: STATUS with no task running
wait_status() {
  local deadline=$((SECONDS + ${3:-120})) now
  while ((SECONDS < deadline)); do
    now=$(state "$1") || return 1
    [ "$now" = "$2 None" ] && return 0
    [ "${now%% *}" = ERROR ] && [ "$2" != ERROR ] && { echo "$1 went to ERROR: $(os server show "$1" -c fault -f value)" >&2; return 1; }
    sleep 0.3
  done
  echo "$1 is '$now', not '$2'" >&2
  return 1
}
domain() { echo "petrel-$1"; }
domstate() { virsh -q domstate "$(domain "$1")" 2>/dev/null | head -1; }
# expect SERVER STATUS DOMSTATE WHAT
expect() {
  wait_status "$1" "$2" || fail "$4: server not $2"
  [ "$(domstate "$1")" = "$3" ] || fail "$4: virsh domstate says '$(domstate "$1")', not '$3'"
  ok "$4 → $2, virsh: $3"
}
no_leftovers() { # no_leftovers ID
  virsh -q dominfo "$(domain "$1")" >/dev/null 2>&1 && fail "domain $(domain "$1") left behind"
  [ -e "$INSTANCES/$1" ] && fail "instance directory $INSTANCES/$1 left behind"
  return 0
}
setup() {
  os image show "$image" >/dev/null 2>&1 ||
    os image create --file "$GUEST" --disk-format qcow2 --container-format bare --public "$image" >/dev/null || fail "image create"
  os flavor show "$flavor" >/dev/null 2>&1 || os flavor create --vcpus 1 --ram 128 --disk 1 "$flavor" >/dev/null || fail "flavor create"
}

case "${1:?phase}" in
main)
  setup
  os image list -f value -c Name | grep -x "$image" >/dev/null || fail "image list"
  [ "$(os image show "$image" -f value -c status)" = active ] || fail "image show"
  os image save --file "$work/saved.qcow2" "$image" || fail "image save"
  cmp -s "$work/saved.qcow2" "$GUEST" || fail "image save returned other bytes"
  os flavor list -f value -c Name | grep -x "$flavor" >/dev/null || fail "flavor list"
  os keypair create "key-$TAG" > "$work/key" || fail "keypair create"
  ok "image create/list/show/save, flavor create/list, keypair create"

  # With a config drive: the guest (no network here) reads its metadata there and runs its user data.
  printf '#!/bin/sh\necho "user data %s ran on $(hostname)"\n' "$TAG" > "$work/user-data"
  os server create --image "$image" --flavor "$flavor" --nic none --key-name "key-$TAG" --property purpose=test --wait \
    --config-drive True --user-data "$work/user-data" "vm-$TAG" -f json > "$work/server.json" || fail "server create --wait"
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/server.json")
  python3 - "$work/server.json" <<'PY' || fail "server create output: $(cat "$work/server.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["status"] == "ACTIVE" and s["OS-EXT-STS:vm_state"] == "active" and s["OS-EXT-STS:power_state"] == 1, s
assert s["OS-EXT-SRV-ATTR:host"] and s["OS-EXT-SRV-ATTR:hypervisor_hostname"] == s["OS-EXT-SRV-ATTR:host"], s
assert s["flavor"]["original_name"].startswith("tiny-") and s["flavor"]["vcpus"] == 1 and s["flavor"]["ram"] == 128, s
assert s["key_name"].startswith("key-") and s["properties"] == {"purpose": "test"} and s["addresses"] == {}, s
assert s["OS-SRV-USG:launched_at"] and s["created"] and s["updated"], s
assert s["config_drive"] == "True", s
PY
  [ "$(domstate "$id")" = running ] || fail "virsh: $(domstate "$id")"
  ok "server create --wait → ACTIVE (host, flavor, key, metadata), virsh: running"
  for ((i = 0; i < 200; i++)); do
    os console log show "$id" > "$work/console" && grep -q PETREL-GUEST-BOOTED "$work/console" && break
    sleep 0.5
  done
  grep -q PETREL-GUEST-BOOTED "$work/console" || fail "console log show: no PETREL-GUEST-BOOTED in $(tail -5 "$work/console")"
  [ "$(os console log show --lines 2 "$id" | wc -l)" -le 2 ] || fail "console log show --lines 2"
  ok "console log show has PETREL-GUEST-BOOTED; --lines"
  [ -s "$INSTANCES/$id/disk.config" ] || fail "no config drive in $INSTANCES/$id"
  for ((i = 0; i < 200; i++)); do
    os console log show "$id" > "$work/console" && grep -q PETREL-GUEST-READY "$work/console" && break
    sleep 0.5
  done
  tr -d '\r' < "$work/console" | grep -A2 PETREL-USERDATA-BEGIN | tr '\n' '|' | grep -q "^PETREL-USERDATA-BEGIN|user data $TAG ran on [^|]*|PETREL-USERDATA-END|" ||
    fail "the config drive's user data did not run: $(tail -8 "$work/console")"
  grep -q "PETREL-GUEST-CONFIGDRIVE-OK uuid=$id" "$work/console" || fail "the guest did not read its config drive"
  ok "--config-drive True: the guest read its metadata from the config drive and ran its user data"
  os server list -f value -c ID | grep -x "$id" >/dev/null || fail "server list"
  os server list --status ACTIVE --name "^vm-$TAG\$" -f value -c ID | grep -x "$id" >/dev/null || fail "server list --status --name"
  os server set --name "vm2-$TAG" "$id" && [ "$(os server show "$id" -f value -c name)" = "vm2-$TAG" ] || fail "server set --name"
  ok "server list (filters), server set --name"

  os server reboot "$id" || fail "server reboot"
  expect "$id" ACTIVE running "server reboot (soft)"
  os server reboot --hard "$id" || fail "server reboot --hard"
  expect "$id" ACTIVE running "server reboot --hard"
  os server stop "$id" || fail "server stop"
  expect "$id" SHUTOFF "shut off" "server stop"
  os server stop "$id" 2>"$work/err" && fail "stopping a stopped server was accepted"
  grep -q "409" "$work/err" || fail "stop when stopped: $(cat "$work/err")"
  os server start "$id" || fail "server start"
  expect "$id" ACTIVE running "server start"
  # A guest that stops without Petrel asking (here: pulled from under it) is shown SHUTOFF,
  # from libvirt's lifecycle event.
  virsh -q destroy "$(domain "$id")" >/dev/null || fail "virsh destroy"
  expect "$id" SHUTOFF "shut off" "a domain stopped outside Petrel"
  os server start "$id" || fail "server start"
  expect "$id" ACTIVE running "server start"
  os server pause "$id" || fail "server pause"
  expect "$id" PAUSED paused "server pause"
  os server unpause "$id" || fail "server unpause"
  expect "$id" ACTIVE running "server unpause"
  os server suspend "$id" || fail "server suspend"
  expect "$id" SUSPENDED "shut off" "server suspend"
  virsh -q dominfo "$(domain "$id")" | grep -i "managed save: *yes" >/dev/null || fail "suspend left no managed save"
  os server resume "$id" || fail "server resume"
  expect "$id" ACTIVE running "server resume"
  os server rebuild --image "$image" --wait "$id" >/dev/null || fail "server rebuild --wait"
  expect "$id" ACTIVE running "server rebuild"
  os server image create --name "snap-$TAG" --wait "$id" >/dev/null || fail "server image create --wait"
  snapshot=$(os image show "snap-$TAG" -f json) || fail "the snapshot image is missing"
  python3 -c '
import json, sys
i = json.loads(sys.argv[1])
assert i["status"] == "active" and i["disk_format"] == "qcow2" and i["size"] > 0, i
assert i["properties"]["image_type"] == "snapshot" and i["properties"]["instance_uuid"] == sys.argv[2], i
' "$snapshot" "$id" || fail "snapshot image: $snapshot"
  expect "$id" ACTIVE running "server image create"
  os image save --file "$work/snap.qcow2" "snap-$TAG" && qemu-img check -q "$work/snap.qcow2" || fail "the snapshot is not a valid qcow2"
  ok "the snapshot is an active qcow2 image with the server's properties"

  # Failure paths: clear 4xx errors, or ERROR with a fault that says why.
  qemu-img create -q -f qcow2 "$work/big.qcow2" 2G
  os image create --file "$work/big.qcow2" --disk-format qcow2 "big-$TAG" >/dev/null || fail "image create (big)"
  os server create --image "big-$TAG" --flavor "$flavor" --nic none "big-$TAG" 2>"$work/err" && fail "an image larger than the flavor's disk was accepted"
  grep -q "Flavor's disk is too small for requested image" "$work/err" || fail "too-big image: $(cat "$work/err")"
  os server create --image "$image" --flavor no-such-flavor --nic none "x-$TAG" 2>"$work/err" && fail "an unknown flavor was accepted"
  grep -qi "flavor" "$work/err" || fail "unknown flavor: $(cat "$work/err")"
  os server create --image 00000000-0000-0000-0000-000000000000 --flavor "$flavor" --nic none "x-$TAG" 2>"$work/err" &&
    fail "an unknown image was accepted"
  grep -qi "image" "$work/err" || fail "unknown image: $(cat "$work/err")"
  os flavor create --vcpus 1 --ram 40000 --disk 1 "huge-$TAG" >/dev/null || fail "flavor create (huge)"
  os server create --image "$image" --flavor "huge-$TAG" --nic none --wait "huge-$TAG" >/dev/null 2>&1 && fail "a flavor no host fits went ACTIVE"
  wait_status "huge-$TAG" ERROR 60 || fail "the unfittable server is not in ERROR"
  fault=$(os server show "huge-$TAG" -c fault -f value)
  grep -q "No valid host was found" <<<"$fault" || fail "fault of the unfittable server: $fault"
  os server delete --wait "huge-$TAG" || fail "a server in ERROR cannot be deleted"
  ok "too-big image, unknown flavor, unknown image refused; a flavor no host fits → ERROR 'No valid host', deletable"

  project=$(os project show admin -f value -c id)
  count=$(os server list --project "$project" -f value -c ID | wc -l)
  os quota set --instances "$count" "$project" || fail "quota set --instances"
  os server create --image "$image" --flavor "$flavor" --nic none "over-$TAG" 2>"$work/err" && fail "the instances quota was not enforced"
  grep -q "Quota exceeded for instances" "$work/err" || fail "quota: $(cat "$work/err")"
  os quota set --instances 10 --cores 1 "$project" || fail "quota set --cores"
  os server create --image "$image" --flavor "$flavor" --nic none "over-$TAG" 2>"$work/err" && fail "the cores quota was not enforced"
  grep -q "Quota exceeded for cores" "$work/err" || fail "quota: $(cat "$work/err")"
  os quota set --instances 10 --cores 20 "$project" || fail "quota reset"
  ok "instances and cores quotas enforced (403 'Quota exceeded')"

  os server delete --wait "$id" || fail "server delete --wait"
  no_leftovers "$id"
  os server show "$id" >/dev/null 2>&1 && fail "a deleted server is still shown"
  os image delete "snap-$TAG" "big-$TAG" || fail "image delete"
  os flavor delete "huge-$TAG" || fail "flavor delete"
  os keypair delete "key-$TAG" || fail "keypair delete"
  ok "server delete --wait leaves no domain and no directory; image delete"
  echo "phase main passed"
  ;;
build-start)
  setup
  os server create --image "$image" --flavor "$flavor" --nic none "crash-$TAG" -f value -c id || fail "server create"
  ;;
build-finish)
  id=${2:?id}
  deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    now=$(state "$id") || fail "server show"
    case "$now" in "ACTIVE None" | "ERROR None") break ;; esac
    sleep 0.5
  done
  case "$now" in
    "ACTIVE None") [ "$(domstate "$id")" = running ] || fail "ACTIVE after the node's restart but virsh says $(domstate "$id")" ;;
    "ERROR None") os server show "$id" -c fault -f value | grep -q message || fail "ERROR without a fault" ;;
    *) fail "after the node's restart the server is stuck in '$now'" ;;
  esac
  ok "kill -9 of the node while building, restart → ${now% *}"
  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  leftovers=$(ls "$INSTANCES" | grep -v '^_base$')
  [ -z "$leftovers" ] || fail "instance directories left: $leftovers"
  ok "deleted, nothing leaked"
  echo "phase build-finish passed"
  ;;
persist-create)
  setup
  os server create --image "$image" --flavor "$flavor" --nic none --wait "keep-$TAG" -f value -c id || fail "server create"
  ;;
persist-check)
  id=${2:?id}
  wait_status "$id" ACTIVE 30 || fail "after the controller's restart the server is not ACTIVE"
  os server stop "$id" || fail "server stop after the restart"
  expect "$id" SHUTOFF "shut off" "server stop after the controller's restart"
  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  os image delete "$image" && os flavor delete "$flavor" || fail "cleanup"
  echo "phase persist-check passed"
  ;;
*) fail "unknown phase $1" ;;
esac
