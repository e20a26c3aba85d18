#!/usr/bin/env bash
# Starts (or stops) an all-in-one Petrel on this host: petrel-controller and
# petrel-node from this checkout's build, against the host services that
# Packaging/host-services.sh runs. Used by `make run` / `make stop`.
#
# State:  /var/lib/petrel      Logs: /var/log/petrel/{controller,node}.log
# Config: /etc/petrel/petrel.conf (written once; edit it freely afterwards)
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
    start_one controller "$bin/petrel-controller"
    start_one node "$bin/petrel-node"
    listen=$(sed -n 's/^listen *= *//p' "$config" | head -1); port=${listen##*:}
    metrics=$(sed -n 's/^metrics_listen *= *//p' "$config" | head -1)
    wait_http controller "http://127.0.0.1:$port/healthcheck"
    wait_http node "http://$metrics/metrics"
    log "petrel-controller: http://127.0.0.1:$port (metrics at /metrics)  log: $logs/controller.log"
    log "petrel-node:       http://$metrics/metrics  log: $logs/node.log"
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
