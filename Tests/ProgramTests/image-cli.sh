#!/usr/bin/env bash
# The image service through the unmodified `openstack` CLI: upload, list, show, save (the
# bytes and checksum come back identical), properties and tags, a refused qcow2 that is not
# qcow2, visibility between projects, delete. Needs OSC, OS_CLIENT_CONFIG_FILE (cloud
# `petrel`, admin), PETREL_URL.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${PETREL_URL:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
work=$(mktemp -d /tmp/petrel-image-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A small but real qcow2 (header + data), made by qemu-img.
qemu-img create -q -f qcow2 "$work/disk.qcow2" 64M || fail "qemu-img"
head -c 300000 /dev/urandom > "$work/raw.img"

os image create --file "$work/disk.qcow2" --disk-format qcow2 --container-format bare --public --property os_distro=petrel \
  --tag tiny cli-qcow2 -f json > "$work/created.json" || fail "image create --file (qcow2)"
python3 - "$work/created.json" "$(md5sum < "$work/disk.qcow2" | cut -d' ' -f1)" "$(stat -c %s "$work/disk.qcow2")" <<'PY' || fail "the created image: $(cat "$work/created.json")"
import json, sys
image = json.load(open(sys.argv[1]))
assert image["status"] == "active" and image["checksum"] == sys.argv[2] and image["size"] == int(sys.argv[3]), image
assert image["virtual_size"] == 64 * 1024 * 1024, image["virtual_size"]
assert image["visibility"] == "public" and image["tags"] == ["tiny"] and image["properties"]["os_distro"] == "petrel", image
assert image["properties"]["os_hash_algo"] == "sha512" and len(image["properties"]["os_hash_value"]) == 128, image
PY
ok "image create --file: active, md5 checksum, sha512, size, virtual size from the qcow2 header"
sha=$(os image show cli-qcow2 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"]["os_hash_value"])')
[ "$sha" = "$(sha512sum < "$work/disk.qcow2" | cut -d' ' -f1)" ] || fail "os_hash_value is not the sha512 of the data"
ok "image show: os_hash_value is the data's sha512"
os image save --file "$work/saved.qcow2" cli-qcow2 || fail "image save"
cmp -s "$work/disk.qcow2" "$work/saved.qcow2" || fail "image save returned different bytes"
ok "image save returns the same bytes"
os image create --file "$work/raw.img" --disk-format qcow2 not-qcow2 >/dev/null 2>&1 && fail "random bytes were accepted as qcow2"
os image list -f value -c Name -c Status | grep "^not-qcow2 active" >/dev/null && fail "a refused upload left an active image"
ok "random bytes declared qcow2 are refused"
os image create --file "$work/raw.img" --disk-format raw --private cli-raw >/dev/null || fail "image create raw"
names=$(os image list -f value -c Name | sort | tr '\n' ' ')
[[ "$names" == *"cli-qcow2 cli-raw"* ]] || fail "image list: $names"
public=$(os image list --public -f value -c Name) || fail "image list --public"
grep -x cli-qcow2 <<<"$public" >/dev/null && ! grep -x cli-raw <<<"$public" >/dev/null || fail "image list --public: $public"
ok "image list (all, --public)"
os image set --name cli-raw-2 --property purpose=test --min-disk 1 cli-raw || fail "image set"
[ "$(os image show cli-raw-2 -f value -c min_disk)" = 1 ] || fail "image set --min-disk"
os image unset --property purpose cli-raw-2 || fail "image unset"
os image show cli-raw-2 -f json | python3 -c 'import json,sys; assert "purpose" not in json.load(sys.stdin)["properties"]' || fail "image unset --property"
ok "image set/unset"
os image set --protected cli-raw-2 && os image delete cli-raw-2 >/dev/null 2>&1 && fail "a protected image was deleted"
os image set --unprotected cli-raw-2 || fail "image set --unprotected"
os image delete cli-raw-2 cli-qcow2 || fail "image delete"
remaining=$(os image list -f value -c Name) || fail "image list"
grep -E "^cli-" <<<"$remaining" >/dev/null && fail "images remain after delete: $remaining"
ok "protected images refuse delete; image delete"
echo "all image CLI checks passed"
