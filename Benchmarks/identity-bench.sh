#!/usr/bin/env bash
# Identity benchmark (issue 3): a release petrel-controller on a fresh SQLite database,
# bootstrapped with bcrypt cost 12, loaded by wrk at concurrency 1 and 8:
#   - password token issue (POST /v3/auth/tokens), against the bcrypt bound measured in the
#     same run with the system's C bcrypt (libxcrypt): one verification per request;
#   - token validation (GET /v3/auth/tokens with X-Subject-Token);
#   - GET /v3/auth/catalog;
# then the controller's RSS; then the same validations and catalog reads over HTTPS (a
# second controller with a certificate of a CA made for the run, TLS 1.2+, keep-alive: wrk
# opens its connections once), printed next to the plain-HTTP figures (target: ≥ 10,000
# validations/s at concurrency 8 over TLS). Prints req/s and p50/p99 for each, not a pass/fail.
#
#   Benchmarks/identity-bench.sh [path/to/petrel-controller]   (default: a release build)
#   DURATION=10 Benchmarks/identity-bench.sh
#   TLS=0 Benchmarks/identity-bench.sh                          (plain HTTP only)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
tls=${TLS:-1}
binary=${1:-}
if [ -z "$binary" ]; then
  for candidate in "$top/.build-release/release/petrel-controller" "$top/.build/release/petrel-controller"; do
    [ -x "$candidate" ] && binary=$candidate && break
  done
fi
if [ -z "$binary" ]; then
  "$top/Packaging/release-build.sh" petrel-controller
  binary=$top/.build-release/release/petrel-controller
fi
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ "$tls" = 0 ] || command -v openssl >/dev/null || { echo "openssl is missing (apt-get install openssl), or TLS=0" >&2; exit 1; }

work=$(mktemp -d /tmp/petrel-bench-identity.XXXXXX)
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
controller_pid=
cleanup() { [ -n "$controller_pid" ] && kill "$controller_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
. "$top/Benchmarks/controller.sh"
start_controller "$binary" "$work" "$port" "[identity]
password_hash_rounds = 12"
pid=$controller_pid

body='{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "bench-pw"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}'
# issue_token URL [CURL-ARGS…]: a project-scoped admin token.
issue_token() {
  local at=$1; shift
  curl -sf -D - -o /dev/null "$@" -H 'Content-Type: application/json' -d "$body" "$at/v3/auth/tokens" |
    sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p' | tr -d '\r'
}
token=$(issue_token "$url")
[ -n "$token" ] || { echo "cannot get a token: $(tail -5 "$work/controller.log")" >&2; exit 1; }
cat > "$work/issue.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

# run NAME CONNECTIONS wrk-args…: one wrk run, one result line.
run() {
  local name=$1 connections=$2; shift 2
  local threads=$(( connections < 2 ? 1 : 2 ))
  local out
  out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$@")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%-34s c=%-2s %10s req/s   p50 %9s   p99 %9s  %s\n' "$name" "$connections" "$rps" "$p50" "$p99" "$errors"
  echo "$rps" > "$work/last-rps"
  echo "$rps" > "$work/rps-$(tr -c 'a-zA-Z0-9\n' _ <<<"$name")-$connections"
}
rps_of() { cat "$work/rps-$(tr -c 'a-zA-Z0-9\n' _ <<<"$1")-$2" 2>/dev/null || echo 0; }

echo "petrel identity benchmark: $(basename "$binary") $( "$binary" --version ), ${duration}s per run, $(nproc) cores"
echo "reference: one bcrypt cost-12 verification in the system's C implementation (libxcrypt)"
bcrypt=$(python3 -W ignore -c '
import crypt, time
h = crypt.crypt("bench-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=4096))
t = time.perf_counter(); n = 5
for _ in range(n): crypt.crypt("bench-pw", h)
print((time.perf_counter() - t) / n)')
printf '  bcrypt cost 12: %.1f ms per verification → bound %.2f req/s at c=1, %.2f req/s with %s cores\n' \
  "$(python3 -c "print($bcrypt*1000)")" "$(python3 -c "print(1/$bcrypt)")" "$(python3 -c "print($(nproc)/$bcrypt)")" "$(nproc)"

for c in 1 8; do
  run "password token issue" "$c" -s "$work/issue.lua" "$url/v3/auth/tokens"
  bound=$(python3 -c "print(min($c, $(nproc)) / $bcrypt)")
  printf '  → %.0f %% of the bcrypt bound (%.2f req/s)\n' "$(python3 -c "print(100 * $(cat "$work/last-rps") / $bound)")" "$bound"
done
for c in 1 8; do
  run "token validation" "$c" -H "X-Auth-Token: $token" -H "X-Subject-Token: $token" "$url/v3/auth/tokens"
done
for c in 1 8; do
  run "GET /v3/auth/catalog" "$c" -H "X-Auth-Token: $token" "$url/v3/auth/catalog"
done
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
printf 'controller RSS after the run: %d MB (peak %d MB)\n' "$((rss / 1024))" "$((hwm / 1024))"
echo "Keystone reference (issue 3, same machine kind): validation ~180 req/s c=1, ~300 req/s c=8; issue ~4-8 req/s; ~285 MB"

[ "$tls" = 0 ] && exit 0
# Over HTTPS: the plain controller stops (the two cores are the TLS one's alone), a second one
# serves a certificate (EC P-256, as `make run` makes) of a CA made here, on a database of its own.
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
controller_pid=
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 2 -subj "/CN=identity-bench CA" \
  -keyout "$work/tls/ca-key.pem" -out "$work/tls/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/tls/key.pem" -out "$work/tls/request.pem" 2>/dev/null
printf 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' > "$work/tls/extensions"
openssl x509 -req -sha256 -days 2 -in "$work/tls/request.pem" -CA "$work/tls/ca.pem" -CAkey "$work/tls/ca-key.pem" \
  -set_serial 1 -extfile "$work/tls/extensions" -out "$work/tls/cert.pem" 2>/dev/null
tls_port=$((port == 39999 ? 20000 : port + 1))
tls_url=https://127.0.0.1:$tls_port
mkdir -p "$work/tls/controller"
start_controller "$binary" "$work/tls/controller" "$tls_port" "[identity]
password_hash_rounds = 12
[api]
tls_cert_file = $work/tls/cert.pem
tls_key_file = $work/tls/key.pem"
tls_pid=$controller_pid
tls_token=$(issue_token "$tls_url" --cacert "$work/tls/ca.pem")
[ -n "$tls_token" ] || { echo "cannot get a token over TLS: $(tail -5 "$work/tls/controller/controller.log")" >&2; exit 1; }
echo "over HTTPS ($(openssl s_client -connect "127.0.0.1:$tls_port" -CAfile "$work/tls/ca.pem" </dev/null 2>/dev/null |
  sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p' | head -1), keep-alive: each wrk connection shakes hands once)"
for c in 1 8; do
  run "token validation (TLS)" "$c" -H "X-Auth-Token: $tls_token" -H "X-Subject-Token: $tls_token" "$tls_url/v3/auth/tokens"
done
for c in 1 8; do
  run "GET /v3/auth/catalog (TLS)" "$c" -H "X-Auth-Token: $tls_token" "$tls_url/v3/auth/catalog"
done
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$tls_pid/status")
printf 'TLS controller RSS after the run: %d MB\n' "$((rss / 1024))"
echo "plain HTTP against HTTPS (req/s):"
for what in "token validation" "GET /v3/auth/catalog"; do
  for c in 1 8; do
    plain=$(rps_of "$what" "$c") secure=$(rps_of "$what (TLS)" "$c")
    printf '  %-24s c=%-2s %10s plain  %10s TLS  (%s %%)\n' "$what" "$c" "$plain" "$secure" \
      "$(python3 -c "print(round(100 * $secure / $plain) if $plain else '-')")"
  done
done
validations=$(rps_of "token validation (TLS)" 8)
printf 'target: ≥ 10,000 token validations/s at c=8 over TLS: %s (%s req/s)\n' \
  "$(python3 -c "print('met' if $validations >= 10000 else 'NOT met')")" "$validations"
