#!/usr/bin/env bash
# Deferred delete (Nova's reclaim_instance_interval) with the unmodified CLI, on one node
# (libvirt's test driver) whose controller keeps deleted servers RECLAIM seconds:
# `server delete` → SOFT_DELETED (powered off, hidden from lists but for admins' --deleted,
# not counted in the quota), `server restore` → ACTIVE, `server delete --force` → gone at once,
# and a soft-deleted server left alone is reclaimed. Refusals in Nova's words: restore of a
# server that is not soft-deleted (409), over quota (403), another project's server (404).
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), PETREL_URL, GUEST, RECLAIM.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${PETREL_URL:?}" "${GUEST:?}" "${RECLAIM:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-deferred-delete-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
field() { os server show "$1" -f value -c "$2" 2>/dev/null; }
# Waits until server $1's status is $2 (up to $3 seconds, default 60); a server that is gone fails at once.
wait_status() {
  local status="" deadline=$((SECONDS + ${3:-60}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    status=$(field "$1" status) || fail "server $1 is gone while waiting for $2"
    [ "$status" = "$2" ] && return 0
    sleep 0.5
  done
  fail "server $1 is $status, not $2: $(os server show "$1" -f json 2>&1 | tail -c 1500)"
}
# POST /servers/{id}/action with token $1 and body $3 at the newest microversion; prints the status, body in $work/body.
action() {
  curl -s -o "$work/body" -w '%{http_code}' -X POST "$PETREL_URL/compute/v2.1/servers/$2/action" -H "X-Auth-Token: $1" \
    -H "Content-Type: application/json" -H "OpenStack-API-Version: compute latest" -d "$3"
}
# The project's totalInstancesUsed, from GET /limits.
used() {
  curl -s "$PETREL_URL/compute/v2.1/limits" -H "X-Auth-Token: $token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["absolute"]["totalInstancesUsed"])'
}

os image create --file "$GUEST" --disk-format qcow2 --public dd-image -f value -c id > /dev/null || fail "image create"
os flavor create --vcpus 1 --ram 128 --disk 1 dd.tiny -f value -c id > /dev/null || fail "flavor create"
for name in dd-a dd-b dd-c; do
  os server create --image dd-image --flavor dd.tiny --nic none --wait "$name" -f value -c id > "$work/$name" ||
    fail "server create $name: $(os server show "$name" -c status -c fault -f value)"
done
a=$(cat "$work/dd-a") b=$(cat "$work/dd-b") c=$(cat "$work/dd-c")
token=$(os token issue -f value -c id) || fail "token issue"
[ "$(used)" = 3 ] || fail "three servers should count, not $(used)"

# b is soft-deleted first and left alone: it is reclaimed while the rest runs.
os server delete "$b" || fail "server delete $b"
deleted_b=$SECONDS
wait_status "$b" SOFT_DELETED

# A delete keeps the server, powered off.
os server delete "$a" || fail "server delete $a"
wait_status "$a" SOFT_DELETED
[ "$(field "$a" OS-EXT-STS:vm_state)" = soft-delete ] || fail "vm_state $(field "$a" OS-EXT-STS:vm_state)"
# (Nova's power states: 4 is SHUTDOWN, 1 RUNNING.)
[[ "$(field "$a" OS-EXT-STS:power_state)" =~ ^(4|Shutdown)$ ]] || fail "a soft-deleted server's power state is $(field "$a" OS-EXT-STS:power_state)"
os server list -f value -c ID > "$work/list" || fail "server list"
! grep -q "$a" "$work/list" && grep -q "$c" "$work/list" || fail "server list: $(cat "$work/list")"
os server list --deleted -f value -c ID -c Status > "$work/deleted" || fail "server list --deleted"
grep -q "$a SOFT_DELETED" "$work/deleted" || fail "server list --deleted: $(cat "$work/deleted")"
! grep -q "$c" "$work/deleted" || fail "server list --deleted lists a server that is not deleted"
[ "$(used)" = 1 ] || fail "soft-deleted servers still count in the quota ($(used) used)"
ok "server delete → SOFT_DELETED, powered off, hidden from lists (but --deleted), out of the quota"
# A second delete changes nothing; a restore of a server that is not soft-deleted is a 409.
os server delete "$a" || fail "a second delete of a soft-deleted server"
wait_status "$a" SOFT_DELETED
code=$(action "$token" "$c" '{"restore": null}')
[ "$code" = 409 ] && grep -q "Cannot 'restore' instance $c while it is in vm_state active" "$work/body" || fail "restore of an active server: $code $(cat "$work/body")"
ok "restore of an active server → 409 in Nova's words"

# Restore: ACTIVE and running again, counted again; its instance actions say so.
os server restore "$a" || fail "server restore"
wait_status "$a" ACTIVE
[[ "$(field "$a" OS-EXT-STS:power_state)" =~ ^(1|Running)$ ]] || fail "restored but $(field "$a" OS-EXT-STS:power_state)"
[ "$(used)" = 2 ] || fail "a restored server counts again ($(used) used)"
os server event list "$a" -f value -c Action > "$work/events" || fail "server event list"
grep -qx restore "$work/events" && grep -qx delete "$work/events" || fail "instance actions: $(cat "$work/events")"
ok "server restore → ACTIVE, running, counted, recorded"

# Over quota, a restore is refused (403): the quota is full while the server is soft-deleted.
project=$(os project show admin -f value -c id)
os server delete "$a" || fail "server delete $a"
wait_status "$a" SOFT_DELETED
os quota set --instances 1 "$project" || fail "quota set"
code=$(action "$token" "$a" '{"restore": null}')
[ "$code" = 403 ] && grep -q "Quota exceeded for instances" "$work/body" || fail "restore over quota: $code $(cat "$work/body")"
[ "$(field "$a" status)" = SOFT_DELETED ] || fail "a refused restore changed the server"
os quota set --instances 10 "$project" || fail "quota set"
ok "restore over quota → 403, the server stays SOFT_DELETED"

# Another project sees none of it (404).
os project create dd-other > /dev/null && os user create --project dd-other --password other-pw dd-other-user > /dev/null &&
  os role add --user dd-other-user --project dd-other member || fail "other project"
other=$("$OSC" --os-cloud petrel --os-project-name dd-other --os-username dd-other-user --os-password other-pw token issue -f value -c id) ||
  fail "other token"
for body in '{"restore": null}' '{"forceDelete": null}'; do
  code=$(action "$other" "$a" "$body")
  [ "$code" = 404 ] || fail "$body on another project's server: $code $(cat "$work/body")"
done
ok "restore and forceDelete of another project's server → 404"

# forceDelete: gone at once, without waiting for the reclaim.
os server delete --force "$a" || fail "server delete --force"
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ] && os server show "$a" > /dev/null 2>&1; do sleep 0.5; done
! os server show "$a" > /dev/null 2>&1 || fail "a force-deleted server is still there"
ok "server delete --force removes a soft-deleted server"

# Left alone, b is reclaimed RECLAIM seconds after its delete, not before.
deadline=$((deleted_b + RECLAIM + 90))
while [ "$SECONDS" -lt "$deadline" ] && os server show "$b" > /dev/null 2>&1; do sleep 1; done
! os server show "$b" > /dev/null 2>&1 || fail "a soft-deleted server was not reclaimed in $((RECLAIM + 90)) s"
after=$((SECONDS - deleted_b))
[ "$after" -ge $((RECLAIM - 1)) ] || fail "reclaimed $after s after its delete, before the interval ($RECLAIM s)"
ok "a soft-deleted server is reclaimed ($after s after its delete, interval $RECLAIM s)"

# The last one goes for good at once.
os server delete --force --wait "$c" || fail "server delete --force $c"
os flavor delete dd.tiny && os image delete dd-image || fail "cleanup"
echo "deferred delete passed"
