#!/usr/bin/env bash
# Servers on real libvirt/QEMU through the unmodified `openstack` CLI (issue 5's acceptance).
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), GUEST (the test guest's qcow2),
# INSTANCES (the node's instances_path), TAG (unique names), CONSOLE_CLIENT (console-client.py),
# CONSOLE_TOKEN_TTL (the controller's [consoleauth] token_ttl). Phases:
#   main                 images, flavors, key pairs, a server through every action, failures, quotas
#   shelve               shelve to SHELVED_OFFLOADED and unshelve, with the disk kept in an image
#   details              description, tags, hostname, access addresses, lock; keys against Nova's samples
#   resize               resize with revert and confirm, a stopped server's disk kept, a cold migration
#   rescue               backups with rotation; rescue from an image with the server's disk attached second, unrescue;
#                        stable rescue (the image asks: the server's disk stays first, the rescue disk last, booted)
#   interrupt-start A    a server, then action A (resize, rescue, shelve) without waiting; prints its id
#   interrupt-finish ID A after a kill -9 of the node during A: a stable state, undone or deleted, no leftovers
#   build-start          creates a server without waiting; prints its id
#   build-finish ID      waits until it is ACTIVE or ERROR (never stuck in BUILD), deletes it, no leftovers
#   persist-create       a server, ACTIVE; prints its id
#   persist-check ID     the server survived a controller restart: ACTIVE, stop/start work, delete
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${GUEST:?}" "${INSTANCES:?}" "${TAG:?}"
SAMPLE_KEYS=${SAMPLE_KEYS:-$(dirname "$0")/nova-server-keys.json}
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
# action SERVER BODY → the HTTP status of POST /servers/SERVER/action (through openstacksdk)
action() {
  "$(dirname "$OSC")/python" -c '
import json, sys, openstack
r = openstack.connect(cloud="petrel").compute.post(f"/servers/{sys.argv[1]}/action", json=json.loads(sys.argv[2]), microversion="2.91")
print(r.status_code)
' "$1" "$2"
}
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

  # Remote consoles through the controller's console proxy (CONSOLE_CLIENT: console-client.py).
  vnc_url=$(os console url show --novnc "$id" -f value -c url) || fail "console url show --novnc"
  [[ "$vnc_url" =~ ^http://127\.0\.0\.1:[0-9]+/vnc_lite\.html\?path=%3Ftoken%3D[0-9a-f]{32}$ ]] || fail "noVNC URL: $vnc_url"
  python3 "$CONSOLE_CLIENT" refused "$vnc_url" http://elsewhere.example > "$work/refused" 2>&1 ||
    fail "a page of another origin opened a console: $(cat "$work/refused")"
  python3 "$CONSOLE_CLIENT" vnc "$vnc_url" > "$work/vnc" 2>&1 || fail "RFB through the proxy: $(cat "$work/vnc")"
  grep -q "FramebufferUpdate with" "$work/vnc" || fail "no framebuffer update: $(cat "$work/vnc")"
  python3 "$CONSOLE_CLIENT" refused "$vnc_url" > "$work/refused" 2>&1 || fail "a used token opened a second connection: $(cat "$work/refused")"
  curl -sf -o "$work/page.html" "${vnc_url%%\?*}" && grep -q "<title>noVNC</title>" "$work/page.html" ||
    fail "the proxy does not serve noVNC's page at ${vnc_url%%\?*}"
  curl -sf "${vnc_url%%/vnc_lite.html*}/core/rfb.js" > /dev/null || fail "the proxy does not serve noVNC's scripts"
  ok "console url show --novnc: noVNC's page, and through the proxy $(cat "$work/vnc") (after a page of another origin was refused); the token's second use $(cat "$work/refused")"
  browser_url=$(os console url show --novnc "$id" -f value -c url) || fail "console url show --novnc"
  python3 "$CONSOLE_CLIENT" browser "$browser_url" "$work/novnc.png" > "$work/browser" 2>&1 || fail "noVNC in Chromium: $(cat "$work/browser")"
  ok "the URL in headless Chromium: $(cat "$work/browser")"
  old_url=$(os --os-compute-api-version 2.5 console url show --novnc "$id" -f value -c url) || fail "os-getVNCConsole (2.5)"
  python3 "$CONSOLE_CLIENT" vnc "$old_url" > "$work/vnc" 2>&1 || fail "RFB through the proxy (2.5's URL): $(cat "$work/vnc")"
  expired_url=$(os console url show --novnc "$id" -f value -c url) || fail "console url show --novnc"
  sleep "$((CONSOLE_TOKEN_TTL + 1))"
  python3 "$CONSOLE_CLIENT" refused "$expired_url" > "$work/refused" 2>&1 || fail "an expired token was taken: $(cat "$work/refused")"
  ok "os-getVNCConsole (2.5) works too; a token older than token_ttl $(cat "$work/refused")"
  serial_url=$(os console url show --serial "$id" -f value -c url) || fail "console url show --serial"
  [[ "$serial_url" =~ ^ws://127\.0\.0\.1:[0-9]+/\?token=[0-9a-f]{32}$ ]] || fail "serial URL: $serial_url"
  python3 "$CONSOLE_CLIENT" serial "$serial_url" > "$work/serial" 2>&1 || fail "serial console: $(tail -5 "$work/serial")"
  virsh -q dumpxml "$(domain "$id")" > "$work/domain.xml" && grep -q "<serial type='tcp'>" "$work/domain.xml" || fail "the domain has no TCP serial port"
  os console log show "$id" | grep -q PETREL-GUEST-BOOTED || fail "with the serial console on TCP the console log lost the boot text"
  ok "console url show --serial: the guest's console shell answered through the proxy ($(grep -c . "$work/serial") lines); console log still kept"
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
  os console url show --novnc "$id" 2>"$work/err" && fail "a stopped server's console URL was given"
  grep -q "409" "$work/err" || fail "console url of a stopped server: $(cat "$work/err")"
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
details)
  # What a server keeps and shows at Nova's newer microversions: description, tags, a
  # hostname the user sets (2.90), access addresses, the lock (2.73) and who it stops; the
  # bodies' keys against Nova's samples; 2.88's hypervisors; integer ids before 2.53.
  setup
  v=(--os-compute-api-version 2.90)
  os "${v[@]}" server create --image "$image" --flavor "$flavor" --nic none --description "first of $TAG" --tag red --tag blue \
    --hostname "host-$TAG" --wait "det-$TAG" -f json > "$work/det.json" || fail "server create at 2.90"
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/det.json")
  os "${v[@]}" server show "$id" -f json > "$work/det.json" || fail "server show at 2.90"
  python3 - "$work/det.json" "host-$TAG" "first of $TAG" <<'PY' || fail "server show at 2.90: $(cat "$work/det.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["description"] == sys.argv[3] and sorted(s["tags"]) == ["blue", "red"], s
assert s["OS-EXT-SRV-ATTR:hostname"] == sys.argv[2] and s["locked"] is False, s
PY
  ok "server create --description --tag --hostname at 2.90: shown as given"
  os server show --diagnostics "$id" -f json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["state"] == "running" and d["driver"] == "libvirt" and d["num_cpus"] == 1 and d["disk_details"][0]["read_bytes"] > 0, d' || fail "server show --diagnostics (admin)"
  os server dump create "$id" || fail "server dump create"
  os server event list "$id" -f value -c Action > "$work/actions" || fail "server event list"
  grep -qx trigger_crash_dump "$work/actions" || fail "server dump create: no trigger_crash_dump action in: $(tr '\n' ' ' < "$work/actions")"
  os "${v[@]}" server set --description "second" --tag green --hostname "renamed-$TAG" "$id" || fail "server set at 2.90"
  os "${v[@]}" server unset --tag red "$id" || fail "server unset --tag"
  [ "$(os "${v[@]}" server show "$id" -f json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["description"], sorted(s["tags"]), s["OS-EXT-SRV-ATTR:hostname"])')" = \
    "second ['blue', 'green'] renamed-$TAG" ] || fail "server set/unset did not stick: $(os "${v[@]}" server show "$id" -f json)"
  os "${v[@]}" server list --tags green -f value -c ID | grep -qx "$id" || fail "server list --tags green"
  os "${v[@]}" server list --not-tags blue -f value -c ID | grep -qx "$id" && fail "server list --not-tags blue listed it"
  ok "server set --description/--tag/--hostname, unset --tag, list --tags/--not-tags"

  # Keys of the bodies against Nova's samples (admin at 2.73's set, a member at 2.90's).
  os user create --password "pw-$TAG" "member-$TAG" >/dev/null || fail "user create"
  os role add --user "member-$TAG" --project admin member || fail "role add member"
  member=(--os-username "member-$TAG" --os-password "pw-$TAG")
  "$(dirname "$OSC")/python" - "$id" "$SAMPLE_KEYS" "member-$TAG" "pw-$TAG" <<'PY' || fail "server bodies differ from Nova's samples"
import json, sys
import openstack
import openstack.config
server, keys, user, password = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
admin = openstack.connect(cloud="petrel")
auth = dict(openstack.config.OpenStackConfig().get_one("petrel").auth, username=user, password=password)
member = openstack.connect(cloud="petrel", auth=auth)
assert member.compute.get("/servers", microversion="2.90").status_code == 200
# Access addresses are the user's to record: PUT at 2.90.
r = admin.compute.put(f"/servers/{server}", json={"server": {"accessIPv4": "198.18.0.9", "accessIPv6": "2001:db8::9"}},
                      microversion="2.90")
assert r.status_code == 200, r.text
for who, conn, sample in (("admin", admin, "2.73 admin"), ("member", member, "2.90 member")):
    body = conn.compute.get(f"/servers/{server}", microversion="2.90").json()["server"]
    # A server with no ports has no security groups to list (Nova leaves the key out too).
    expected = set(keys[sample]) - {"security_groups"}
    assert set(body) == expected, (who, sorted(set(body) - expected), sorted(expected - set(body)))
    assert body["accessIPv4"] == "198.18.0.9" and body["accessIPv6"] == "2001:db8::9", body
# Below 2.90 a member does not see the hostname; below 2.19 there is no description.
old = member.compute.get(f"/servers/{server}", microversion="2.89").json()["server"]
assert "OS-EXT-SRV-ATTR:hostname" not in old and "description" in old, sorted(old)
assert "description" not in member.compute.get(f"/servers/{server}", microversion="2.18").json()["server"]
# No guest posted a password (it has no network to the metadata service): an empty one; clearing works.
r = member.compute.get(f"/servers/{server}/os-server-password")
assert r.status_code == 200 and r.json() == {"password": ""}, r.text
assert admin.compute.delete(f"/servers/{server}/os-server-password").status_code == 204
# 2.93 is not served yet: the answer is Nova's 406.
assert admin.compute.get(f"/servers/{server}", microversion="2.93").status_code == 406
print("sample keys match")
PY
  ok "server bodies have exactly the keys of Nova's samples (admin, member); access addresses round-trip"

  os "${v[@]}" server lock --reason "maintenance $TAG" "$id" || fail "server lock --reason"
  [ "$(os "${v[@]}" server show "$id" -f json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["locked"], s["locked_reason"])')" = \
    "True maintenance $TAG" ] || fail "locked/locked_reason not shown"
  os "${v[@]}" server list --locked -f value -c ID | grep -qx "$id" || fail "server list --locked"
  os "${member[@]}" server stop "$id" 2>"$work/err" && fail "a member stopped a locked server"
  grep -q "is locked" "$work/err" || fail "stop of a locked server: $(cat "$work/err")"
  os "${member[@]}" server delete "$id" 2>"$work/err" && fail "a member deleted a locked server"
  os "${member[@]}" server unlock "$id" || fail "the owner's project could not unlock"
  os "${member[@]}" server stop "$id" || fail "stop after unlock"
  expect "$id" SHUTOFF "shut off" "a member stops the unlocked server"
  ok "server lock --reason: shown, listed; a member's stop and delete refused (409 'is locked'); unlock, then stop"

  # A server group: a server created into it is its member, shown from 2.71; an unknown group is refused.
  group=$(os --os-compute-api-version 2.64 server group create --policy affinity "group-$TAG" -f value -c id) || fail "server group create"
  os "${v[@]}" server create --image "$image" --flavor "$flavor" --nic none --hint group="$group" --wait "grouped-$TAG" -f value -c id \
    > "$work/grouped" || fail "server create --hint group="
  grouped=$(cat "$work/grouped")
  os server group show "$group" -f json | python3 -c '
import json, sys
g = json.load(sys.stdin)
assert g["members"] in ([sys.argv[1]], sys.argv[1]) and g["policy"] == "affinity", g
' "$grouped" || fail "server group show: $(os server group show "$group" -f json)"
  [ "$(os "${v[@]}" server show "$grouped" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["server_groups"])')" = "['$group']" ] ||
    fail "server show does not list the server's group"
  os server create --image "$image" --flavor "$flavor" --nic none --hint group=00000000-0000-4000-8000-000000000000 "nogroup-$TAG" \
    2>"$work/err" && fail "an unknown server group was accepted"
  grep -q "could not be found" "$work/err" || fail "unknown group: $(cat "$work/err")"
  os server delete --wait "$grouped" || fail "server delete (grouped)"
  os server group show "$group" -f json | python3 -c 'import json,sys; m=json.load(sys.stdin)["members"]; assert m in ([], ""), m' ||
    fail "a deleted server stayed in its group: $(os server group show "$group" -f json)"
  os server group delete "$group" || fail "server group delete"
  ok "server group create/show/delete; --hint group= makes a member (server_groups at 2.71); deletion leaves the group"

  # 2.88: hypervisors without resources, with their uptime; statistics gone. Before 2.53: integer ids.
  hv=$(os hypervisor list -f value -c "Hypervisor Hostname" | head -1)
  os --os-compute-api-version 2.88 hypervisor show "$hv" -f json > "$work/hv.json" || fail "hypervisor show at 2.88"
  python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))
assert "vcpus" not in h and "memory_mb" not in h and "running_vms" not in h and h["state"] == "up", h
' "$work/hv.json" || fail "hypervisor show at 2.88: $(cat "$work/hv.json")"
  # (The CLI does not print the uptime 2.88 adds to the body: read it from the API.)
  "$(dirname "$OSC")/python" -c '
import sys, openstack
conn = openstack.connect(cloud="petrel")
found = conn.compute.get("/os-hypervisors/detail", microversion="2.88").json()["hypervisors"]
h = next(h for h in found if h["hypervisor_hostname"] == sys.argv[1])
assert h.get("uptime") and "vcpus" not in h, h
# The statistics are gone at 2.88 (the CLI asks them at an older version by itself).
assert conn.compute.get("/os-hypervisors/statistics", microversion="2.88").status_code == 404
' "$hv" || fail "the hypervisor body at 2.88 has no uptime"
  os --os-compute-api-version 2.1 compute service list -f value -c ID | grep -qvE '^[0-9]+$' && fail "service ids are not integers at 2.1"
  os --os-compute-api-version 2.53 compute service list -f value -c ID | grep -qE '^[0-9]+$' && fail "service ids are integers at 2.53"
  ok "2.88 hypervisor show: uptime, no resources; statistics gone; service ids integers before 2.53, UUIDs from it"

  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  os user delete "member-$TAG" || fail "user delete"
  echo "phase details passed"
  ;;
shelve)
  # Shelve → SHELVED_OFFLOADED: the disk in an image, no domain, no files, no host; unshelve
  # schedules it again and builds it from that image, which then goes.
  setup
  os server create --image "$image" --flavor "$flavor" --nic none --wait "shelf-$TAG" -f value -c id > "$work/id" || fail "server create"
  id=$(cat "$work/id")
  os server stop "$id" || fail "server stop"
  expect "$id" SHUTOFF "shut off" "server stop before shelving"
  qemu-img convert -O raw "$INSTANCES/$id/disk" "$work/before.raw" || fail "reading the disk"
  # (The CLI skips servers in the wrong state by itself: the API is asked directly.)
  [ "$(action "$id" '{"unshelve": null}')" = 409 ] || fail "unshelving a server that is not shelved was not refused with 409"
  os server shelve --wait "$id" || fail "server shelve --wait"
  wait_status "$id" SHELVED_OFFLOADED 180 || fail "server shelve: not SHELVED_OFFLOADED"
  virsh -q dominfo "$(domain "$id")" >/dev/null 2>&1 && fail "an offloaded server kept its domain"
  [ -e "$INSTANCES/$id" ] && fail "an offloaded server kept its directory"
  [ -z "$(os server show "$id" -f value -c OS-EXT-SRV-ATTR:host | grep -v None)" ] || fail "an offloaded server kept its host"
  shelved=$(os image show "shelf-$TAG-shelved" -f value -c id) || fail "no shelved image"
  [ "$(os image show "$shelved" -f value -c status)" = active ] || fail "the shelved image is not active"
  os image save --file "$work/shelved.qcow2" "$shelved" || fail "image save (shelved)"
  qemu-img compare -q "$work/before.raw" "$work/shelved.qcow2" || fail "the shelved image differs from the server's disk"
  [ "$(action "$id" '{"shelve": null}')" = 409 ] || fail "shelving a shelved server was not refused with 409"
  ok "server shelve → SHELVED_OFFLOADED: no domain, no directory, no host; the image holds the disk as it was"
  os server unshelve --wait "$id" || fail "server unshelve --wait"
  expect "$id" ACTIVE running "server unshelve"
  qemu-img info -U --output json "$INSTANCES/$id/disk" | python3 -c '
import json, sys
info = json.load(sys.stdin)
assert info.get("backing-filename", "").endswith("/_base/" + sys.argv[1]), info
' "$shelved" || fail "the unshelved disk is not built on the shelved image"
  for ((i = 0; i < 60; i++)); do os image show "$shelved" >/dev/null 2>&1 || break; sleep 0.5; done
  os image show "$shelved" >/dev/null 2>&1 && fail "the shelved image was kept after unshelving"
  ok "server unshelve → ACTIVE on the shelved image (virsh: running); the image is deleted"
  # What was asked of the server, newest first, and what its host did for each.
  os server event list "$id" -f json > "$work/events.json" || fail "server event list"
  python3 -c '
import json, sys
actions = [a["Action"] for a in json.load(open(sys.argv[1]))]
assert actions == ["unshelve", "shelve", "stop", "create"], actions
' "$work/events.json" || fail "server event list: $(cat "$work/events.json")"
  request=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[1]["Request ID"])' "$work/events.json")
  os --os-compute-api-version 2.84 server event show "$id" "$request" -f json > "$work/event.json" || fail "server event show"
  python3 -c '
import json, sys
action = json.load(open(sys.argv[1]))
events = action["events"]
assert action["action"] == "shelve" and len(events) == 1, action
assert events[0]["event"] == "compute_shelve_instance" and events[0]["result"] == "Success" and events[0]["finish_time"], events
assert events[0]["host"] and (events[0].get("hostId") or events[0].get("host_id")), events
' "$work/event.json" || fail "server event show: $(cat "$work/event.json")"
  ok "server event list: unshelve, shelve, stop, create; event show: the shelve's host event ended in Success"
  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  echo "phase shelve passed"
  ;;
resize)
  # Resize and cold migration within the host (the test cloud allows it): VERIFY_RESIZE with the
  # new flavor in the domain and on the disk, revert back to the old one, confirm keeps the new.
  setup
  big=big-$TAG
  os flavor show "$big" >/dev/null 2>&1 || os flavor create --vcpus 2 --ram 192 --disk 2 "$big" >/dev/null || fail "flavor create ($big)"
  os server create --image "$image" --flavor "$flavor" --nic none --wait "resize-$TAG" -f value -c id > "$work/id" || fail "server create"
  id=$(cat "$work/id")
  cpus() { virsh -q dominfo "$(domain "$id")" | awk -F: '/^CPU\(s\)/ {gsub(/ /, "", $2); print $2}'; }
  memory() { virsh -q dominfo "$(domain "$id")" | awk -F: '/^Max memory/ {gsub(/ |KiB/, "", $2); print $2}'; }
  gigabytes() { qemu-img info -U --output json "$INSTANCES/$id/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"] // 2**30)'; }
  shows() { os server show "$id" -f json | python3 -c 'import json,sys; f=json.load(sys.stdin)["flavor"]; print(f if isinstance(f, str) else f.get("original_name", f))'; }
  migration() { os server migration list --server "$id" -f json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
print(rows[0]["Status"], rows[0]["Type"], len(rows))'; }
  [ "$(action "$id" '{"confirmResize": null}')" = 409 ] || fail "confirming a server that was not resized was not refused with 409"
  same=$(os flavor show "$flavor" -f value -c id)
  [ "$(action "$id" "{\"resize\": {\"flavorRef\": \"$same\"}}")" = 400 ] || fail "a resize to the same flavor was not refused with 400"
  [ "$(action "$id" '{"resize": {"flavorRef": "no-such-flavor"}}')" = 400 ] || fail "a resize to an unknown flavor was not refused with 400"
  [ "$(cpus)/$(memory)/$(gigabytes)" = "1/131072/1" ] || fail "before the resize: $(cpus) CPUs, $(memory) KiB, $(gigabytes) GB"

  os server resize --flavor "$big" --wait "$id" || fail "server resize --flavor"
  expect "$id" VERIFY_RESIZE running "server resize --flavor $big"
  [ "$(cpus)/$(memory)/$(gigabytes)" = "2/196608/2" ] || fail "resized: $(cpus) CPUs, $(memory) KiB, $(gigabytes) GB"
  shows | grep -q "$big" || fail "a resized server does not show its new flavor: $(shows)"
  [ "$(migration)" = "finished resize 1" ] || fail "server migration list: $(migration)"
  ok "server resize → VERIFY_RESIZE: virsh dominfo 2 CPUs, 192 MiB; the disk 2 GB; migration finished"
  os server resize revert "$id" || fail "server resize revert"
  expect "$id" ACTIVE running "server resize revert"
  [ "$(cpus)/$(memory)/$(gigabytes)" = "1/131072/1" ] || fail "reverted: $(cpus) CPUs, $(memory) KiB, $(gigabytes) GB"
  shows | grep -q "$flavor" || fail "a reverted server does not show its old flavor: $(shows)"
  [ "$(migration)" = "reverted resize 2" ] || [ "$(migration)" = "reverted resize 1" ] || fail "server migration list after the revert: $(migration)"
  ok "server resize revert → ACTIVE: 1 CPU, 128 MiB, 1 GB again"

  # A stopped server: resized with its disk's contents kept, and still off once confirmed.
  os server stop "$id" || fail "server stop"
  expect "$id" SHUTOFF "shut off" "server stop before resizing"
  qemu-img convert -U -O raw "$INSTANCES/$id/disk" "$work/before.raw" || fail "reading the disk"
  os server resize --flavor "$big" --wait "$id" || fail "server resize (stopped)"
  expect "$id" VERIFY_RESIZE "shut off" "server resize of a stopped server"
  os server resize confirm "$id" || fail "server resize confirm"
  expect "$id" SHUTOFF "shut off" "server resize confirm"
  [ "$(cpus)/$(memory)/$(gigabytes)" = "2/196608/2" ] || fail "confirmed: $(cpus) CPUs, $(memory) KiB, $(gigabytes) GB"
  qemu-img compare -q "$work/before.raw" "$INSTANCES/$id/disk" || fail "the resized disk does not hold what it held"
  [ -e "$INSTANCES/$id/resize-backup" ] && fail "a confirmed resize kept the disks of before"
  [ "$(migration)" = "confirmed resize 2" ] || fail "server migration list after the confirm: $(migration)"
  ok "server resize confirm → SHUTOFF with the new flavor; the disk holds what it held; nothing kept for a revert"
  "$(dirname "$OSC")/python" -c '
import sys, openstack
c = openstack.connect(cloud="petrel")
alloc = c.placement.get(f"/allocations/{sys.argv[1]}", microversion="1.28").json()["allocations"]
assert len(alloc) == 1, alloc
resources = list(alloc.values())[0]["resources"]
assert resources == {"VCPU": 2, "MEMORY_MB": 192, "DISK_GB": 2}, resources
' "$id" || fail "the server's Placement allocation is not the new flavor's"
  ok "allocation show: VCPU 2, MEMORY_MB 192, DISK_GB 2"

  # A cold migration (within the host), confirmed; then the server starts.
  os server migrate --wait "$id" || fail "server migrate"
  expect "$id" VERIFY_RESIZE "shut off" "server migrate"
  [ "$(migration)" = "finished migration 3" ] || fail "server migration list after the migration: $(migration)"
  os server migrate confirm "$id" || fail "server migrate confirm"
  expect "$id" SHUTOFF "shut off" "server migrate confirm"
  os server start "$id" || fail "server start"
  expect "$id" ACTIVE running "server start after the migration"
  os server event list "$id" -f json > "$work/events.json" || fail "server event list"
  python3 -c '
import json, sys
actions = [a["Action"] for a in json.load(open(sys.argv[1]))]
assert actions[:7] == ["start", "confirmResize", "migrate", "confirmResize", "resize", "stop", "revertResize"], actions
' "$work/events.json" || fail "server event list: $(cat "$work/events.json")"
  ok "server migrate → VERIFY_RESIZE, confirm → SHUTOFF; server event list has every step"
  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  os flavor delete "$big" || fail "flavor delete"
  echo "phase resize passed"
  ;;
rescue)
  # Rescue boots the server from a disk of the rescue image with its own disk attached second;
  # unrescue boots it from its own disk again.
  setup
  os server create --image "$image" --flavor "$flavor" --nic none --wait "rescue-$TAG" -f value -c id > "$work/id" || fail "server create"
  id=$(cat "$work/id")
  disks() { virsh -q domblklist "$(domain "$id")" | awk '{printf "%s=%s ", $1, $2}'; }
  # createBackup with a rotation of 2: the third daily backup deletes the first.
  for n in 1 2 3; do
    os server backup create --name "backup-$TAG-$n" --type daily --rotate 2 --wait "$id" >/dev/null || fail "server backup create ($n)"
  done
  backups() { os image list --private -f value -c Name | grep "^backup-$TAG-" | sort | tr '\n' ' '; }
  for ((i = 0; i < 60; i++)); do [ "$(backups)" = "backup-$TAG-2 backup-$TAG-3 " ] && break; sleep 0.5; done
  [ "$(backups)" = "backup-$TAG-2 backup-$TAG-3 " ] || fail "backups after a rotation of 2: $(backups)"
  props=$(os image show "backup-$TAG-3" -f json -c properties)
  echo "$props" | grep -q '"image_type": "backup"' && echo "$props" | grep -q '"backup_type": "daily"' || fail "backup image properties: $props"
  ok "server backup create --rotate 2 (three times): the two newest daily backups are kept"
  [ "$(action "$id" '{"unrescue": null}')" = 409 ] || fail "unrescuing a server that is not rescued was not refused with 409"
  [ "$(action "$id" '{"rescue": {"rescue_image_ref": "8d0b47a4-5dcb-4d0e-a7d1-29d4a85b7bd8"}}')" = 400 ] ||
    fail "a rescue with an unknown image was not refused with 400"
  os server rescue --image "$image" "$id" || fail "server rescue"
  expect "$id" RESCUE running "server rescue"
  [ "$(disks)" = "vda=$INSTANCES/$id/disk.rescue vdb=$INSTANCES/$id/disk " ] || fail "a rescued domain's disks: $(disks)"
  for ((i = 0; i < 240; i++)); do
    os console log show "$id" > "$work/console" && grep -q PETREL-GUEST-READY "$work/console" && break
    sleep 0.5
  done
  grep -q "PETREL-GUEST-DISKS=vda vdb " "$work/console" || fail "the rescued guest does not see two disks: $(grep PETREL-GUEST "$work/console")"
  [ "$(action "$id" '{"rescue": null}')" = 409 ] || fail "rescuing a rescued server was not refused with 409"
  [ "$(action "$id" '{"os-stop": null}')" = 409 ] || fail "stopping a rescued server was not refused with 409"
  ok "server rescue → RESCUE: the guest boots the rescue disk and sees its own disk as vdb"
  os server unrescue "$id" || fail "server unrescue"
  expect "$id" ACTIVE running "server unrescue"
  [ "$(disks)" = "vda=$INSTANCES/$id/disk " ] || fail "an unrescued domain's disks: $(disks)"
  [ -e "$INSTANCES/$id/disk.rescue" ] && fail "the rescue disk was kept after unrescue"
  os server event list "$id" -f value -c Action > "$work/actions" || fail "server event list"
  [ "$(sed -n 1,2p "$work/actions" | tr '\n' ' ')" = "unrescue rescue " ] || fail "server event list: $(tr '\n' ' ' < "$work/actions")"
  ok "server unrescue → ACTIVE on its own disk; the rescue disk is gone"
  # Stable rescue (2.87): an image with hw_rescue_device/hw_rescue_bus keeps the server's disk
  # where it is and adds the rescue disk last, booted first.
  os image create --file "$GUEST" --disk-format qcow2 --property hw_rescue_device=disk --property hw_rescue_bus=virtio \
    "stable-rescue-$TAG" -f value -c id > "$work/stable" || fail "image create (stable rescue)"
  os server rescue --image "$(cat "$work/stable")" "$id" || fail "server rescue (stable)"
  expect "$id" RESCUE running "server rescue with a stable-rescue image"
  [ "$(disks)" = "vda=$INSTANCES/$id/disk vdb=$INSTANCES/$id/disk.rescue " ] || fail "a stably rescued domain's disks: $(disks)"
  virsh -q dumpxml "$(domain "$id")" | grep -q "<boot order='1'/>" || fail "the rescue disk is not first in the boot order"
  for ((i = 0; i < 240; i++)); do
    os console log show "$id" > "$work/console" && grep -q PETREL-GUEST-READY "$work/console" && break
    sleep 0.5
  done
  grep -q "PETREL-GUEST-DISKS=vda vdb " "$work/console" || fail "the stably rescued guest does not see two disks: $(grep PETREL-GUEST "$work/console")"
  os server unrescue "$id" || fail "server unrescue (stable)"
  expect "$id" ACTIVE running "server unrescue after a stable rescue"
  [ "$(disks)" = "vda=$INSTANCES/$id/disk " ] || fail "an unrescued domain's disks: $(disks)"
  ok "stable rescue: the server's disk stays vda, the rescue disk is vdb and boots; unrescue restores"
  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  os image delete "backup-$TAG-2" "backup-$TAG-3" "stable-rescue-$TAG" || fail "image delete (backups)"
  echo "phase rescue passed"
  ;;
interrupt-start)
  # A server, ACTIVE, then ACTION (resize, rescue, shelve) asked without waiting: the test
  # kills the node while it runs. Prints the server's id.
  setup
  big=big-$TAG
  os flavor show "$big" >/dev/null 2>&1 || os flavor create --vcpus 2 --ram 192 --disk 2 "$big" >/dev/null || fail "flavor create ($big)"
  os server create --image "$image" --flavor "$flavor" --nic none --wait "cut-$TAG-$2" -f value -c id > "$work/id" || fail "server create"
  id=$(cat "$work/id")
  case "$2" in
    resize) os server resize --flavor "$big" "$id" || fail "server resize" ;;
    rescue) os server rescue "$id" >/dev/null || fail "server rescue" ;;
    shelve) os server shelve "$id" || fail "server shelve" ;;
  esac
  echo "$id"
  ;;
interrupt-finish)
  # After the node was killed during ACTION and started again: the server ends where the
  # action takes it (or back where it was, or ERROR with a fault), never stuck; then it can be
  # taken back and deleted with nothing left behind.
  id=${2:?id}
  case "$3" in
    resize) done_status=VERIFY_RESIZE ;;
    rescue) done_status=RESCUE ;;
    shelve) done_status=SHELVED_OFFLOADED ;;
  esac
  deadline=$((SECONDS + 240))
  while ((SECONDS < deadline)); do
    now=$(state "$id") || fail "server show"
    case "$now" in "$done_status None" | "ACTIVE None" | "ERROR None") break ;; esac
    sleep 1
  done
  case "$now" in
    "$done_status None") ok "$3 interrupted by kill -9 of the node → $done_status after the restart" ;;
    "ACTIVE None") ok "$3 interrupted by kill -9 of the node → ACTIVE (undone) after the restart" ;;
    "ERROR None") [ -n "$(os server show "$id" -f value -c fault)" ] || fail "$3 interrupted: ERROR without a fault"
                  ok "$3 interrupted by kill -9 of the node → ERROR with a fault" ;;
    *) fail "$3 interrupted by kill -9 of the node: stuck in '$now'" ;;
  esac
  case "$now" in
    "VERIFY_RESIZE None")
      [ -e "$INSTANCES/$id/resize-backup/complete" ] || fail "a resize finished after the restart kept no disks for a revert"
      os server resize revert "$id" || fail "server resize revert"
      expect "$id" ACTIVE running "server resize revert after the interrupted resize" ;;
    "RESCUE None")
      os server unrescue "$id" || fail "server unrescue"
      expect "$id" ACTIVE running "server unrescue after the interrupted rescue" ;;
  esac
  os server delete --wait "$id" || fail "server delete"
  no_leftovers "$id"
  for image in $(os image list --private -f value -c Name | grep "^cut-$TAG-$3-shelved$"); do
    fail "the shelved image $image was left after the server was deleted"
  done
  echo "phase interrupt-finish passed"
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
