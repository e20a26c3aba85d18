# Sourced by the benchmarks: a controller of their own on a fresh SQLite database, with
# the admin password bench-pw.
#
#   start_controller BINARY WORK PORT [EXTRA-CONFIG]
# writes WORK/controller.conf (EXTRA-CONFIG appended: more sections, or more keys of the same
# sections), sets up the database, keys and bootstrap, starts `serve` with its log in
# WORK/controller.log, sets controller_pid and returns once /healthcheck answers; if the
# controller never answers the benchmark stops with the end of its log. An EXTRA-CONFIG that
# sets [api] tls_cert_file makes it an https:// controller (public URL and health check).
start_controller() {
  local binary=$1 work=$2 port=$3 extra=${4:-} scheme=http
  case "$extra" in *tls_cert_file*) scheme=https ;; esac
  cat > "$work/controller.conf" <<CONF
[DEFAULT]
log_format = text
[database]
connection = sqlite:///$work/petrel.db
[api]
listen = 127.0.0.1:$port
public_url = $scheme://127.0.0.1:$port
[token]
key_repository = $work/keys
$extra
CONF
  "$binary" --config "$work/controller.conf" db-sync >/dev/null
  "$binary" --config "$work/controller.conf" token-keys setup >/dev/null
  "$binary" --config "$work/controller.conf" bootstrap --admin-password bench-pw >/dev/null
  "$binary" --config "$work/controller.conf" serve >"$work/controller.log" 2>&1 &
  controller_pid=$!
  local attempt
  for attempt in $(seq 100); do
    curl -sfk -o /dev/null "$scheme://127.0.0.1:$port/healthcheck" && return 0
    kill -0 "$controller_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the controller did not answer on port $port: $(tail -5 "$work/controller.log")" >&2
  exit 1
}
