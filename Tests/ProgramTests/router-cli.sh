#!/usr/bin/env bash
# Routers and floating IPs through the unmodified `openstack` CLI, run by a node (services
# compute,network,l3) in namespace $HOST:
#   router-cli.sh setup       networks (public: flat on $TAG"x", the outside world's segment; two private), guests g1..g3, the outside
#   router-cli.sh api         routers, interfaces, gateways, extra routes, floating IPs: shapes and Neutron's errors (no node needed)
#   router-cli.sh snat        a router with a gateway: guests reach the outside through SNAT, not without; two subnets
#                             routed to each other; an interface removed; an extra route; metadata through the router
#   router-cli.sh floating    a floating IP: the outside reaches g1; moved to g2; disassociated; a port forwarding;
#                             security groups still apply
#   router-cli.sh while-down  (the node was killed -9) the floating IP moved meanwhile
#   router-cli.sh restarted   the restarted node: NAT rules and addresses exactly as desired, the move applied
#   router-cli.sh servers     server add/remove floating ip
#   router-cli.sh cleanup     the router deleted: no namespace, device or rule left
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), NODE, HOST, TAG, WORK.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${NODE:?}" "${HOST:?}" "${TAG:?}" "${WORK:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
contains() { grep "$@" >/dev/null; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
waitfor() { # waitfor SECONDS COMMAND...: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done
}
# within MILLISECONDS COMMAND...: the command succeeds within that time (tried every 20 ms); prints the time taken
within() {
  local limit=$1; shift
  local start; start=$(date +%s%3N)
  until "$@" >/dev/null 2>&1; do
    [ $(( $(date +%s%3N) - start )) -lt "$limit" ] || return 1
    sleep 0.02
  done
  echo $(( $(date +%s%3N) - start ))
}
# fetch WHO URL: the page namespace $TAG$WHO gets from URL
fetch() { ip netns exec "$TAG$1" curl -s --max-time 0.5 "$2"; }
fetches() { fetch "$1" "$2" | contains "$3"; }   # fetches WHO URL TEXT
refused() { ! fetches "$@"; }
pings() { ip netns exec "$TAG$1" ping -c 1 -W 0.3 "$2" >/dev/null 2>&1; }
silent() { ! pings "$@"; }
export -f fetch fetches refused pings silent contains
export TAG HOST
refuse() { # refuse PATTERN COMMAND...
  local pattern=$1; shift
  if "$@" >"$WORK/out" 2>&1; then fail "accepted: $*"; fi
  grep -qiE "$pattern" "$WORK/out" || fail "'$*' failed without '$pattern': $(cat "$WORK/out")"
}
ids() { cat "$WORK/ids"; }
# What the router's namespace holds, for a failure's message.
diagnose() {
  local r; r=$(cat "$WORK/router" 2>/dev/null) || return 0
  echo "--- qrouter-$r:"; ip -n "qrouter-$r" addr; ip -n "qrouter-$r" route
  ip netns exec "qrouter-$r" sysctl net.ipv4.ip_forward; ip netns exec "qrouter-$r" iptables-save -t nat
  echo "--- g1 → router: $(ip netns exec "${TAG}g1" ping -c 1 -W 0.5 198.18.91.1 >/dev/null 2>&1 && echo yes || echo no)"
  echo "--- g1 → outside: $(ip netns exec "${TAG}g1" ping -c 1 -W 0.5 198.18.90.1 >/dev/null 2>&1 && echo yes || echo no)"
  echo "--- router → outside: $(ip netns exec "qrouter-$r" ping -c 1 -W 0.5 198.18.90.1 >/dev/null 2>&1 && echo yes || echo no)"
  echo "--- bridges:"; ip -n "$HOST" -o link show | awk -F': ' '{print $2, $3}' | grep -E 'master|brq' | cut -c1-120
}

case "$1" in
  setup)
    # The outside world: a namespace on the external segment, answering with what it sees.
    ip netns add "${TAG}o" && ip link add "${TAG}x" type veth peer name eth0 netns "${TAG}o" && ip link set "${TAG}x" netns "$HOST" \
      && ip -n "${TAG}o" addr add 198.18.90.1/24 dev eth0 && ip -n "${TAG}o" link set eth0 up && ip -n "${TAG}o" link set lo up \
      && ip -n "$HOST" link set "${TAG}x" up || fail "the outside namespace"
    ip netns exec "${TAG}o" python3 -c '
import http.server
class Seen(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("seen from %s\n" % self.client_address[0]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), Seen).serve_forever()' </dev/null >/dev/null 2>&1 &
    echo $! > "$WORK/outside.pid"
    public=$(os network create --external --provider-network-type flat --provider-physical-network ext "public-$TAG" -f json | field id) \
      || fail "external network create"
    os subnet create --network "$public" --subnet-range 198.18.90.0/24 --gateway 198.18.90.1 \
      --allocation-pool start=198.18.90.10,end=198.18.90.99 --no-dhcp "pub-v4-$TAG" >/dev/null || fail "external subnet create"
    priv1=$(os network create "priv1-$TAG" -f json | field id) && priv2=$(os network create "priv2-$TAG" -f json | field id) || fail "networks"
    os subnet create --network "$priv1" --subnet-range 198.18.91.0/24 --no-dhcp "priv1-v4-$TAG" >/dev/null \
      && os subnet create --network "$priv2" --subnet-range 198.18.92.0/24 --no-dhcp "priv2-v4-$TAG" >/dev/null || fail "subnets"
    web=$(os security group create "web-$TAG" -f json | field id) || fail "security group"
    os security group rule create --protocol icmp "$web" >/dev/null && os security group rule create --protocol tcp --dst-port 80 "$web" >/dev/null \
      || fail "rules"
    echo "$public $priv1 $priv2 $web" > "$WORK/ids"
    for i in 1 2 3; do
      net=$priv1 prefix=198.18.91; [ $i = 3 ] && net=$priv2 prefix=198.18.92
      port=$(os port create --network "$net" --host "$NODE" --security-group "$web" --mac-address "fa:16:3e:91:00:0$i" \
        --fixed-ip ip-address=$prefix.1$i "g$i-$TAG" -f json | field id) || fail "port create g$i"
      echo "$port" > "$WORK/port$i"
      ip netns add "${TAG}g$i" || fail "netns g$i"
      ip link add "tap${port:0:11}" type veth peer name eth0 netns "${TAG}g$i" && ip link set "tap${port:0:11}" netns "$HOST" || fail "veth g$i"
      ip -n "${TAG}g$i" link set eth0 address "fa:16:3e:91:00:0$i" && ip -n "${TAG}g$i" addr add "$prefix.1$i/24" dev eth0 &&
        ip -n "${TAG}g$i" link set eth0 up && ip -n "${TAG}g$i" link set lo up && ip -n "${TAG}g$i" route add default via "$prefix.1" \
        || fail "g$i's address"
    done
    for i in 1 2; do
      mkdir -p "$WORK/g$i" && printf 'page of g%s\n' $i > "$WORK/g$i/index.html"
      ip netns exec "${TAG}g$i" busybox httpd -f -p 80 -h "$WORK/g$i" </dev/null >/dev/null 2>&1 &
      echo $! > "$WORK/httpd$i.pid"
    done
    ok "the outside namespace on the external segment, an external flat network, two private networks, three guests"
    ;;
  api)
    read -r public priv1 priv2 web < <(ids)
    net=$(os network create "api-net-$TAG" -f json | field id) || fail "network create"
    sub=$(os subnet create --network "$net" --subnet-range 198.18.94.0/24 --no-dhcp "api-v4-$TAG" -f json | field id) || fail "subnet create"
    os extension list --network -f value -c Alias | contains -x router || fail "the router extension is not listed"
    r=$(os router create "api-$TAG" -f json | field id) || fail "router create"
    os router show "$r" -f json > "$WORK/router.json" || fail "router show"
    python3 - "$WORK/router.json" <<'PY' || fail "router show: $(cat "$WORK/router.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "ACTIVE" and r["admin_state_up"] is True, r
assert r["external_gateway_info"] is None and r["routes"] == [] and r["ha"] is False and r["distributed"] is False, r
PY
    os router set --external-gateway "$public" "$r" || fail "router set --external-gateway"
    os router show "$r" -f json | python3 -c 'import json,sys; g=json.load(sys.stdin)["external_gateway_info"]; assert g["network_id"] == sys.argv[1] and g["enable_snat"] is True and g["external_fixed_ips"][0]["ip_address"].startswith("198.18.90."), g' "$public" \
      || fail "external_gateway_info: $(os router show "$r" -f json -c external_gateway_info)"
    os router add subnet "$r" "$sub" || fail "router add subnet"
    refuse "already has a port on subnet" os router add subnet "$r" "$sub"
    r2=$(os router create "api2-$TAG" -f json | field id) || fail "second router"
    refuse "already routed" os router add subnet "$r2" "$sub"
    refuse "still has ports" os router delete "$r"
    rport=$(os port list --router "$r" --network "$net" -f value -c ID)
    [ -n "$rport" ] || fail "port list --router shows no interface"
    [ "$(os port show "$rport" -f value -c device_owner)" = network:router_interface ] || fail "the interface's device_owner"
    os port show "$rport" -f json | contains '"198.18.94.1"' || fail "the interface does not hold the subnet's gateway address"
    refuse "cannot be deleted directly" os port delete "$rport"
    os router set --route destination=198.18.95.0/24,gateway=198.18.94.50 "$r" || fail "router set --route"
    os router show "$r" -f json | contains '198.18.95.0/24' || fail "the route is not shown"
    refuse "not connected" os router set --route destination=198.18.96.0/24,gateway=198.18.99.1 "$r"
    os router unset --route destination=198.18.95.0/24,gateway=198.18.94.50 "$r" || fail "router unset --route"
    refuse "not a valid external network" os floating ip create "$net"
    fip=$(os floating ip create --floating-ip-address 198.18.90.50 "$public" -f json | field id) || fail "floating ip create --floating-ip-address"
    refuse "already allocated" os floating ip create --floating-ip-address 198.18.90.50 "$public"
    os floating ip show "$fip" -f json | python3 -c 'import json,sys; f=json.load(sys.stdin); assert f["status"] == "DOWN" and f["port_id"] is None and f["router_id"] is None, f' \
      || fail "floating ip show: $(os floating ip show "$fip" -f json)"
    os quota show --network -f json > "$WORK/quota.json" 2>&1 || fail "quota show --network"
    python3 -c 'import json,sys; q={r["Resource"]: r["Limit"] for r in json.load(open(sys.argv[1]))}; assert q.get("routers") == 10 and q.get("floating_ips") == 50, q' "$WORK/quota.json" \
      || fail "quota show --network: $(cat "$WORK/quota.json")"
    os floating ip delete "$fip" && os router remove subnet "$r" "$sub" && os router unset --external-gateway "$r" \
      && os router delete "$r" "$r2" || fail "api cleanup"
    os subnet delete "$sub" && os network delete "$net" || fail "api network cleanup"
    ok "router create/show/set --external-gateway/add subnet/--route; 400 subnet routed twice, 409 router with interfaces, 400 floating IP of a non-external network, 409 address in use, 409 router port deleted directly; quotas"
    ;;
  snat)
    read -r public priv1 priv2 web < <(ids)
    waitfor 30 bash -c "$OSC --os-cloud petrel network agent list --host $NODE --agent-type l3 -f value -c Alive | grep -q True" \
      || fail "the node's L3 agent is not alive: $(os network agent list --host "$NODE" -f value 2>&1)"
    r=$(os router create "r-$TAG" -f json | field id) || fail "router create"
    echo "$r" >> "$WORK/routers"
    echo "$r" > "$WORK/router"
    os router set --external-gateway "$public" "$r" && os router add subnet "$r" "priv1-v4-$TAG" && os router add subnet "$r" "priv2-v4-$TAG" \
      || fail "gateway and interfaces"
    waitfor 20 ip netns exec "qrouter-$r" ip link show || fail "no namespace qrouter-$r"
    for i in 1 2 3; do
      net=$priv1; [ $i = 3 ] && net=$priv2
      port=$(cat "$WORK/port$i")
      waitfor 15 ip -n "$HOST" link show "brq${net:0:11}" || fail "the node did not wire brq${net:0:11}"
      ip -n "$HOST" link set "tap${port:0:11}" master "brq${net:0:11}" up || fail "tap g$i on the bridge"
    done
    gw=$(os router show "$r" -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["external_gateway_info"]["external_fixed_ips"][0]["ip_address"])')
    waitfor 15 fetches g1 http://198.18.90.1/ "seen from $gw" || fail "g1 does not reach the outside through SNAT as $gw: '$(fetch g1 http://198.18.90.1/)' $(diagnose)"
    ok "g1 fetches the outside's page; the outside sees the router's gateway address $gw"
    os router set --external-gateway "$public" --disable-snat "$r" || fail "--disable-snat"
    took=$(within 2000 refused g1 http://198.18.90.1/ "seen from") || fail "g1 still reaches the outside 2 s after --disable-snat"
    os router set --external-gateway "$public" --enable-snat "$r" || fail "--enable-snat"
    took2=$(within 2000 fetches g1 http://198.18.90.1/ "seen from $gw") || fail "g1 does not reach the outside 2 s after --enable-snat"
    ok "--disable-snat: the outside unreachable after ${took} ms; --enable-snat: reachable again after ${took2} ms"
    waitfor 5 pings g1 198.18.92.13 || fail "g1 cannot reach g3 on the other routed network"
    pings g3 198.18.91.11 || fail "g3 cannot reach g1"
    os router remove subnet "$r" "priv2-v4-$TAG" || fail "router remove subnet"
    took=$(within 2000 silent g1 198.18.92.13) || fail "g1 still reaches g3 2 s after the interface went"
    os router add subnet "$r" "priv2-v4-$TAG" || fail "router add subnet again"
    took2=$(within 3000 pings g1 198.18.92.13) || fail "g1 does not reach g3 after the interface came back"
    ok "two networks on one router reach each other; interface removed: cut after ${took} ms; added again: back after ${took2} ms"
    os router set --route destination=198.18.93.0/24,gateway=198.18.91.50 "$r" || fail "router set --route"
    waitfor 3 bash -c "ip -n qrouter-$r route | grep -q '198.18.93.0/24 via 198.18.91.50'" || fail "extra route not installed: $(ip -n "qrouter-$r" route)"
    os router unset --route destination=198.18.93.0/24,gateway=198.18.91.50 "$r" || fail "router unset --route"
    waitfor 3 bash -c "! ip -n qrouter-$r route | grep -q 198.18.93.0" || fail "extra route not removed"
    ok "an extra route installed in the router's namespace, then removed"
    code=$(ip netns exec "${TAG}g1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://169.254.169.254/openstack)
    [ "$code" = 404 ] || fail "metadata through the router: HTTP $code (the proxy answers 404 for an address no instance holds)"
    ok "metadata: 169.254.169.254 answered through the router (by the node's proxy) without a DHCP route"
    ;;
  floating)
    read -r public priv1 priv2 web < <(ids)
    r=$(cat "$WORK/router") port1=$(cat "$WORK/port1") port2=$(cat "$WORK/port2")
    fid=$(os floating ip create "$public" -f json | field id) || fail "floating ip create"
    f=$(os floating ip show "$fid" -f value -c floating_ip_address)
    echo "$fid $f" > "$WORK/fip"
    os floating ip set --port "$port1" "$fid" || fail "floating ip set --port"
    took=$(within 3000 fetches o "http://$f/" "page of g1") || fail "the outside does not reach g1 through $f"
    pings o "$f" || fail "the outside cannot ping $f"
    echo "figure: floating IP associate → outside fetches the guest's page: ${took} ms after the CLI returned"
    waitfor 5 bash -c "[ \"\$($OSC --os-cloud petrel floating ip show $fid -f value -c status)\" = ACTIVE ]" || fail "the floating IP is not ACTIVE"
    [ "$(os floating ip show "$fid" -f value -c router_id)" = "$r" ] || fail "router_id"
    ok "floating IP $f on g1: the outside pings it and fetches g1's page (${took} ms after the call), status ACTIVE"
    os floating ip set --port "$port2" "$fid" || fail "floating ip set --port (move)"
    took=$(within 1000 fetches o "http://$f/" "page of g2") || fail "the outside does not reach g2 within 1 s of the move"
    ok "moved to g2: answers switched within ${took} ms"
    os floating ip unset --port "$fid" || fail "floating ip unset --port"
    took=$(within 1000 refused o "http://$f/" "page of") || fail "the outside still reaches a guest 1 s after the disassociation"
    [ "$(os floating ip show "$fid" -f value -c status)" = DOWN ] || fail "a disassociated floating IP is not DOWN"
    ok "disassociated: no answer after ${took} ms, status DOWN"
    pf=$(os floating ip create "$public" -f json | field id) && pfa=$(os floating ip show "$pf" -f value -c floating_ip_address) || fail "second floating ip"
    echo "$pf $pfa" > "$WORK/pf"
    os floating ip port forwarding create --internal-ip-address 198.18.91.11 --port "$port1" --internal-protocol-port 80 \
      --external-protocol-port 8080 --protocol tcp "$pf" >/dev/null || fail "port forwarding create"
    took=$(within 3000 fetches o "http://$pfa:8080/" "page of g1") || fail "the outside does not reach g1 through $pfa:8080"
    refused o "http://$pfa/" "page of" || fail "port 80 of the forwarding floating IP answers"
    ok "port forwarding $pfa:8080 → g1:80 works (${took} ms), port 80 of that address does not"
    os floating ip set --port "$port1" "$fid" || fail "associate again"
    waitfor 3 fetches o "http://$f/" "page of g1" || fail "not associated again"
    rule=$(os security group rule list "$web" --protocol tcp -f value -c ID | head -1)
    os security group rule delete "$rule" || fail "rule delete"
    took=$(within 2000 refused o "http://$f/" "page of g1") || fail "the outside still fetches g1's page 2 s after the rule went"
    pings o "$f" || fail "ping (still allowed) stopped too"
    os security group rule create --protocol tcp --dst-port 80 "$web" >/dev/null || fail "rule create again"
    waitfor 3 fetches o "http://$f/" "page of g1" || fail "the rule back does not open g1 again"
    ok "security groups apply through the floating IP: TCP 80 rule removed → refused after ${took} ms, ping still passes; rule back → open"
    rules=$(ip netns exec "qrouter-$r" iptables-save -t nat | grep -c -- '-A petrel-')
    [ "$rules" = 6 ] || fail "NAT rules in the router: $rules, expected 6: $(ip netns exec "qrouter-$r" iptables-save -t nat)"
    ok "the router's NAT table: metadata redirect, DNAT+SNAT per floating IP, the forwarding, SNAT per subnet ($rules rules)"
    ;;
  while-down)
    read -r fid f < "$WORK/fip"
    os floating ip set --port "$(cat "$WORK/port2")" "$fid" || fail "move while the node is down"
    ok "while the node was down: the floating IP moved to g2"
    ;;
  restarted)
    read -r fid f < "$WORK/fip"
    read -r pf pfa < "$WORK/pf"
    r=$(cat "$WORK/router")
    took=$(within 30000 fetches o "http://$f/" "page of g2") || fail "the restarted node does not answer for $f with g2"
    fetches o "http://$pfa:8080/" "page of g1" || fail "the port forwarding no longer works"
    dups=$(ip netns exec "qrouter-$r" iptables-save -t nat | grep '^-A' | sort | uniq -d)
    [ -z "$dups" ] || fail "duplicated NAT rules after the restart: $dups"
    [ "$(ip netns exec "qrouter-$r" iptables-save -t nat | grep -c -- '-A petrel-')" = 6 ] || fail "NAT rules after the restart: $(ip netns exec "qrouter-$r" iptables-save -t nat)"
    [ "$(ip netns exec "qrouter-$r" iptables-save -t nat | grep -c -- '-j petrel-PREROUTING')" = 1 ] || fail "the jump into petrel-PREROUTING is not there once"
    gwdev=$(ip -n "qrouter-$r" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^qg-')
    addresses=$(ip -n "qrouter-$r" -4 -o addr show dev "$gwdev" | awk '{print $4}' | sort | tr '\n' ' ')
    [ "$(echo "$addresses" | wc -w)" = 3 ] && echo "$addresses" | contains "$f/32" && echo "$addresses" | contains "$pfa/32" \
      || fail "the gateway's addresses after the restart: $addresses"
    [ "$(ip -n "qrouter-$r" -o link show | grep -c '^[0-9]*: q[rg]-')" = 3 ] || fail "router devices after the restart: $(ip -n "qrouter-$r" -o link show)"
    ok "after kill -9 and restart: the move made while down is live after ${took} ms; NAT rules, addresses and devices exactly as desired, nothing duplicated"
    ;;
  servers)
    read -r public priv1 priv2 web < <(ids)
    truncate -s 1M "$WORK/disk.raw"
    os image create --file "$WORK/disk.raw" --disk-format raw --container-format bare "l3-img-$TAG" >/dev/null || fail "image create"
    os flavor create --vcpus 1 --ram 64 --disk 1 "l3-flavor-$TAG" >/dev/null || fail "flavor create"
    server=$(os server create --image "l3-img-$TAG" --flavor "l3-flavor-$TAG" --network "$priv1" --wait "l3-vm-$TAG" -f json | field id) \
      || fail "server create"
    fid=$(os floating ip create "$public" -f json | field id) && f=$(os floating ip show "$fid" -f value -c floating_ip_address) || fail "floating ip"
    os server add floating ip "$server" "$f" || fail "server add floating ip"
    sport=$(os port list --server "$server" -f value -c ID)
    [ "$(os floating ip show "$fid" -f value -c port_id)" = "$sport" ] || fail "the floating IP is not on the server's port"
    waitfor 10 bash -c "$OSC --os-cloud petrel server show $server -f json -c addresses | grep -q '$f'" || fail "server show does not list $f: $(os server show "$server" -c addresses)"
    os server remove floating ip "$server" "$f" || fail "server remove floating ip"
    [ "$(os floating ip show "$fid" -f value -c port_id)" = None ] || fail "the floating IP still has a port"
    os floating ip delete "$fid" && os server delete --wait "$server" || fail "server cleanup"
    os image delete "l3-img-$TAG" && os flavor delete "l3-flavor-$TAG" || fail "image/flavor delete"
    ok "server add floating ip puts it on the server's port (server show lists it); server remove floating ip takes it off"
    ;;
  cleanup)
    read -r public priv1 priv2 web < <(ids)
    read -r fid f < "$WORK/fip"
    read -r pf pfa < "$WORK/pf"
    r=$(cat "$WORK/router")
    rports=$(os port list --router "$r" -f value -c ID)
    os floating ip delete "$fid" "$pf" || fail "floating ip delete"
    os router remove subnet "$r" "priv1-v4-$TAG" && os router remove subnet "$r" "priv2-v4-$TAG" && os router unset --external-gateway "$r" \
      && os router delete "$r" || fail "router teardown"
    waitfor 10 bash -c "! ip netns list | grep -q qrouter-$r" || fail "the router's namespace is left"
    for p in $rports; do ! ip -n "$HOST" link show "tap${p:0:11}" >/dev/null 2>&1 || fail "router port device tap${p:0:11} left"; done
    for i in 1 2 3; do os port delete "$(cat "$WORK/port$i")" || fail "port delete"; done
    os subnet delete "priv1-v4-$TAG" "priv2-v4-$TAG" "pub-v4-$TAG" && os network delete "$priv1" "$priv2" "$public" || fail "network delete"
    os security group delete "$web" || fail "security group delete"
    ok "router deleted: no namespace, no device of its ports left"
    ;;
esac
echo "phase $1 passed"
