#!/usr/bin/env bash
# Volumes through the unmodified `openstack` CLI, made by node $NODE's volume service on the
# backends file-1 (sparse files in $FILES) and lvm-1 (volume group $VG on a loop device):
#   volume-cli.sh api         types, create/list/show/set, extend, quotas and limits, services and pools, delete (file-1)
#   volume-cli.sh attach      a real guest (QEMU) gets a file-1 volume hot-plugged, writes a marker the host reads in the
#                             volume's file, sees it grow when extended while attached (3.42), and lets go of it on detach; an lvm-1 volume (no device here) fails to attach
#                             and stays available; attached again, its delete_on_termination updated (2.85), swapped for vs
#                             under the running guest (a service's PUT), and the server's delete frees both, bytes intact
#   volume-cli.sh snapshot    a snapshot of the guest's volume carries its marker; volumes from it and from the volume too
#   volume-cli.sh images      a volume from the guest's image holds its bytes; uploaded back as a qcow2 image, the same
#                             bytes; an image too large is refused; an upload the backend cannot do leaves nothing behind
#   volume-cli.sh boot        servers booted from volumes (--volume; --block-device image→volume with delete_on_termination):
#                             QEMU boots the volume as vda with no local disk; the --volume one runs on node $REMOTE and
#                             reaches its volume on $NODE over iSCSI (tgtd, its own CHAP account), and gets va hot-plugged
#                             the same way: its guest reads va's marker; the root volume cannot be detached
#   volume-cli.sh boot-restored  (tgtd was restarted) $NODE exported both volumes again: the guest reads new bytes written
#                             into va's file; va detached over iSCSI (its target and account gone, the secret on the
#                             compute side too); deleting the servers frees the one and deletes the other, no target left
#   volume-cli.sh backup      a full and an incremental backup of the guest's volume, restored into a new volume and over
#                             the volume (the bytes each saw come back); deleted in order
#   volume-cli.sh lvm         a volume on lvm-1: the logical volume made, grown and removed (lvs), capacity as vgs says
#   volume-cli.sh inflight    work the node is doing when it is stopped and killed -9 right after: a volume from an
#                             image, a backup of va (256 MiB of data), and a volume extended
#   volume-cli.sh attach-stopped  (the node is stopped) vs's attach to server sk asked for: attaching, its client waits
#   volume-cli.sh while-down  (the node was killed -9) a volume deleted meanwhile waits in deleting; once the service is
#                             reported down a new volume goes to error (no valid backend), which a user message tells (3.3);
#                             a stray disk of vz (no attachment) is plugged into sk behind the controller's back
#   volume-cli.sh restarted   the restarted node finished the delete and the work it was killed in (each volume and
#                             the backup in a stable status, no partial file; vs in sk's guest exactly when in-use);
#                             it unplugged vz's stray disk; new volumes are made again
#   volume-cli.sh cleanup     every volume and type deleted: no file or logical volume left
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), NODE, REMOTE (a compute-only node), VG, FILES, WORK, GUEST
# (the test guest's image), BACKUPS (the node's [backup] directory).
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${NODE:?}" "${REMOTE:?}" "${VG:?}" "${FILES:?}" "${WORK:?}" "${GUEST:?}" "${BACKUPS:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
contains() { grep "$@" >/dev/null; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
waitfor() { # waitfor SECONDS COMMAND...: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.2; done
}
status_is() { [ "$(os volume show "$1" -c status -f value)" = "$2" ]; }
size_is() { [ "$(os volume show "$1" -c size -f value)" = "$2" ]; }
gone() { ! os volume show "$1" >/dev/null 2>&1; }
file_size() { stat -c %s "$FILES/volume-$1" 2>/dev/null; }
targets() { tgtadm --lld iscsi --op show --mode target 2>/dev/null; }
exported() { targets | grep -q "^Target [0-9]*: iqn.2010-10.org.openstack:volume-$1\$"; }
lv_size() { lvs --noheadings -o lv_size --units b --nosuffix "$VG/volume-$1" 2>/dev/null | tr -d ' '; }
refuse() { # refuse PATTERN COMMAND...
  local pattern=$1; shift
  if "$@" >"$WORK/out" 2>&1; then fail "accepted: $*"; fi
  grep -qiE "$pattern" "$WORK/out" || fail "'$*' failed without '$pattern': $(cat "$WORK/out")"
}
project=$(os project show admin -f value -c id) || fail "admin project"
GiB=1073741824

case "$1" in
  api)
    waitfor 120 sh -c "'$OSC' --os-cloud petrel volume service list -f value -c Host -c State | grep -q '^$NODE@file-1 up'" \
      || fail "cinder-volume of $NODE@file-1 not up: $(os volume service list 2>&1)"
    os volume service list -f value -c Binary -c Host -c State | contains "cinder-volume $NODE@lvm-1 up" || fail "lvm-1 not listed"
    ok "cinder-volume is up on $NODE@file-1 and $NODE@lvm-1"
    os volume type create --property volume_backend_name=file-1 --description "sparse files" file >/dev/null || fail "type file"
    os volume type create --property volume_backend_name=lvm-1 lvm >/dev/null || fail "type lvm"
    os volume type list -f value -c Name | sort | tr '\n' ' ' | contains -x "__DEFAULT__ file lvm " || fail "types: $(os volume type list)"
    os volume type show file -f json | contains '"volume_backend_name": "file-1"' || fail "type properties: $(os volume type show file)"
    ok "volume types file and lvm, beside __DEFAULT__"

    v1=$(os volume create --size 1 --type file --property purpose=test v1 -f json | field id) || fail "volume create"
    echo "$v1" > "$WORK/v1"
    waitfor 120 status_is v1 available || fail "v1 not available: $(os volume show v1 2>&1)"
    [ "$(file_size "$v1")" = "$GiB" ] || fail "the file of v1 is $(file_size "$v1") bytes, not $GiB"
    [ "$(du -k "$FILES/volume-$v1" | cut -f1)" -lt 1024 ] || fail "the file of v1 is not sparse"
    os volume show v1 -f json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v["size"] == 1 and v["type"] == "file" and v["bootable"] in (False, "false"), v
assert v["os-vol-host-attr:host"].startswith(sys.argv[1] + "@file-1#"), v["os-vol-host-attr:host"]
assert v["properties"] == {"purpose": "test"} or v["properties"] == "purpose='"'"'test'"'"'", v["properties"]' "$NODE" || fail "v1's body"
    ok "volume create --size 1 --type file: available, a sparse 1 GiB file on $NODE@file-1"

    os volume set --name v1b --description "renamed" --property owner=me v1 || fail "volume set"
    os volume show v1b -f json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v["description"] == "renamed", v' || fail "volume set did not stick: $(os volume show v1b)"
    os volume list -f value -c Name | contains -x v1b || fail "volume list: $(os volume list)"
    ok "volume set (name, description, property) and volume list"

    os volume set --size 2 v1b || fail "volume set --size"
    waitfor 120 size_is v1b 2 || fail "not extended: $(os volume show v1b)"
    waitfor 10 status_is v1b available || fail "not available after extend"
    [ "$(file_size "$v1")" = "$((2 * GiB))" ] || fail "the file is $(file_size "$v1") bytes after extend"
    refuse "greater than" os volume set --size 1 v1b
    ok "volume set --size 2: the file grew to 2 GiB; shrinking refused"

    os limits show --absolute -f value -c Name -c Value > "$WORK/limits" || fail "limits show: $(cat "$WORK/limits")"
    # (the client prints the SDK's names of Cinder's maxTotalVolumes, totalVolumesUsed, …)
    contains -x "total_volumes_used 1" "$WORK/limits" && contains -x "total_gigabytes_used 2" "$WORK/limits" \
      && contains -x "max_total_volumes 10" "$WORK/limits" || fail "absolute limits: $(cat "$WORK/limits")"
    os quota set --volumes 2 --gigabytes 4 admin || fail "quota set"
    os quota show admin -f json > "$WORK/quota" || fail "quota show: $(cat "$WORK/quota")"
    python3 -c '
import json, sys
q = json.load(open(sys.argv[1]))
rows = {r["Resource"]: r["Limit"] for r in q} if isinstance(q, list) else q
assert rows["volumes"] == 2 and rows["gigabytes"] == 4, rows' "$WORK/quota" || fail "quota show: $(cat "$WORK/quota")"
    refuse "exceeds allowed gigabytes quota" os volume create --size 3 --type file big
    os volume create --size 1 --type file v2 >/dev/null || fail "v2 within quota"
    refuse "VolumeLimitExceeded|Maximum number of volumes" os volume create --size 1 --type file v3
    os volume list -f value -c Name | contains -x big && fail "a refused volume was made"
    ok "limits show --absolute counts them; quotas refuse the third volume and the 3 GB one (413, Cinder's words)"

    os volume backend pool list --long -f json > "$WORK/pools" || fail "pool list: $(cat "$WORK/pools")"
    contains "$NODE@file-1#file-1" "$WORK/pools" && contains "$NODE@lvm-1#lvm-1" "$WORK/pools" || fail "pools: $(cat "$WORK/pools")"
    ok "volume backend pool list --long shows both backends"

    waitfor 120 status_is v2 available || fail "v2 not available"
    v2=$(os volume show v2 -f value -c id)
    os volume delete v2 || fail "volume delete"
    waitfor 120 gone v2 || fail "v2 not deleted: $(os volume show v2 2>&1)"
    [ -e "$FILES/volume-$v2" ] && fail "v2's file is left"
    refuse "No volume (with a name or ID|found)|could not be found" os volume show v2
    ok "volume delete: gone from the API and its file removed"
    echo "phase api passed"
    ;;

  attach)
    os quota set --volumes 10 --gigabytes 100 admin || fail "quota set"
    os image create --file "$GUEST" --disk-format qcow2 --container-format bare "img-$NODE" >/dev/null || fail "image create"
    os flavor create --vcpus 1 --ram 128 --disk 1 "fl-$NODE" >/dev/null || fail "flavor create"
    # The guest (vda its root, vdb its config drive) writes a marker on the first sector of the
    # disk that appears as vdc, and says so.
    cat > "$WORK/user-data" <<'DATA'
#!/bin/sh
(
  while [ ! -b /dev/vdc ]; do sleep 0.5; done
  echo "PETREL-VOLUME-SEEN sectors=$(cat /sys/block/vdc/size) serial=$(cat /sys/block/vdc/serial 2>/dev/null)"
  printf 'petrel-volume-marker-%s' "$(hostname)" | dd of=/dev/vdc conv=notrunc,fsync 2>/dev/null && echo "PETREL-VOLUME-WRITTEN"
  last=$(cat /sys/block/vdc/size)
  while [ -b /dev/vdc ]; do
    now=$(cat /sys/block/vdc/size 2>/dev/null)
    if [ -n "$now" ] && [ "$now" != "$last" ]; then echo "PETREL-VOLUME-RESIZED sectors=$now"; last=$now; fi
    sleep 0.5
  done
) &
DATA
    vm=$(os server create --image "img-$NODE" --flavor "fl-$NODE" --nic none --config-drive true --user-data "$WORK/user-data" \
      --wait "vm-$NODE" -f json | field id) || fail "server create: $(os server show "vm-$NODE" 2>&1 | tail -5)"
    echo "$vm" > "$WORK/server"
    console_has() { "$OSC" --os-cloud petrel console log show "$1" | grep -q -- "$2"; }
    waitfor 240 console_has "$vm" PETREL-GUEST-READY || fail "the guest did not boot: $(os console log show "$vm" | tail -5)"
    va=$(os volume create --size 1 --type file va -f json | field id) || fail "volume create"
    waitfor 120 status_is va available || fail "va not available"
    start=$(date +%s%3N)
    os server add volume "vm-$NODE" va || fail "server add volume"
    echo "figure: server add volume returned after $(( $(date +%s%3N) - start )) ms"
    status_is va in-use || fail "va is $(os volume show va -c status -f value) after the attach"
    os volume show va -f json | python3 -c '
import json, sys
v = json.load(sys.stdin)
a = v["attachments"]
assert len(a) == 1 and a[0]["server_id"] == sys.argv[1] and a[0]["device"] == "/dev/vdc", a' "$vm" || fail "va's attachments: $(os volume show va -c attachments)"
    os server show "vm-$NODE" -f json | python3 -c '
import json, sys
s = json.load(sys.stdin)
ids = [v["id"] for v in s["volumes_attached"]] if isinstance(s["volumes_attached"], list) else s["volumes_attached"]
assert sys.argv[1] in str(ids), s["volumes_attached"]' "$va" || fail "volumes_attached: $(os server show "vm-$NODE" -c volumes_attached)"
    virsh -c qemu:///system domblklist "petrel-$vm" | contains "vdc .*$FILES/volume-$va" || fail "the domain has no vdc: $(virsh -c qemu:///system domblklist "petrel-$vm")"
    waitfor 240 console_has "$vm" PETREL-VOLUME-WRITTEN || fail "the guest did not write to vdb: $(os console log show "$vm" | tail -8)"
    os console log show "$vm" | contains "PETREL-VOLUME-SEEN sectors=2097152 serial=${va:0:20}" || fail "the guest saw a disk of another size: $(os console log show "$vm" | grep VOLUME)"
    waitfor 60 sh -c "head -c 64 '$FILES/volume-$va' | grep -q petrel-volume-marker" || fail "the marker is not in the volume's file"
    ok "server add volume: the running guest sees a 1 GiB vdc with the volume's id as serial (volume in-use, attachments, volumes_attached), writes a marker the host reads in the volume's file"

    refuse "must be .available|3.42 or greater" os --os-volume-api-version 3.41 volume set --size 2 va
    os --os-volume-api-version 3.42 volume set --size 2 va || fail "volume set --size 2 while attached (3.42)"
    waitfor 120 sh -c "[ \"\$('$OSC' --os-cloud petrel volume show va -f value -c size -c status | sort | tr '\n' ' ')\" = '2 in-use ' ]" \
      || fail "va after the extend: $(os volume show va -f value -c status -c size | tr '\n' ' ')"
    [ "$(file_size "$va")" = "$((2 * GiB))" ] || fail "va's file is $(file_size "$va") bytes"
    waitfor 60 console_has "$vm" "PETREL-VOLUME-RESIZED sectors=4194304" || fail "the guest did not see 2 GiB: $(os console log show "$vm" | grep VOLUME)"
    ok "volume set --size 2 while attached (3.42): the file grew, the running guest sees 2 GiB, the volume is in-use again"
    refuse "status must be available" os volume delete va

    os server remove volume "vm-$NODE" va || fail "server remove volume"
    waitfor 120 status_is va available || fail "va not available after the detach: $(os volume show va -c status -f value)"
    virsh -c qemu:///system domblklist "petrel-$vm" | contains vdc && fail "the domain still has vdc"
    virsh -c qemu:///system dumpxml --inactive "petrel-$vm" | contains "volume-$va" && fail "the stored definition still has the volume"
    ok "server remove volume: the guest let go of vdc, gone from the running and stored domain; va available"

    # The lvm-1 volume has no device on this kernel: the attach fails and changes nothing.
    lv=$(os volume create --size 1 --type lvm lv-attach -f json | field id) || fail "lvm volume create"
    waitfor 180 status_is lv-attach available || fail "lv-attach not available: $(os volume show lv-attach -f json -c status -c os-vol-host-attr:host -c volume_type 2>&1 | tr -d '\n'); vgs: $(vgs --noheadings -o vg_name,vg_size,vg_free "$VG" 2>&1); lvs: $(lvs --noheadings -o lv_name,lv_size "$VG" 2>&1 | tr '\n' ' ')"
    refuse "Failed to attach|500|Internal" os server add volume "vm-$NODE" lv-attach
    status_is lv-attach available || fail "lv-attach is $(os volume show lv-attach -c status -f value) after a failed attach"
    virsh -c qemu:///system domblklist "petrel-$vm" | contains vdc && fail "a failed attach left a disk"
    os volume delete lv-attach >/dev/null
    ok "an LVM volume without a device (no device-mapper here) fails to attach: still available, no disk left"

    # Attached again; its attachment updated (2.85), then swapped for another volume while the
    # guest runs; then the server deleted: the volumes are available, their bytes intact.
    os server add volume "vm-$NODE" va || fail "second attach"
    status_is va in-use || fail "va not in-use after the second attach"
    dot() { os --os-compute-api-version 2.87 server volume list "vm-$NODE" -f json | python3 -c '
import json, sys
print([str(a.get("Delete On Termination?", a.get("delete_on_termination"))).lower() for a in json.load(sys.stdin)][0])'; }
    os --os-compute-api-version 2.85 server volume update --delete-on-termination "vm-$NODE" va || fail "server volume update"
    [ "$(dot)" = true ] || fail "delete_on_termination is $(dot) after the update"
    os --os-compute-api-version 2.85 server volume update --preserve-on-termination "vm-$NODE" va || fail "server volume update"
    [ "$(dot)" = false ] || fail "delete_on_termination is $(dot) after the second update"
    ok "server volume update --delete-on-termination / --preserve-on-termination (2.85)"

    vs=$(os volume create --size 2 --type file vs -f json | field id) && waitfor 120 status_is vs available || fail "vs"
    swap() { "$(dirname "$OSC")/python" - "$vm" "$va" "$vs" <<'PY'
import sys, openstack
server, old, new = sys.argv[1:4]
c = openstack.connect(cloud="petrel")
c.compute.update_volume_attachment(server, old, volume_id=new)
PY
    }
    refuse "403|[Pp]olicy|not allowed|Forbidden" swap
    status_is va in-use && status_is vs available || fail "a refused swap changed something"
    os role show service >/dev/null 2>&1 || os role create service >/dev/null || fail "role create service"
    os role add --user admin --project admin service || fail "role add service"
    start=$(date +%s%3N)
    swap > "$WORK/out" 2>&1 || fail "the swap as a service: $(cat "$WORK/out")"
    echo "figure: swap of a 2 GB volume under a running guest returned after $(( $(date +%s%3N) - start )) ms"
    os role remove --user admin --project admin service || fail "role remove service"
    status_is va available && status_is vs in-use || fail "after the swap: va $(os volume show va -f value -c status), vs $(os volume show vs -f value -c status)"
    os volume show vs -f json | python3 -c '
import json, sys
a = json.load(sys.stdin)["attachments"]
assert len(a) == 1 and a[0]["server_id"] == sys.argv[1] and a[0]["device"] == "/dev/vdc", a' "$vm" || fail "vs's attachments: $(os volume show vs -c attachments)"
    head -c 64 "$FILES/volume-$vs" | contains petrel-volume-marker || fail "the guest's bytes were not copied into vs"
    virsh -c qemu:///system domblklist "petrel-$vm" | contains "vdc *$FILES/volume-$vs" || fail "the running guest's vdc is not vs: $(virsh -c qemu:///system domblklist "petrel-$vm")"
    virsh -c qemu:///system dumpxml --inactive "petrel-$vm" | contains "volume-$va" && fail "the stored definition still has va"
    os --os-volume-api-version 3.42 volume set --size 3 vs || fail "extend vs while attached"
    waitfor 60 sh -c "virsh -c qemu:///system domblkinfo 'petrel-$vm' vdc | grep -q 'Capacity: *3221225472'" \
      || fail "the running guest's vdc did not grow with vs: $(virsh -c qemu:///system domblkinfo "petrel-$vm" vdc)"
    ok "swap (PUT os-volume_attachments, role service only; 403 without): the running guest's vdc copied into vs and switched over (vs in-use at /dev/vdc, the marker in its file; extended to 3 GB, QEMU's vdc grows with it); va available"

    os server delete --wait "vm-$NODE" || fail "server delete"
    waitfor 120 status_is va available || fail "va is $(os volume show va -c status -f value) after its server was deleted"
    waitfor 120 status_is vs available || fail "vs is $(os volume show vs -c status -f value) after its server was deleted"
    [ -z "$(os volume show vs -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["attachments"] or "")')" ] || fail "vs still has attachments"
    head -c 64 "$FILES/volume-$va" | contains petrel-volume-marker && head -c 64 "$FILES/volume-$vs" | contains petrel-volume-marker || fail "a marker is gone"
    os volume delete vs >/dev/null || fail "delete vs"
    rm -f "$WORK/server"
    ok "server delete frees the attached volume (available, bytes intact)"
    echo "phase attach passed"
    ;;

  snapshot)
    va=$(os volume show va -f value -c id) || fail "va"
    sa=$(os volume snapshot create --volume va sa -f json | field id) || fail "volume snapshot create"
    waitfor 120 sh -c "[ \"\$('$OSC' --os-cloud petrel volume snapshot show sa -f value -c status)\" = available ]" \
      || fail "sa not available: $(os volume snapshot show sa 2>&1)"
    head -c 64 "$FILES/snapshot-$sa" | contains petrel-volume-marker || fail "the snapshot's file has no marker"
    os volume snapshot list -f value -c Name | contains -x sa || fail "snapshot list: $(os volume snapshot list)"
    refuse "dependent snapshots" os volume delete va
    ok "volume snapshot create: a copy of va's bytes on its backend (the guest's marker in it); va cannot be deleted while it has one"
    vb=$(os volume create --snapshot sa --size 2 vb -f json | field id) || fail "volume create --snapshot"
    vc=$(os volume create --source va vc -f json | field id) || fail "volume create --source"
    waitfor 120 status_is vb available && waitfor 120 status_is vc available || fail "vb or vc not available: $(os volume list --long)"
    head -c 64 "$FILES/volume-$vb" | contains petrel-volume-marker && head -c 64 "$FILES/volume-$vc" | contains petrel-volume-marker \
      || fail "the marker is not in the volumes made from the snapshot and from va"
    [ "$(file_size "$vb")" = "$((2 * GiB))" ] || fail "vb's file is $(file_size "$vb") bytes"
    ok "volume create --snapshot (grown to 2 GB) and --source: both carry the marker"
    os volume snapshot delete sa || fail "snapshot delete"
    waitfor 120 sh -c "! '$OSC' --os-cloud petrel volume snapshot show sa" || fail "sa not deleted"
    [ -e "$FILES/snapshot-$sa" ] && fail "the snapshot's file is left"
    lsnap=$(os volume create --size 1 --type lvm lsrc -f json | field id) && waitfor 180 status_is lsrc available || fail "lsrc"
    os volume snapshot create --volume lsrc lsnap >/dev/null || fail "lvm snapshot create"
    waitfor 120 sh -c "[ \"\$('$OSC' --os-cloud petrel volume snapshot show lsnap -f value -c status)\" = error ]" || fail "the lvm snapshot is not in error"
    os volume snapshot delete lsnap >/dev/null && waitfor 120 sh -c "! '$OSC' --os-cloud petrel volume snapshot show lsnap" || fail "lvm snapshot delete"
    os volume delete lsrc vb vc >/dev/null || fail "delete"
    ok "snapshot deleted with its file; an LVM snapshot (not copied by that driver yet) ends in error and deletes cleanly"
    echo "phase snapshot passed"
    ;;

  images)
    image=$(os image show "img-$NODE" -f value -c id) || fail "the guest's image"
    vi=$(os volume create --image "img-$NODE" --size 1 --type file vi -f json | field id) || fail "volume create --image"
    waitfor 180 status_is vi available || fail "vi not available: $(os volume show vi -f json -c status 2>&1)"
    qemu-img compare -q -f raw -F qcow2 "$FILES/volume-$vi" "$GUEST" || fail "vi's bytes differ from the image's"
    [ "$(file_size "$vi")" = "$GiB" ] || fail "vi's file is $(file_size "$vi") bytes"
    os volume show vi -f json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert str(v["bootable"]).lower() == "true", v["bootable"]
m = v["volume_image_metadata"]
m = m if isinstance(m, dict) else {}
assert m.get("image_id") == sys.argv[1] and m.get("disk_format") == "qcow2" and m.get("image_name") == sys.argv[2], v["volume_image_metadata"]' \
      "$image" "img-$NODE" || fail "vi: $(os volume show vi -f json)"
    ok "volume create --image: the image's bytes converted into the volume's raw file (qemu-img compare), bootable, volume_image_metadata"

    qemu-img create -q -f qcow2 "$WORK/big.qcow2" 3G || fail "qemu-img create"
    os image create --file "$WORK/big.qcow2" --disk-format qcow2 --container-format bare --min-disk 3 "big-$NODE" >/dev/null || fail "big image"
    refuse "larger than volume size|minDisk size 3GB" os volume create --image "big-$NODE" --size 1 vbig
    os volume show vbig >/dev/null 2>&1 && fail "a refused create left a volume"
    os image delete "big-$NODE" || fail "image delete"
    ok "volume create --image refused when the image does not fit the size asked for (Cinder's 400)"

    start=$(date +%s%3N)
    os image create --volume vi --disk-format qcow2 "up-$NODE" >/dev/null || fail "image create --volume: $(os image create --volume vi --disk-format qcow2 "up2-$NODE" 2>&1)"
    waitfor 180 sh -c "[ \"\$('$OSC' --os-cloud petrel image show 'up-$NODE' -f value -c status)\" = active ]" \
      || fail "the uploaded image is not active: $(os image show "up-$NODE" -f value -c status 2>&1); vi: $(os volume show vi -f value -c status)"
    echo "figure: image create --volume active after $(( $(date +%s%3N) - start )) ms"
    waitfor 60 status_is vi available || fail "vi is $(os volume show vi -f value -c status) after the upload"
    os image save --file "$WORK/up.img" "up-$NODE" || fail "image save"
    [ "$(qemu-img info --output=json "$WORK/up.img" | python3 -c 'import json, sys; print(json.load(sys.stdin)["format"])')" = qcow2 ] \
      || fail "the uploaded image is not qcow2"
    qemu-img compare -q -f qcow2 -F qcow2 "$WORK/up.img" "$GUEST" || fail "the uploaded image's bytes differ from the volume's"
    os image delete "up-$NODE" || fail "image delete"
    ok "image create --volume: a qcow2 image holding the volume's bytes; the volume available again"

    os volume create --size 1 --type lvm lup >/dev/null && waitfor 180 status_is lup available || fail "lup"
    os image create --volume lup "lup-$NODE" >/dev/null || fail "the upload of lup was not accepted"
    waitfor 120 sh -c "! '$OSC' --os-cloud petrel image show 'lup-$NODE' >/dev/null 2>&1" || fail "the failed upload's image is left"
    waitfor 60 status_is lup available || fail "lup is $(os volume show lup -f value -c status) after a failed upload"
    os volume delete lup vi >/dev/null || fail "delete"
    ok "an upload the backend cannot do (lvm here) leaves the volume available and no image behind"
    echo "phase images passed"
    ;;

  boot)
    image=$(os image show "img-$NODE" -f value -c id) || fail "the guest's image"
    console_has() { "$OSC" --os-cloud petrel console log show "$1" | grep -q -- "$2"; }
    server_is() { [ "$(os server show "$1" -f value -c status)" = "$2" ]; }
    vb=$(os volume create --image "img-$NODE" --size 1 --type file vb -f json | field id) || fail "volume create --image"
    vn=$(os volume create --size 1 --type file vn -f json | field id) || fail "volume create"
    waitfor 180 status_is vb available || fail "vb not available: $(os volume show vb -f value -c status)"
    waitfor 60 status_is vn available || fail "vn not available"
    refuse "Block Device $vn is not bootable" os server create --volume vn --flavor "fl-$NODE" --nic none "bvn-$NODE"
    refuse "need to have a non-zero size" os server create --flavor "fl-$NODE" --nic none \
      --block-device "source_type=image,uuid=$image,destination_type=volume,boot_index=0" "bvz-$NODE"
    os server show "bvn-$NODE" >/dev/null 2>&1 && fail "a refused create left a server"
    status_is vn available || fail "vn is $(os volume show vn -f value -c status) after a refused create"
    ok "server create refuses a root volume that is not bootable, and an image-to-volume mapping without a size (Nova's 400s)"

    # bv1 runs on $REMOTE, its root volume on $NODE. Its guest (vda the volume, vdb its config
    # drive) prints what the first sector of vdc holds whenever that changes.
    cat > "$WORK/remote-data" <<'DATA'
#!/bin/sh
(
  while [ ! -b /dev/vdc ]; do sleep 0.5; done
  last=""
  while [ -b /dev/vdc ]; do
    echo 3 > /proc/sys/vm/drop_caches
    now=$(dd if=/dev/vdc bs=512 count=1 2>/dev/null | tr -dc 'a-z0-9-' | head -c 48)
    if [ -n "$now" ] && [ "$now" != "$last" ]; then echo "PETREL-REMOTE-READ $now"; last=$now; fi
    sleep 1
  done
) &
DATA
    start=$(date +%s%3N)
    b1=$(os server create --volume vb --flavor "fl-$NODE" --nic none --availability-zone "nova:$REMOTE" --config-drive true \
      --user-data "$WORK/remote-data" "bv1-$NODE" -f json | field id) || fail "server create --volume"
    b2=$(os server create --flavor "fl-$NODE" --nic none "bv2-$NODE" -f json \
      --block-device "source_type=image,uuid=$image,destination_type=volume,volume_size=1,boot_index=0,delete_on_termination=true" \
      | field id) || fail "server create --block-device"
    waitfor 240 server_is "$b1" ACTIVE || fail "bv1 is $(os server show "$b1" -f json -c status -c fault)"
    echo "figure: server create --volume ACTIVE after $(( $(date +%s%3N) - start )) ms"
    waitfor 240 server_is "$b2" ACTIVE || fail "bv2 is $(os server show "$b2" -f json -c status -c fault)"
    echo "figure: server create --volume and --block-device image→volume both ACTIVE after $(( $(date +%s%3N) - start )) ms"
    v2=$(os server show "$b2" -f json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["image"] in ("", None) or "N/A" in str(s["image"]) or "booted from volume" in str(s["image"]).lower(), s["image"]
v = s["volumes_attached"]
assert len(v) == 1 and str(v[0]["delete_on_termination"]).lower() == "true", v
print(v[0]["id"])') || fail "bv2: $(os server show "$b2" -f json -c image -c volumes_attached)"
    os server show "$b1" -f json | python3 -c '
import json, sys
s = json.load(sys.stdin)
v = s["volumes_attached"]
assert [a["id"] for a in v] == [sys.argv[1]] and str(v[0]["delete_on_termination"]).lower() == "false", v' "$vb" \
      || fail "bv1: $(os server show "$b1" -f json -c volumes_attached)"
    [ "$(os server show "$b1" -f value -c OS-EXT-SRV-ATTR:host)" = "$REMOTE" ] || fail "bv1 is not on $REMOTE"
    [ "$(os server show "$b2" -f value -c OS-EXT-SRV-ATTR:host)" = "$NODE" ] || fail "bv2 is not on $NODE"
    for pair in "$b1:$vb:iqn.2010-10.org.openstack:volume-$vb/1" "$b2:$v2:$FILES/volume-$v2"; do
      server=${pair%%:*} rest=${pair#*:}; volume=${rest%%:*} source=${rest#*:}
      blk=$(virsh -c qemu:///system domblklist "petrel-$server")
      echo "$blk" | contains "vda *$source" || fail "$server's vda is not its volume ($source): $blk"
      echo "$blk" | contains -E "/$server/disk *$" && fail "$server has a local root disk: $blk"
      status_is "$volume" in-use || fail "$volume is $(os volume show "$volume" -f value -c status)"
    done
    virsh -c qemu:///system dumpxml "petrel-$b1" | python3 -c '
import sys, xml.etree.ElementTree as ET
d = ET.parse(sys.stdin).getroot()
disk = [x for x in d.iter("disk") if x.find("target").get("dev") == "vda"][0]
s = disk.find("source")
assert disk.get("type") == "network" and s.get("protocol") == "iscsi", ET.tostring(disk)
assert s.find("host").get("name") == "127.0.0.1" and s.find("host").get("port") == "3260", ET.tostring(disk)
auth = s.find("auth") if s.find("auth") is not None else disk.find("auth")
assert auth.get("username").startswith("petrel-") and auth.find("secret").get("usage") == "petrel-iscsi-" + auth.get("username"), ET.tostring(disk)
' || fail "bv1's vda is not an iSCSI disk with CHAP: $(virsh -c qemu:///system dumpxml "petrel-$b1" | grep -A8 "<disk type='network'")"
    exported "$vb" || fail "no target exports vb: $(targets)"
    targets | grep -A40 "volume-$vb\$" | contains "Backing store path: $FILES/volume-$vb" || fail "vb's target does not export its file: $(targets)"
    waitfor 240 console_has "$b1" PETREL-GUEST-READY || fail "bv1's guest did not boot: $(os console log show "$b1" | tail -5)"
    waitfor 240 console_has "$b2" PETREL-GUEST-READY || fail "bv2's guest did not boot: $(os console log show "$b2" | tail -5)"
    echo "figure: both guests booted from their volumes after $(( $(date +%s%3N) - start )) ms"
    [ "$(os volume show "$v2" -f value -c bootable | tr A-Z a-z)" = "true" ] || fail "the volume made from the image is not bootable"
    ok "server create --volume and --block-device source_type=image,destination_type=volume: ACTIVE, QEMU boots each volume as vda (no local disk), the guests come up; volumes in-use, volumes_attached with delete_on_termination"
    ok "bv1 on $REMOTE boots from vb on $NODE over iSCSI: a network disk (portal 127.0.0.1:3260, CHAP user and libvirt secret), vb's file as LUN 1 of its tgtd target"

    start=$(date +%s%3N)
    os server add volume "bv1-$NODE" va || fail "server add volume across hosts"
    echo "figure: server add volume across hosts (iSCSI) returned after $(( $(date +%s%3N) - start )) ms"
    status_is va in-use || fail "va is $(os volume show va -c status -f value) after the remote attach"
    exported "$(os volume show va -f value -c id)" || fail "no target exports va: $(targets)"
    virsh -c qemu:///system domblklist "petrel-$b1" | contains "vdc *iqn.2010-10.org.openstack:volume-" || fail "bv1 has no iSCSI vdc: $(virsh -c qemu:///system domblklist "petrel-$b1")"
    waitfor 120 console_has "$b1" "PETREL-REMOTE-READ petrel-volume-marker" \
      || fail "bv1's guest did not read va's marker: $(os console log show "$b1" | tail -8)"
    echo "figure: the remote guest read va's marker after $(( $(date +%s%3N) - start )) ms"
    ok "server add volume: va (on $NODE) hot-plugged into bv1 (on $REMOTE) over iSCSI; the guest reads the marker the first guest wrote"

    # Cinder's attachments API, as a consumer that connects volumes itself drives it (3.27+).
    at=$(os --os-volume-api-version 3.54 volume attachment create --connect --host "$NODE" --initiator iqn.2026-12.dev.petrel:test \
      --mode rw vn "bv1-$NODE" -f json | field ID) || fail "volume attachment create"
    status_is vn attaching || fail "vn is $(os volume show vn -f value -c status) after the attachment create"
    os --os-volume-api-version 3.27 volume attachment show "$at" -f json | python3 -c '
import json, sys
a = json.load(sys.stdin)
p = a["Properties"]
assert a["Status"] == "attaching" and a["Attach Mode"] == "rw", a
assert "device_path" in str(p) and sys.argv[1] in str(p), p' "$FILES/volume-$vn" || fail "the attachment: $(os --os-volume-api-version 3.27 volume attachment show "$at")"
    os --os-volume-api-version 3.44 volume attachment complete "$at" || fail "volume attachment complete"
    status_is vn in-use || fail "vn is $(os volume show vn -f value -c status) after the attachment completed"
    os --os-volume-api-version 3.27 volume attachment list --volume-id "$vn" -f value -c ID | contains "$at" || fail "volume attachment list"
    virsh -c qemu:///system domblklist "petrel-$b1" | contains "volume-$vn" && fail "an API attachment plugged a disk"
    os --os-volume-api-version 3.27 volume attachment delete "$at" || fail "volume attachment delete"
    status_is vn available || fail "vn is $(os volume show vn -f value -c status) after the attachment delete"
    ok "volume attachment create --connect / show / complete / list / delete (3.27-3.54): reserved and connected (the volume's path as connection_info), in-use, available again; no disk plugged by it"
    at=$(os --os-volume-api-version 3.54 volume attachment create --connect --host "elsewhere-$NODE" --initiator iqn.2026-12.dev.petrel:far \
      --mode rw vn "bv1-$NODE" -f json | field ID) || fail "volume attachment create with a connector on another host"
    os --os-volume-api-version 3.27 volume attachment show "$at" -f json | python3 -c '
import ast, json, sys
p = json.load(sys.stdin)["Properties"]
p = p if isinstance(p, dict) else ast.literal_eval(p)
d = p["data"]
assert p["driver_volume_type"] == "iscsi" and d["auth_method"] == "CHAP" and d["target_lun"] == 1, p
print("iscsi://%s%%%s@%s/%s/%d" % (d["auth_username"], d["auth_password"], d["target_portal"], d["target_iqn"], d["target_lun"]))' > "$WORK/far" \
      || fail "the remote attachment's connection_info: $(os --os-volume-api-version 3.27 volume attachment show "$at")"
    qemu-img info "$(cat "$WORK/far")" | contains "virtual size: 1 GiB" || fail "the export does not answer: $(qemu-img info "$(cat "$WORK/far")" 2>&1)"
    os --os-volume-api-version 3.27 volume attachment delete "$at" || fail "volume attachment delete"
    waitfor 30 sh -c "! tgtadm --lld iscsi --op show --mode target | grep -q 'volume-$vn\$'" || fail "vn's target is left: $(targets)"
    ok "volume attachment create --connect --host elsewhere: iSCSI connection_info (portal, IQN, LUN, CHAP) that QEMU's initiator logs in to; deleted with its target"

    refuse "Cannot detach a root device volume" os server remove volume "bv1-$NODE" vb
    status_is vb in-use || fail "vb is $(os volume show vb -f value -c status) after a refused detach"
    refuse "volume-backed" os server image create --name "snap-$NODE" "bv1-$NODE"
    refuse "volume-backed" os server rebuild --image "img-$NODE" "bv1-$NODE"
    ok "the root volume is not detached; snapshot and rebuild of a volume-backed server refused (400) and change nothing"

    echo "phase boot passed"
    ;;

  boot-restored)
    console_has() { "$OSC" --os-cloud petrel console log show "$1" | grep -q -- "$2"; }
    va=$(os volume show va -f value -c id) && vb=$(os volume show vb -f value -c id) && b1=$(os server show "bv1-$NODE" -f value -c id) \
      || fail "va, vb, bv1"
    v2=$(os server show "bv2-$NODE" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["volumes_attached"][0]["id"])') || fail "bv2's volume"
    waitfor 60 sh -c "tgtadm --lld iscsi --op show --mode target | grep -q 'volume-$va\$' && tgtadm --lld iscsi --op show --mode target | grep -q 'volume-$vb\$'" \
      || fail "the restarted tgtd did not get vb and va back: $(targets)"
    ok "tgtd restarted with no targets: $NODE exported vb and va again"
    head -c 64 "$FILES/volume-$va" > "$WORK/va-head"
    printf 'petrel-second-marker-after-restart' | dd of="$FILES/volume-$va" conv=notrunc,fsync 2>/dev/null
    waitfor 120 console_has "$b1" "PETREL-REMOTE-READ petrel-second-marker-after-restart" \
      || fail "bv1's guest did not read the new bytes through the restored export: $(os console log show "$b1" | tail -8)"
    ok "the guest on $REMOTE reads bytes written into va's file on $NODE after the restart (QEMU's initiator logged in again)"

    os server remove volume "bv1-$NODE" va || fail "server remove volume across hosts"
    waitfor 60 status_is va available || fail "va is $(os volume show va -c status -f value) after the remote detach"
    virsh -c qemu:///system domblklist "petrel-$b1" | contains vdc && fail "bv1 still has vdc"
    waitfor 30 sh -c "! tgtadm --lld iscsi --op show --mode target | grep -q 'volume-$va\$'" || fail "va's target is left: $(targets)"
    dd if="$WORK/va-head" of="$FILES/volume-$va" conv=notrunc,fsync 2>/dev/null  # the first guest's marker back, for the backups
    virsh -c qemu:///system secret-list | grep -c petrel-iscsi- | contains -x 1 || fail "secrets: $(virsh -c qemu:///system secret-list)"
    ok "server remove volume: va unplugged from bv1, its target and account gone from tgtd, its CHAP secret from libvirt (vb's stays)"

    os server delete --wait "bv1-$NODE" "bv2-$NODE" || fail "server delete"
    waitfor 120 status_is vb available || fail "vb is $(os volume show vb -f value -c status) after its server was deleted"
    waitfor 120 gone "$v2" || fail "the delete_on_termination volume is left: $(os volume show "$v2" -f value -c status)"
    [ -e "$FILES/volume-$v2" ] && fail "its file is left"
    qemu-img compare -q -f raw -F qcow2 "$FILES/volume-$vb" "$GUEST" >/dev/null 2>&1 && echo "note: vb unchanged by its guest"
    os volume delete vb vn >/dev/null || fail "volume delete"
    waitfor 30 sh -c "! tgtadm --lld iscsi --op show --mode target | grep -q 'volume-$vb\$'" || fail "vb's target is left after its server was deleted: $(targets)"
    virsh -c qemu:///system secret-list | contains petrel-iscsi- && fail "a CHAP secret is left: $(virsh -c qemu:///system secret-list)"
    ok "server delete: vb available again (its target and secret gone), the delete_on_termination volume deleted with its file"
    echo "phase boot-restored passed"
    ;;

  backup)
    va=$(os volume show va -f value -c id) || fail "va"
    backup_status() { "$OSC" --os-cloud petrel volume backup show "$1" -f value -c status; }
    backup_is() { [ "$(backup_status "$1")" = "$2" ]; }
    os volume service list -f value -c Binary -c Host -c State | contains "cinder-backup $NODE up" \
      || fail "cinder-backup is not listed up: $(os volume service list 2>&1)"
    b1=$(os volume backup create --name b1 va -f json | field id) || fail "volume backup create"
    waitfor 180 backup_is b1 available || fail "b1 is $(backup_status b1): $(os volume backup show b1 -f value -c fail_reason 2>&1)"
    status_is va available || fail "va is $(os volume show va -c status -f value) after the backup"
    [ -f "$BACKUPS/$b1/manifest.json" ] || fail "b1 has no manifest in $BACKUPS"
    printf 'overwritten-by-the-test-overwritten-by-the-test' | dd of="$FILES/volume-$va" conv=notrunc 2>/dev/null
    b2=$(os volume backup create --incremental --name b2 va -f json | field id) || fail "volume backup create --incremental"
    waitfor 180 backup_is b2 available || fail "b2 is $(backup_status b2)"
    os volume backup show b2 -f json | python3 -c '
import json, sys
b = json.load(sys.stdin)
assert b["is_incremental"] is True and b["object_count"] == 1, (b["is_incremental"], b["object_count"])' || fail "b2: $(os volume backup show b2)"
    os volume backup list -f value -c Name | sort | tr '\n' ' ' | contains -x "b1 b2 " || fail "backup list: $(os volume backup list)"
    refuse "Incremental backups exist" os volume backup delete b1
    ok "volume backup create (full, then incremental: one chunk of 4 MiB written, the rest from b1); b1 cannot go while b2 builds on it"

    os volume backup restore b1 vr >/dev/null || fail "volume backup restore into a new volume"
    waitfor 180 status_is vr available || fail "vr is $(os volume show vr -f value -c status 2>&1)"
    vr=$(os volume show vr -f value -c id)
    head -c 64 "$FILES/volume-$vr" | contains petrel-volume-marker || fail "the restored volume has no marker"
    [ "$(file_size "$vr")" = "$((2 * GiB))" ] || fail "vr's file is $(file_size "$vr") bytes"
    os volume backup restore --force b1 va >/dev/null || fail "volume backup restore --force into va"
    waitfor 180 status_is va available || fail "va is $(os volume show va -f value -c status) after the restore"
    waitfor 60 backup_is b1 available || fail "b1 is $(backup_status b1) after the restores"
    head -c 64 "$FILES/volume-$va" | contains petrel-volume-marker || fail "the marker is not back in va"
    os volume backup restore --force b2 va >/dev/null && waitfor 180 status_is va available || fail "restore of b2"
    head -c 64 "$FILES/volume-$va" | contains overwritten-by-the-test || fail "va is not as b2 saw it"
    ok "volume backup restore: into a new volume (the guest's marker in it), and over va twice (b1: the marker back; b2: the overwrite back)"

    os volume backup delete b2 && waitfor 120 sh -c "! '$OSC' --os-cloud petrel volume backup show b2 >/dev/null 2>&1" || fail "b2 not deleted"
    os volume backup delete b1 && waitfor 120 sh -c "! '$OSC' --os-cloud petrel volume backup show b1 >/dev/null 2>&1" || fail "b1 not deleted"
    [ -e "$BACKUPS/$b1" ] || [ -e "$BACKUPS/$b2" ] && fail "a deleted backup's directory is left"
    os volume delete vr >/dev/null || fail "delete vr"
    ok "volume backup delete: the incremental first, then the full; their directories gone"
    echo "phase backup passed"
    ;;

  lvm)
    l1=$(os volume create --size 1 --type lvm l1 -f json | field id) || fail "volume create on lvm"
    waitfor 180 status_is l1 available || fail "l1 not available: $(os volume show l1 2>&1)"
    [ "$(lv_size "$l1")" = "$GiB" ] || fail "the LV of l1 is '$(lv_size "$l1")' bytes"
    os volume show l1 -f value -c os-vol-host-attr:host | contains "^$NODE@lvm-1#" || fail "l1 not on lvm-1"
    ok "volume create --type lvm: logical volume $VG/volume-$l1 of 1 GiB (lvs)"
    os volume set --size 2 l1 || fail "extend l1"
    waitfor 180 size_is l1 2 || fail "l1 not extended"
    [ "$(lv_size "$l1")" = "$((2 * GiB))" ] || fail "the LV is '$(lv_size "$l1")' bytes after extend"
    ok "volume set --size 2: the LV grew to 2 GiB (lvs)"
    vg_total=$(vgs --noheadings -o vg_size --units g --nosuffix "$VG" | tr -d ' ')
    vg_free=$(vgs --noheadings -o vg_free --units g --nosuffix "$VG" | tr -d ' ')
    waitfor 60 sh -c "'$OSC' --os-cloud petrel volume backend pool list --long -f json | python3 -c '
import json, sys
pool = [p for p in json.load(sys.stdin) if p[\"Name\"].startswith(\"$NODE@lvm-1#\")][0][\"Capabilities\"]
assert abs(float(pool[\"total_capacity_gb\"]) - $vg_total) < 0.02 and abs(float(pool[\"free_capacity_gb\"]) - $vg_free) < 0.02, (pool, $vg_total, $vg_free)
'" || fail "capacity reported does not match vgs ($vg_total GB, $vg_free GB free): $(os volume backend pool list --long)"
    ok "reported capacity matches vgs: $vg_total GB, $vg_free GB free"
    os volume delete l1 || fail "delete l1"
    waitfor 180 gone l1 || fail "l1 not deleted"
    [ -z "$(lv_size "$l1")" ] || fail "the LV of l1 is left"
    ok "volume delete: the LV is removed"
    echo "phase lvm passed"
    ;;

  inflight)
    va=$(os volume show va -f value -c id) || fail "va"
    image=$(os image show "img-$NODE" -f value -c id) || fail "the guest's image"
    # 256 MiB of data for the backup to read, hash and write (the rest of va stays a hole).
    dd if=/dev/urandom of="$FILES/volume-$va" bs=1M count=256 seek=8 conv=notrunc,fsync 2>/dev/null || fail "dd"
    vx=$(os volume create --size 1 --type file vx -f json | field id) && waitfor 120 status_is vx available || fail "vx"
    # A server on the node for vs to be attached to in attach-stopped (vz is for while-down).
    os quota set --volumes 20 --gigabytes 100 admin || fail "quota set"
    sk=$(os server create --image "img-$NODE" --flavor "fl-$NODE" --nic none --wait "sk-$NODE" -f json | field id) || fail "server create sk"
    echo "$sk" > "$WORK/sk"
    for v in vs vz; do os volume create --size 1 --type file "$v" >/dev/null || fail "volume create $v"; done
    waitfor 120 status_is vs available && waitfor 120 status_is vz available || fail "vs, vz not available"
    # The three requests go out together from one client (the CLI takes a second each), and
    # the node is stopped (then killed) as soon as they are accepted.
    "$(dirname "$OSC")/python" - "$image" "$va" "$vx" > "$WORK/inflight" <<'PY' || fail "the requests: $(cat "$WORK/inflight")"
import sys, openstack
image, va, vx = sys.argv[1:4]
c = openstack.connect(cloud="petrel")
vk = c.block_storage.create_volume(size=1, name="vk", image_id=image, volume_type="file")
bk = c.block_storage.create_backup(volume_id=va, name="bk")
c.block_storage.extend_volume(vx, 2)
print(vk.id, bk.id, c.block_storage.get_volume(vk.id).status, c.block_storage.get_backup(bk.id).status, c.block_storage.get_volume(vx).status)
PY
    ok "a volume from an image, a backup of 256 MiB and an extend handed to the node (vk, bk, vx: $(cut -d' ' -f3- "$WORK/inflight")); it is stopped now"
    echo "phase inflight passed"
    ;;

  attach-stopped)
    # The node is stopped (SIGSTOP): vs's attach to sk is asked for by a client, forked off and
    # left waiting for its answer ($WORK/attach); the node is killed once vs is attaching.
    "$(dirname "$OSC")/python" - "$(cat "$WORK/sk")" "$(os volume show vs -f value -c id)" "$WORK/attach" > "$WORK/attaching" <<'PY' \
      || fail "the attach: $(cat "$WORK/attaching")"
import os, sys, time, openstack
sk, vs, out = sys.argv[1:4]
c = openstack.connect(cloud="petrel")
sys.stdout.flush()
if os.fork() == 0:
    os.setsid()
    log = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0); os.dup2(log, 1); os.dup2(log, 2)
    try:
        openstack.connect(cloud="petrel").compute.create_volume_attachment(sk, volume_id=vs)
        print("exit 0", flush=True)
    except Exception as e:
        print("exit 1:", e, flush=True)
    os._exit(0)
deadline = time.monotonic() + 60
while (status := c.block_storage.get_volume(vs).status) == "available" and time.monotonic() < deadline:
    time.sleep(0.05)
print(status)
PY
    [ "$(cat "$WORK/attaching")" = attaching ] || fail "vs is $(cat "$WORK/attaching") while its host is stopped"
    ok "server add volume sk vs while the node is stopped: vs attaching, the client waits; the node is killed now"
    echo "phase attach-stopped passed"
    ;;

  while-down)
    os quota set --volumes 20 --gigabytes 100 admin || fail "quota set"
    v1=$(cat "$WORK/v1")
    os volume delete v1b || fail "volume delete while the node is down"
    status_is v1b deleting || fail "v1b is $(os volume show v1b -c status -f value) while its node is down"
    [ -e "$FILES/volume-$v1" ] || fail "v1b's file went without its node"
    ok "a volume deleted while its node is down waits in deleting (the node's queue keeps the work)"
    if [ -s "$WORK/inflight" ]; then
      echo "figure: the node was killed with vk $(os volume show vk -f value -c status), bk $(os volume backup show bk -f value -c status), vx $(os volume show vx -f value -c status)"
    fi
    # What a node killed after plugging a disk leaves when the controller gave up on the attach:
    # sk's guest holds vz's disk (under vz's serial), and vz has no attachment.
    sk=$(cat "$WORK/sk"); vz=$(os volume show vz -f value -c id)
    virsh -c qemu:///system attach-disk "petrel-$sk" "$FILES/volume-$vz" vdz --targetbus virtio --driver qemu --subdriver raw \
      --serial "$vz" --live --config >/dev/null || fail "virsh attach-disk"
    ok "a stray disk of vz (no attachment) plugged into sk behind the controller's back"
    waitfor 120 sh -c "'$OSC' --os-cloud petrel volume service list -f value -c Host -c State | grep -q '^$NODE@file-1 down'" \
      || fail "cinder-volume of $NODE@file-1 not down: $(os volume service list 2>&1)"
    os volume create --size 1 --type file v3 >/dev/null || fail "volume create while the service is down"
    status_is v3 error || fail "v3 is $(os volume show v3 -c status -f value) with no live backend"
    ok "cinder-volume is reported down; a volume asked for meanwhile is in error (no valid backend), as with Cinder"
    v3=$(os volume show v3 -f value -c id)
    os --os-volume-api-version 3.3 volume message list -f json > "$WORK/messages" || fail "volume message list: $(cat "$WORK/messages")"
    python3 -c '
import json, sys
m = [x for x in json.load(open(sys.argv[1])) if x["Resource UUID"] == sys.argv[2]]
assert len(m) == 1 and m[0]["User Message"] == "schedule allocate volume: Could not find any available weighted backend." \
    and m[0]["Resource Type"] == "VOLUME" and m[0]["Event ID"] == "VOLUME_VOLUME_001_003", m
print(m[0]["ID"])' "$WORK/messages" "$v3" > "$WORK/message" || fail "no message for v3: $(cat "$WORK/messages")"
    # (openstacksdk 4.x reads a shown message under "messages", not Cinder's "message": only its id comes through.)
    os --os-volume-api-version 3.3 volume message show "$(cat "$WORK/message")" -f value -c ID | contains -x "$(cat "$WORK/message")" \
      || fail "volume message show"
    os --os-volume-api-version 3.3 volume message delete "$(cat "$WORK/message")" || fail "volume message delete"
    os --os-volume-api-version 3.3 volume message list -f value -c "Resource UUID" | contains "$v3" && fail "the deleted message is still listed"
    ok "volume message list / show / delete (3.3): v3's failure told in Cinder's words (VOLUME_VOLUME_001_003)"
    echo "phase while-down passed"
    ;;

  restarted)
    v1=$(cat "$WORK/v1")
    waitfor 180 gone v1b || fail "v1b not deleted after the restart: $(os volume show v1b 2>&1)"
    [ -e "$FILES/volume-$v1" ] && fail "v1b's file is left after the restart"
    waitfor 120 sh -c "'$OSC' --os-cloud petrel volume service list -f value -c Host -c State | grep -q '^$NODE@file-1 up'" || fail "not up again"
    os volume create --size 1 --type file v4 >/dev/null || fail "volume create after the restart"
    waitfor 120 status_is v4 available || fail "v4 not available"
    ok "the restarted node finished the delete (file gone); new volumes are made again"

    # What the node was killed in the middle of: finished by its reconcile, or failed with a reason.
    settled() { case "$(os volume show "$1" -f value -c status)" in available|error) return 0 ;; *) return 1 ;; esac; }
    backup_settled() { case "$("$OSC" --os-cloud petrel volume backup show bk -f value -c status)" in available|error) return 0 ;; *) return 1 ;; esac; }
    waitfor 180 settled vk && waitfor 180 settled vx && waitfor 180 backup_settled && waitfor 60 status_is va available \
      || fail "not settled: vk $(os volume show vk -f value -c status), vx $(os volume show vx -f value -c status), bk $(os volume backup show bk -f value -c status), va $(os volume show va -f value -c status)"
    vk=$(os volume show vk -f value -c id); vx=$(os volume show vx -f value -c id); bk=$(os volume backup show bk -f value -c id)
    status_is vk available && { qemu-img compare -q -f raw -F qcow2 "$FILES/volume-$vk" "$GUEST" || fail "vk's bytes differ from the image's"; }
    status_is vk error && [ -e "$FILES/volume-$vk" ] && fail "vk is in error but its file is there"
    status_is vx available && { size_is vx 2 || fail "vx is available at $(os volume show vx -f value -c size) GB"; [ "$(file_size "$vx")" = "$((2 * GiB))" ] || fail "vx's file is $(file_size "$vx") bytes"; }
    if [ "$(os volume backup show bk -f value -c status)" = available ]; then
      [ -f "$BACKUPS/$bk/manifest.json" ] || fail "bk is available without a manifest"
    else
      [ -e "$BACKUPS/$bk/manifest.json" ] && fail "bk failed but left a manifest"
    fi
    ls -A "$FILES" | grep -q '\.partial$' && fail "a partial file is left: $(ls -A "$FILES")"
    for v in $(os volume list -f value -c Status | sort | uniq); do
      case "$v" in available|in-use|error) ;; *) fail "a volume is still $v: $(os volume list --long)" ;; esac
    done
    ok "after the kill -9 every volume and the backup settled (vk $(os volume show vk -f value -c status), vx $(os volume show vx -f value -c status) at $(os volume show vx -f value -c size) GB, bk $(os volume backup show bk -f value -c status)); no partial file"
    # The attach the node was killed in: in-use with the disk in sk's guest, or available without it.
    sk=$(cat "$WORK/sk"); vs=$(os volume show vs -f value -c id); vz=$(os volume show vz -f value -c id)
    waitfor 180 grep -q '^exit' "$WORK/attach" || fail "server add volume sk vs still waits: $(cat "$WORK/attach")"
    holds() { virsh -c qemu:///system domblklist ${2:-} "petrel-$sk" > "$WORK/blk" && contains "volume-$1 *\$" "$WORK/blk"; }
    disks() { echo "live:"; virsh -c qemu:///system domblklist "petrel-$sk"; echo "stored:"; virsh -c qemu:///system domblklist --inactive "petrel-$sk"; }
    case "$(os volume show vs -f value -c status)" in
      in-use) grep -qx 'exit 0' "$WORK/attach" || fail "vs in-use but the client was told $(cat "$WORK/attach")"
              holds "$vs" && holds "$vs" --inactive || fail "vs ($vs) in-use but not in sk: $(disks)" ;;
      available) grep -qx 'exit 0' "$WORK/attach" && fail "vs available but the client was told it attached"
                 waitfor 60 sh -c "! virsh -c qemu:///system domblklist 'petrel-$sk' | grep -q 'volume-$vs *\$'" \
                   && ! holds "$vs" --inactive || fail "vs ($vs) available but sk holds it: $(disks)" ;;
      *) fail "vs is $(os volume show vs -f value -c status)" ;;
    esac
    echo "figure: the attach the node was killed in ended $(os volume show vs -f value -c status) ($(tail -n 1 "$WORK/attach"))"
    waitfor 120 sh -c "! virsh -c qemu:///system domblklist 'petrel-$sk' | grep -q 'volume-$vz *\$'" && ! holds "$vz" --inactive \
      || fail "the stray disk of vz ($vz) is still in sk: $(disks)"
    status_is vz available || fail "vz is $(os volume show vz -f value -c status)"
    ok "the attach the node was killed in settled: vs $(os volume show vs -f value -c status), in sk's guest exactly when in-use; the restarted node unplugged vz's stray disk (live and stored)"
    os server delete --wait "sk-$NODE" || fail "server delete sk"
    waitfor 60 status_is vs available || fail "vs is $(os volume show vs -f value -c status) after sk's delete"
    os volume backup delete bk >/dev/null && waitfor 120 sh -c "! '$OSC' --os-cloud petrel volume backup show bk >/dev/null 2>&1" || fail "bk delete"
    os volume delete vk vx >/dev/null || fail "delete vk vx"
    echo "phase restarted passed"
    ;;

  cleanup)
    for v in $(os volume list -f value -c ID); do os volume delete "$v" || fail "delete $v"; done
    waitfor 180 sh -c "[ -z \"\$('$OSC' --os-cloud petrel volume list -f value -c ID)\" ]" || fail "volumes left: $(os volume list)"
    [ -z "$(ls -A "$FILES")" ] || fail "files left in $FILES: $(ls -A "$FILES")"
    [ -z "$(lvs --noheadings -o lv_name "$VG" 2>/dev/null | tr -d ' ')" ] || fail "LVs left: $(lvs "$VG")"
    os volume type delete file lvm || fail "type delete"
    ok "every volume deleted: no file and no logical volume left"
    echo "phase cleanup passed"
    ;;
  *) fail "unknown phase $1" ;;
esac
