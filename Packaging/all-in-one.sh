#!/usr/bin/env bash
# Starts (or stops) an all-in-one Petrel on this host: petrel-controller and
# petrel-node from this checkout's build, against the host services that
# Packaging/host-services.sh runs. Used by `make run` / `make stop`.
#
# State:  /var/lib/petrel      Logs: /var/log/petrel/{controller,node}.log
# Config: /etc/petrel/petrel.conf (written once; edit it freely afterwards)
# Admin:  /etc/petrel/admin-password (generated once); clouds.yaml entry `petrel` in
#         ~/.config/openstack/clouds.yaml (admin, project-scoped, with `cacert`), rewritten
#         on every start
# TLS:    /etc/petrel/tls: a CA of this cloud and the controller's certificate signed by it
#         (127.0.0.1, localhost, this host's name and address), made once and made again when
#         it nears its end or the host's address changes; the controller serves HTTPS with it
#         and re-reads it on SIGHUP. `[api] tls = false` in the configuration keeps plain HTTP.
# PETREL_BIN=DIR runs the programs in DIR instead of the debug build (the benchmarks use
# .build-release/release, from Packaging/release-build.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="${PETREL_BIN:-$top/.build/debug}"
run=/run/petrel
logs=/var/log/petrel
config=/etc/petrel/petrel.conf
log() { printf 'all-in-one: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

running() { [ -s "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

write_config() {
  if [ -e "$config" ]; then upgrade_config; return 0; fi
  mkdir -p "$(dirname "$config")"
  [ -s "$node_password_file" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$node_password_file")
  choose_virt_type
  cat > "$config" <<CONF
# Written by Petrel's \`make run\` for an all-in-one cloud on this host.
# Every key is documented in etc/petrel.conf.sample.
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/
state_path = /var/lib/petrel
# One host: resizes and cold migrations stay on it (as devstack sets for a single node).
allow_resize_to_same_host = true
# The node's volume service: sparse files (file-1) and a loop-device volume group (lvm-1,
# LVM metadata only where the kernel has no device-mapper). New volumes get the type \`file\`.
enabled_backends = file-1, lvm-1
default_volume_type = file

[database]
connection = sqlite:////var/lib/petrel/petrel.db

[api]
listen = 0.0.0.0:5000
public_url = https://127.0.0.1:5000
# HTTPS with a certificate of this cloud's own CA ($tls_dir/ca.pem), made by \`make run\`
# and re-read on SIGHUP; tls = false serves plain HTTP (behind a TLS-terminating balancer).
tls_cert_file = $tls_dir/controller.pem
tls_key_file = $tls_dir/controller-key.pem

[token]
key_repository = /etc/petrel/fernet-keys

[libvirt]
uri = qemu:///system
# $virt_note
virt_type = $virt_type

[service_user]
# The node downloads images and uploads snapshots as this user (created by \`make run\`).
auth_url = https://127.0.0.1:5000/v3
# The controller's certificate is verified against this cloud's CA.
cafile = $tls_dir/ca.pem
username = petrel-node
password = $(cat "$node_password_file")
project_name = service

[node]
metrics_listen = 127.0.0.1:9180
# compute (nova-compute), network (Linux bridge L2 agent, DHCP agent, metadata proxy),
# l3 (routers and floating IPs) and volume (cinder-volume on enabled_backends)
services = compute, network, l3, volume

[file-1]
volume_driver = file
volumes_dir = /var/lib/petrel/volumes/file-1
# Servers on other hosts reach volumes over iSCSI at tgtd's portal (host-services.sh starts it
# on \$PETREL_ISCSI_PORTAL, loopback by default: set both to the storage address to add hosts).
target_ip_address = 127.0.0.1

[lvm-1]
volume_driver = lvm
volume_group = $volume_group
target_ip_address = 127.0.0.1

[linux_bridge]
# The flat external network \`public\` reaches the outside-world namespace through petrel-pub0
# (a veth into the bridge br-petrel-pub that \`make run\` makes).
physical_interface_mappings = public:petrel-pub0

[metadata]
# The node's metadata proxy signs instance ids with it; the controller's metadata API checks them.
shared_secret = $(head -c 24 /dev/urandom | base64 | tr -d '/+=')

[console]
# The console proxy: noVNC's page and the VNC and serial WebSockets (openstack console url show).
proxy_listen = 0.0.0.0:6080

[serial_console]
enabled = true
CONF
  chmod 600 "$config"  # it holds the service user's password and the metadata secret
  log "wrote $config"
}

# A configuration an older \`make run\` wrote gains what this one needs: the network service
# and the metadata secret (each only when the file does not set it already).
upgrade_config() {
  if ! grep -q '^services *=' "$config"; then
    sed -i '/^\[node\]/a services = compute, network' "$config" && log "$config: [node] services = compute, network"
  fi
  if ! grep -q '^services *=.*l3' "$config"; then
    sed -i 's/^services *=.*network.*$/&, l3/' "$config" && log "$config: [node] services gains l3"
  fi
  if ! grep -q '^enabled_backends *=' "$config"; then
    sed -i -e '/^\[DEFAULT\]/a default_volume_type = file' -e '/^\[DEFAULT\]/a enabled_backends = file-1, lvm-1' "$config"
    sed -i 's/^services *=.*$/&, volume/' "$config"
    printf '\n[file-1]\nvolume_driver = file\nvolumes_dir = /var/lib/petrel/volumes/file-1\n\n[lvm-1]\nvolume_driver = lvm\nvolume_group = %s\n' "$volume_group" >> "$config"
    log "$config: the volume service with backends file-1 and lvm-1"
  fi
  if ! grep -q '^physical_interface_mappings *=' "$config"; then
    printf '\n[linux_bridge]\nphysical_interface_mappings = public:petrel-pub0\n' >> "$config" && log "$config: [linux_bridge] physical_interface_mappings = public:petrel-pub0"
  fi
  if ! grep -q '^shared_secret *=' "$config"; then
    printf '\n[metadata]\nshared_secret = %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >> "$config" && log "$config: [metadata] shared_secret"
  fi
  if ! grep -q '^proxy_listen *=' "$config"; then
    printf '\n[console]\nproxy_listen = 0.0.0.0:6080\n\n[serial_console]\nenabled = true\n' >> "$config" && log "$config: the console proxy on :6080, serial consoles"
  fi
  # HTTPS, unless the file already says how the listener runs (tls_cert_file, or tls = …).
  if ! grep -Eq '^(tls|tls_cert_file) *=' "$config"; then
    sed -i -e "/^\[api\]/a tls_key_file = $tls_dir/controller-key.pem" -e "/^\[api\]/a tls_cert_file = $tls_dir/controller.pem" \
      -e 's#^\(public_url *= *\)http://#\1https://#' -e 's#^\(auth_url *= *\)http://#\1https://#' "$config"
    grep -q '^cafile *=' "$config" || sed -i "/^\[service_user\]/a cafile = $tls_dir/ca.pem" "$config"
    log "$config: HTTPS on the controller's listener ([api] tls_cert_file), verified by the node against [service_user] cafile"
  fi
}

# The cloud's CA and the controller's certificate (see the top of this file). Sets tls_changed=1
# when the certificate was (re)made, so that a running controller is told to re-read it.
tls_dir=/etc/petrel/tls
tls_changed=0
tls_up() {
  mkdir -p "$tls_dir" && chmod 755 "$tls_dir"
  local ca=$tls_dir/ca.pem ca_key=$tls_dir/ca-key.pem cert=$tls_dir/controller.pem key=$tls_dir/controller-key.pem
  if [ ! -s "$ca" ] || [ ! -s "$ca_key" ] || ! openssl x509 -in "$ca" -noout -checkend $((90 * 86400)) >/dev/null 2>&1; then
    (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \
      -subj "/O=Petrel/CN=Petrel all-in-one CA $(hostname)" -keyout "$ca_key" -out "$ca.new" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" 2>/dev/null) || die "openssl cannot make the CA in $tls_dir"
    chmod 644 "$ca.new" && mv "$ca.new" "$ca"
    rm -f "$cert"
    log "made this cloud's CA: $ca"
  fi
  # The names clients use: loopback, localhost, this host's name and the address of its default route.
  local dev address san
  dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
  address=$([ -n "$dev" ] && ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}')
  san="IP:127.0.0.1,DNS:localhost,DNS:$(hostname)${address:+,IP:$address}"
  if [ -s "$cert" ] && [ -s "$key" ] && [ "$(cat "$tls_dir/controller.san" 2>/dev/null)" = "$san" ] &&
     openssl verify -CAfile "$ca" "$cert" >/dev/null 2>&1 && openssl x509 -in "$cert" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
    return 0
  fi
  local scratch
  scratch=$(mktemp -d "$tls_dir/.new.XXXXXX")
  printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = %s\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n' \
    "$san" > "$scratch/extensions"
  (umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=Petrel/CN=$(hostname)" \
      -keyout "$scratch/key.pem" -out "$scratch/request.pem" 2>/dev/null &&
    openssl x509 -req -sha256 -days 397 -in "$scratch/request.pem" -CA "$ca" -CAkey "$ca_key" -set_serial "0x$(openssl rand -hex 12)" \
      -extfile "$scratch/extensions" -out "$scratch/cert.pem" 2>/dev/null) || { rm -rf "$scratch"; die "openssl cannot make the controller's certificate"; }
  chmod 644 "$scratch/cert.pem"
  # The key first, then the certificate: a reload in between finds a pair that does not match
  # and keeps serving the old one.
  mv "$scratch/key.pem" "$key" && mv "$scratch/cert.pem" "$cert" && echo "$san" > "$tls_dir/controller.san"
  rm -rf "$scratch"
  tls_changed=1
  log "made the controller's certificate $cert ($san), signed by $ca"
}

# How the configuration has the listener run: https (tls_cert_file set and tls not false) or http.
listener_scheme() {
  if grep -Eiq '^tls *= *(false|no|off|0) *$' "$config"; then echo http
  elif grep -Eq '^tls_cert_file *=' "$config"; then echo https
  else echo http
  fi
}

# Endpoints an earlier run registered under the other scheme (http:// before this cloud had
# TLS) move to the public URL's: bootstrap leaves existing endpoints as they are.
align_endpoints() { # align_endpoints VENV PUBLIC_URL PASSWORD CACERT
  "$1/bin/python" - "$2" "$3" "$4" <<'PY'
import sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
url, password, cacert = sys.argv[1:]
other = ("http://" + url[len("https://"):]) if url.startswith("https://") else ("https://" + url[len("http://"):])
auth = v3.Password(auth_url=url + "/v3", username="admin", password=password, project_name="admin",
                   user_domain_name="Default", project_domain_name="Default")
http = session.Session(auth=auth, verify=cacert or True)
for endpoint in http.get(url + "/v3/endpoints").json()["endpoints"]:
    if endpoint["url"] == other or endpoint["url"].startswith(other + "/"):
        new = url + endpoint["url"][len(other):]
        http.patch(url + "/v3/endpoints/" + endpoint["id"], json={"endpoint": {"url": new}})
        print("all-in-one: %s endpoint %s now %s" % (endpoint["interface"], endpoint["url"], new), file=sys.stderr)
PY
}

node_password_file=/etc/petrel/node-password

# The test guest's qcow2 (built once and cached by its script, which `make run` ran), or nothing.
test_guest() { "$top/Packaging/guest-image/build.sh" 2>/dev/null || true; }

# kvm when KVM really runs a guest here; otherwise qemu (TCG), with a warning. Boots the
# test guest for at most 20 s with KVM and looks for its marker on the serial console.
choose_virt_type() {
  virt_type=qemu virt_note="KVM is unavailable here: guests are emulated (TCG)."
  local guest probe
  guest=$(test_guest)
  if [ -e /dev/kvm ] && [ -n "$guest" ] && command -v qemu-system-x86_64 >/dev/null; then
    probe=$(mktemp -d /tmp/petrel-kvm-probe.XXXXXX)
    qemu-img create -q -f qcow2 -b "$guest" -F qcow2 "$probe/disk"
    # In the background by itself, so $! is `timeout`, which passes the kill on to QEMU.
    timeout 20 qemu-system-x86_64 -enable-kvm -m 128 -display none -no-reboot -serial "file:$probe/console" \
      -drive "file=$probe/disk,if=virtio" >/dev/null 2>&1 &
    local pid=$! i
    for ((i = 0; i < 200; i++)); do
      grep -q PETREL-GUEST-BOOTED "$probe/console" 2>/dev/null && { virt_type=kvm; break; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    rm -rf "$probe"
  fi
  if [ "$virt_type" = kvm ]; then
    virt_note="KVM booted a test guest on this host (checked by make run)."
  else
    log "WARNING: KVM cannot run a guest on this host (/dev/kvm missing, or a test guest did not boot with it within 20 s): virt_type = qemu (emulation, slower guests)"
    virt_note="KVM could not run a test guest here (checked by make run): guests are emulated (TCG). Set kvm on a real hypervisor host."
  fi
}

start_one() { # start_one NAME BINARY
  local name=$1 binary=$2
  if running "$name"; then log "$name already running (pid $(cat "$run/$name.pid"))"; return 0; fi
  [ -x "$binary" ] || die "$binary is not built (make build)"
  setsid "$binary" --config "$config" >>"$logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/$name.pid"
}

wait_http() { # wait_http NAME URL [CURL-ARGS…]
  local i name=$1 url=$2; shift 2
  for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "$@" "$url" && return 0
    running "$name" || die "$name exited; see $logs/$name.log: $(tail -3 "$logs/$name.log")"
    sleep 0.1
  done
  die "$name did not answer on $url within 10 s; see $logs/$name.log"
}

# The `petrel` entry of the standard clouds.yaml, merged with any other clouds there.
write_clouds_yaml() { # write_clouds_yaml VENV PUBLIC_URL PASSWORD [CACERT]
  local venv=$1 url=$2 password=$3 cacert=${4:-} file=${XDG_CONFIG_HOME:-$HOME/.config}/openstack/clouds.yaml
  mkdir -p "$(dirname "$file")"
  "$venv/bin/python" - "$file" "$url" "$password" "$cacert" <<'PY'
import os, sys, yaml
path, url, password, cacert = sys.argv[1:]
document = {}
if os.path.exists(path):
    with open(path) as f:
        document = yaml.safe_load(f) or {}
document.setdefault("clouds", {})["petrel"] = {
    "auth": {"auth_url": url + "/v3", "username": "admin", "password": password, "project_name": "admin",
             "user_domain_name": "Default", "project_domain_name": "Default"},
    "region_name": "RegionOne", "identity_api_version": 3, "interface": "public",
}
if cacert:
    document["clouds"]["petrel"]["cacert"] = cacert
old = os.umask(0o077)
with open(path + ".tmp", "w") as f:
    yaml.safe_dump(document, f, default_flow_style=False, sort_keys=False)
os.umask(old)
os.replace(path + ".tmp", path)
PY
  log "clouds.yaml: cloud 'petrel' in $file"
}

# The outside world of the all-in-one cloud: a bridge br-petrel-pub (the external segment,
# 198.18.200.0/24), petrel-pub0 the interface the node wires the flat network `public` onto,
# and the namespace petrel-outside at 198.18.200.1 (the segment's gateway) answering HTTP on
# port 80 with the address a request came from. Nothing here is routed to the host's networks.
outside_up() {
  ip link show br-petrel-pub >/dev/null 2>&1 || ip link add br-petrel-pub type bridge
  ip link show petrel-pub0 >/dev/null 2>&1 || ip link add petrel-pub0 type veth peer name petrel-pub1
  ip link set petrel-pub1 master br-petrel-pub
  if ! ip netns exec petrel-outside true 2>/dev/null; then
    ip netns add petrel-outside
    ip link add petrel-out0 type veth peer name eth0 netns petrel-outside
    ip -n petrel-outside addr add 198.18.200.1/24 dev eth0
    ip -n petrel-outside link set eth0 up
    ip -n petrel-outside link set lo up
  fi
  ip link set petrel-out0 master br-petrel-pub
  for link in br-petrel-pub petrel-pub0 petrel-pub1 petrel-out0; do ip link set "$link" up; done
  if ! running outside; then
    setsid ip netns exec petrel-outside python3 -c '
import http.server
class Seen(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("the outside world; your request came from %s\n" % self.client_address[0]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), Seen).serve_forever()' >>"$logs/outside.log" 2>&1 < /dev/null &
    echo $! > "$run/outside.pid"
  fi
}

# The volume group of backend lvm-1: on a loop device over a sparse 10 GiB file, attached
# again after a reboot. Without device-mapper LVM keeps only its metadata (volumes are made,
# sized and removed, but cannot be activated).
volume_group=petrel-volumes
volume_group_image=/var/lib/petrel/volume-groups/$volume_group.img
volume_group_up() {
  export LVM_SUPPRESS_FD_WARNINGS=1
  vgs "$volume_group" >/dev/null 2>&1 && return 0
  mkdir -p "$(dirname "$volume_group_image")"
  local fresh=0 device
  [ -e "$volume_group_image" ] || { truncate -s 10G "$volume_group_image" && fresh=1; }
  device=$(losetup -j "$volume_group_image" | cut -d: -f1 | head -1)
  [ -n "$device" ] || device=$(losetup --find --show "$volume_group_image") || die "cannot attach $volume_group_image to a loop device"
  if [ "$fresh" = 1 ] || ! pvs "$device" >/dev/null 2>&1; then
    pvcreate -q "$device" >/dev/null && vgcreate -q "$volume_group" "$device" >/dev/null || die "cannot make volume group $volume_group on $device"
    log "made volume group $volume_group on $device ($volume_group_image)"
  else
    vgscan --cache >/dev/null 2>&1 || true
  fi
  vgs "$volume_group" >/dev/null 2>&1 || die "volume group $volume_group is not visible on $device"
}

outside_down() {
  stop_one outside
  ip netns del petrel-outside 2>/dev/null || true
  for link in petrel-pub0 petrel-out0 br-petrel-pub; do ip link del "$link" 2>/dev/null || true; done
}

stop_one() {
  local name=$1 pid i
  running "$name" || { rm -f "$run/$name.pid"; return 0; }
  pid=$(cat "$run/$name.pid")
  kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$run/$name.pid"
  log "stopped $name"
}

case "${1:-start}" in
  start)
    mkdir -p "$run" "$logs" /var/lib/petrel
    write_config
    scheme=$(listener_scheme)
    cacert=
    if [ "$scheme" = https ]; then
      command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"
      tls_up
      cacert=$tls_dir/ca.pem
      # A running controller serves a remade certificate to new connections after SIGHUP.
      if [ "$tls_changed" = 1 ] && running controller; then
        kill -HUP "$(cat "$run/controller.pid")" && log "told the running controller to re-read its certificate (SIGHUP)"
      fi
    fi
    "$bin/petrel-controller" --config "$config" db-sync >&2 || die "db-sync failed"
    "$bin/petrel-controller" --config "$config" token-keys setup >&2 || die "token-keys setup failed"
    "$bin/petrel-controller" --config "$config" credential-keys setup >&2 || die "credential-keys setup failed"
    password_file=/etc/petrel/admin-password
    if [ ! -s "$password_file" ]; then
      (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$password_file")
    fi
    "$bin/petrel-controller" --config "$config" bootstrap --admin-password "$(cat "$password_file")" >&2 || die "bootstrap failed"
    venv=$(bash "$top/Packaging/openstack-client.sh") || die "cannot install the openstack client"
    start_one controller "$bin/petrel-controller"
    listen=$(sed -n 's/^listen *= *//p' "$config" | head -1); port=${listen##*:}
    metrics=$(sed -n 's/^metrics_listen *= *//p' "$config" | head -1)
    wait_http controller "$scheme://127.0.0.1:$port/healthcheck" ${cacert:+--cacert "$cacert"}
    public_url=$(sed -n 's/^public_url *= *//p' "$config" | head -1)
    public_url=${public_url:-$scheme://127.0.0.1:$port}
    write_clouds_yaml "$venv" "$public_url" "$(cat "$password_file")" "$cacert"
    align_endpoints "$venv" "${public_url%/}" "$(cat "$password_file")" "$cacert" || die "cannot list or update the catalog's endpoints"
    # The node's service user, once (its password is in the configuration's [service_user]).
    node_user=$(sed -n '/^\[service_user\]/,/^\[/s/^username *= *//p' "$config" | head -1)
    node_project=$(sed -n '/^\[service_user\]/,/^\[/s/^project_name *= *//p' "$config" | head -1)
    node_password=$(sed -n '/^\[service_user\]/,/^\[/s/^password *= *//p' "$config" | head -1)
    if [ -n "$node_user" ] && ! openstack --os-cloud petrel user show "$node_user" >/dev/null 2>&1; then
      openstack --os-cloud petrel project show "${node_project:-service}" >/dev/null 2>&1 ||
        openstack --os-cloud petrel project create --description "Petrel's service users" "${node_project:-service}" >/dev/null
      openstack --os-cloud petrel user create --project "${node_project:-service}" --password "$node_password" "$node_user" >/dev/null &&
        openstack --os-cloud petrel role add --user "$node_user" --project "${node_project:-service}" admin &&
        log "created the node's service user $node_user"
    fi
    outside_up
    volume_group_up
    start_one node "$bin/petrel-node"
    wait_http node "http://$metrics/metrics"
    log "petrel-controller: $scheme://127.0.0.1:$port (metrics at /metrics)${cacert:+, CA $cacert}  log: $logs/controller.log"
    log "petrel-node:       http://$metrics/metrics  log: $logs/node.log"
    # The test guest as the public image petrel-tiny, once.
    guest=$(test_guest)
    if [ -n "$guest" ] && ! openstack --os-cloud petrel image show petrel-tiny >/dev/null 2>&1; then
      openstack --os-cloud petrel image create --file "$guest" --disk-format qcow2 --container-format bare --public petrel-tiny >/dev/null &&
        log "uploaded image petrel-tiny from $guest"
    fi
    # The flavors the compute issue names, once.
    for flavor in "m1.tiny 1 128 1" "m1.small 1 256 2"; do
      set -- $flavor
      openstack --os-cloud petrel flavor show "$1" >/dev/null 2>&1 ||
        { openstack --os-cloud petrel flavor create --vcpus "$2" --ram "$3" --disk "$4" "$1" >/dev/null && log "created flavor $1"; }
    done
    # The network `private`: a VXLAN project network of the admin project with a DHCP subnet
    # (198.18.100.0/24, inside this host only), shared so every project can boot on it.
    if ! openstack --os-cloud petrel network show private >/dev/null 2>&1; then
      openstack --os-cloud petrel network create --share private >/dev/null &&
        openstack --os-cloud petrel subnet create --network private --subnet-range 198.18.100.0/24 private-v4 >/dev/null &&
        log "created network private (VXLAN) with subnet private-v4 198.18.100.0/24"
      # The admin project's default security group lets in only its own members; open ping,
      # SSH and HTTP from the private subnet (its DHCP namespace included), as OpenStack's
      # guides do, so the examples below reach the guest.
      for rule in "--protocol icmp" "--protocol tcp --dst-port 22" "--protocol tcp --dst-port 80"; do
        openstack --os-cloud petrel security group rule create $rule --remote-ip 198.18.100.0/24 default >/dev/null 2>&1 || true
      done
      log "opened ICMP, SSH and HTTP from 198.18.100.0/24 in the admin project's default security group"
    fi
    # The external network `public`: flat, on the segment of the outside-world namespace.
    if ! openstack --os-cloud petrel network show public >/dev/null 2>&1; then
      openstack --os-cloud petrel network create --external --provider-network-type flat --provider-physical-network public public >/dev/null &&
        openstack --os-cloud petrel subnet create --network public --subnet-range 198.18.200.0/24 --gateway 198.18.200.1 \
          --allocation-pool start=198.18.200.10,end=198.18.200.250 --no-dhcp public-v4 >/dev/null &&
        log "created the external network public (flat) with subnet public-v4 198.18.200.0/24; the outside world is the namespace petrel-outside at 198.18.200.1"
      # The outside world may ping the admin's guests and fetch their pages through floating IPs.
      for rule in "--protocol icmp" "--protocol tcp --dst-port 80"; do
        openstack --os-cloud petrel security group rule create $rule --remote-ip 198.18.200.0/24 default >/dev/null 2>&1 || true
      done
    fi
    # Volume types for the two backends; `file` is the default type (default_volume_type).
    for backend in file lvm; do
      openstack --os-cloud petrel volume type show "$backend" >/dev/null 2>&1 ||
        { openstack --os-cloud petrel volume type create --property "volume_backend_name=$backend-1" "$backend" >/dev/null &&
          log "created volume type $backend (backend $backend-1)"; }
    done
    log "try: openstack --os-cloud petrel server create --image petrel-tiny --flavor m1.tiny --network private --wait vm1"
    log "     openstack --os-cloud petrel volume create --size 1 vol1"
    ;;
  stop)
    stop_one node
    stop_one controller
    outside_down
    ;;
  status)
    for name in controller node outside; do
      if running "$name"; then echo "$name: running (pid $(cat "$run/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
