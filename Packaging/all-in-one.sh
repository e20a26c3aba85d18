#!/usr/bin/env bash
# Starts (or stops) an all-in-one Petrel on this host: petrel-controller and
# petrel-node from this checkout's build, against the host services that
# Packaging/host-services.sh runs. Used by `make run` / `make stop`.
#
# State:  /var/lib/petrel      Logs: /var/log/petrel/{controller,node}.log
# Config: /etc/petrel/petrel.conf (written once; edit it freely afterwards)
# Admin:  /etc/petrel/admin-password (generated once); clouds.yaml entry `petrel` in
#         ~/.config/openstack/clouds.yaml (admin, project-scoped), rewritten on every start
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.build/debug"
run=/run/petrel
logs=/var/log/petrel
config=/etc/petrel/petrel.conf
log() { printf 'all-in-one: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

running() { [ -s "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

write_config() {
  [ -e "$config" ] && return 0
  mkdir -p "$(dirname "$config")"
  cat > "$config" <<CONF
# Written by Petrel's \`make run\` for an all-in-one cloud on this host.
# Every key is documented in etc/petrel.conf.sample.
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/
state_path = /var/lib/petrel

[database]
connection = sqlite:////var/lib/petrel/petrel.db

[api]
listen = 0.0.0.0:5000
public_url = http://127.0.0.1:5000

[token]
key_repository = /etc/petrel/fernet-keys

[libvirt]
uri = qemu:///system
# These development machines expose /dev/kvm but cannot run KVM guests: emulate.
virt_type = qemu

[node]
metrics_listen = 127.0.0.1:9180
CONF
  log "wrote $config"
}

start_one() { # start_one NAME BINARY
  local name=$1 binary=$2
  if running "$name"; then log "$name already running (pid $(cat "$run/$name.pid"))"; return 0; fi
  [ -x "$binary" ] || die "$binary is not built (make build)"
  setsid "$binary" --config "$config" >>"$logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/$name.pid"
}

wait_http() { # wait_http NAME URL
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "$2" && return 0
    running "$1" || die "$1 exited; see $logs/$1.log: $(tail -3 "$logs/$1.log")"
    sleep 0.1
  done
  die "$1 did not answer on $2 within 10 s; see $logs/$1.log"
}

# The `petrel` entry of the standard clouds.yaml, merged with any other clouds there.
write_clouds_yaml() { # write_clouds_yaml PUBLIC_URL PASSWORD
  local venv=$1 url=$2 password=$3 file=${XDG_CONFIG_HOME:-$HOME/.config}/openstack/clouds.yaml
  mkdir -p "$(dirname "$file")"
  "$venv/bin/python" - "$file" "$url" "$password" <<'PY'
import os, sys, yaml
path, url, password = sys.argv[1:]
document = {}
if os.path.exists(path):
    with open(path) as f:
        document = yaml.safe_load(f) or {}
document.setdefault("clouds", {})["petrel"] = {
    "auth": {"auth_url": url + "/v3", "username": "admin", "password": password, "project_name": "admin",
             "user_domain_name": "Default", "project_domain_name": "Default"},
    "region_name": "RegionOne", "identity_api_version": 3, "interface": "public",
}
old = os.umask(0o077)
with open(path + ".tmp", "w") as f:
    yaml.safe_dump(document, f, default_flow_style=False, sort_keys=False)
os.umask(old)
os.replace(path + ".tmp", path)
PY
  log "clouds.yaml: cloud 'petrel' in $file"
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
    "$bin/petrel-controller" --config "$config" db-sync >&2 || die "db-sync failed"
    "$bin/petrel-controller" --config "$config" token-keys setup >&2 || die "token-keys setup failed"
    password_file=/etc/petrel/admin-password
    if [ ! -s "$password_file" ]; then
      (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$password_file")
    fi
    "$bin/petrel-controller" --config "$config" bootstrap --admin-password "$(cat "$password_file")" >&2 || die "bootstrap failed"
    venv=$(bash "$top/Packaging/openstack-client.sh") || die "cannot install the openstack client"
    start_one controller "$bin/petrel-controller"
    start_one node "$bin/petrel-node"
    listen=$(sed -n 's/^listen *= *//p' "$config" | head -1); port=${listen##*:}
    metrics=$(sed -n 's/^metrics_listen *= *//p' "$config" | head -1)
    wait_http controller "http://127.0.0.1:$port/healthcheck"
    wait_http node "http://$metrics/metrics"
    public_url=$(sed -n 's/^public_url *= *//p' "$config" | head -1)
    write_clouds_yaml "$venv" "${public_url:-http://127.0.0.1:$port}" "$(cat "$password_file")"
    log "petrel-controller: http://127.0.0.1:$port (metrics at /metrics)  log: $logs/controller.log"
    log "petrel-node:       http://$metrics/metrics  log: $logs/node.log"
    # The test guest as the public image petrel-tiny, once.
    guest=$(ls /var/cache/petrel/guest/petrel-tiny-*.qcow2 2>/dev/null | head -1)
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
    log "try: openstack --os-cloud petrel token issue"
    ;;
  stop)
    stop_one node
    stop_one controller
    ;;
  status)
    for name in controller node; do
      if running "$name"; then echo "$name: running (pid $(cat "$run/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
