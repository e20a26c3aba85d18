#!/usr/bin/env bash
# Security groups through the unmodified `openstack` CLI, enforced by a node in namespace $HOST:
#   security-group-cli.sh api         groups and rules of every kind, address groups, Neutron's errors (no node needed)
#   security-group-cli.sh traffic     guests (namespaces on taps in $HOST) reach each other as their groups say; rule
#                                     and membership changes live within 1 s; anti-spoofing, allowed pairs, port security off
#   security-group-cli.sh while-down  (the node was killed -9) a port deleted and a rule added meanwhile
#   security-group-cli.sh restarted   the restarted node's firewall is exactly the desired one: chains, sets, traffic
#   security-group-cli.sh servers     server create --security-group, server add/remove security group
#   security-group-cli.sh cleanup
# Needs OSC, OS_CLIENT_CONFIG_FILE (cloud `petrel`, admin), NODE, HOST, TAG, WORK.
set -uo pipefail
: "${OSC:?}" "${OS_CLIENT_CONFIG_FILE:?}" "${NODE:?}" "${HOST:?}" "${TAG:?}" "${WORK:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
# contains ARGS...: grep that reads all its input (with pipefail, grep -q would fail the writer)
contains() { grep "$@" >/dev/null; }
ok() { echo "ok - $*"; }
os() { "$OSC" --os-cloud petrel "$@"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
waitfor() { # waitfor SECONDS COMMAND...: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done
}
# within MILLISECONDS COMMAND...: the command succeeds within that time (tried every 50 ms)
within() {
  local limit=$1; shift
  local start; start=$(date +%s%3N)
  until "$@" >/dev/null 2>&1; do
    [ $(( $(date +%s%3N) - start )) -lt "$limit" ] || return 1
    sleep 0.05
  done
  echo $(( $(date +%s%3N) - start ))
}
pings() { ip netns exec "$TAG$1" ping -c 1 -W 0.3 "$2" >/dev/null 2>&1; }
silent() { ! pings "$@"; }
fetches() { ip netns exec "$TAG$1" curl -s --max-time 0.3 "http://$2/" | contains page; }
refused() { ! fetches "$@"; }
saved() { ip netns exec "$HOST" iptables-save -t filter; }
export -f pings silent fetches refused saved contains
export TAG HOST
refuse() { # refuse PATTERN COMMAND...
  local pattern=$1; shift
  if "$@" >"$WORK/out" 2>&1; then fail "accepted: $*"; fi
  grep -qiE "$pattern" "$WORK/out" || fail "'$*' failed without '$pattern': $(cat "$WORK/out")"
}

case "$1" in
  api)
    sg=$(os security group create "api-$TAG" --description "for the API checks" -f json | field id) || fail "security group create"
    os security group list -f value -c Name | contains -x default || fail "no default group listed: $(os security group list -f value 2>&1)"
    os security group list -f value -c Name | contains -x "api-$TAG" || fail "the new group is not listed"
    [ "$(os security group show "$sg" -f json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["rules"]))')" = 2 ] \
      || fail "a new group has not its two egress rules"
    os security group set --name "api2-$TAG" --description changed "$sg" || fail "security group set"
    [ "$(os security group show "$sg" -f value -c name)" = "api2-$TAG" ] || fail "the name did not change"
    os security group rule create --protocol tcp --dst-port 80:81 --remote-ip 198.18.86.0/24 "$sg" >/dev/null || fail "rule: tcp range from a CIDR"
    os security group rule create --protocol icmp --icmp-type 8 --icmp-code 0 "$sg" >/dev/null || fail "rule: icmp type and code"
    os security group rule create --egress --protocol udp --dst-port 53 --remote-ip 198.18.86.53/32 "$sg" >/dev/null || fail "rule: udp egress"
    os security group rule create --protocol 112 "$sg" >/dev/null || fail "rule: a protocol by number"
    os security group rule create --ethertype IPv6 --protocol ipv6-icmp "$sg" >/dev/null || fail "rule: IPv6 ICMP"
    os security group rule create --remote-group "$sg" "$sg" >/dev/null || fail "rule: remote group"
    ag=$(os address group create --address 198.18.87.0/24 --address 198.18.88.7 "ag-$TAG" -f json | field id) || fail "address group create"
    os address group show "$ag" -f json | contains '198.18.88.7/32' || fail "the address group's addresses are not in CIDR form"
    os security group rule create --protocol tcp --dst-port 22 --remote-address-group "$ag" "$sg" >/dev/null || fail "rule: remote address group"
    [ "$(os security group rule list "$sg" -f value | wc -l)" = 9 ] || fail "rules: $(os security group rule list "$sg" -f value)"
    refuse "already exists" os security group rule create --protocol 6 --dst-port 80:81 --remote-ip 198.18.86.0/24 "$sg"
    refuse "Invalid value for ICMP type" os security group rule create --protocol icmp --icmp-type 300 "$sg"
    refuse "Conflicting value ethertype IPv6" os security group rule create --ethertype IPv6 --remote-ip 198.18.86.0/24 "$sg"
    refuse "not supported" os security group rule create --protocol nonsense "$sg"
    refuse "in use" os address group delete "$ag"
    ok "security group create/list/show/set; rules of every kind (ranges, ICMP type/code, egress, by number, IPv6, remote group, address group); duplicates 409, invalid 400"
    net=$(os network create "api-net-$TAG" -f json | field id) || fail "network create"
    os subnet create --network "$net" --subnet-range 198.18.86.0/24 --no-dhcp "api-v4-$TAG" >/dev/null || fail "subnet create"
    port=$(os port create --network "$net" --security-group "$sg" "api-port-$TAG" -f json | field id) || fail "port create --security-group"
    plain=$(os port create --network "$net" "api-plain-$TAG" -f json | field id) || fail "port create"
    default=$(os security group list -f json | python3 -c 'import json,sys; print([g["ID"] for g in json.load(sys.stdin) if g["Name"] == "default"][0])')
    os port show "$plain" -f json | contains "$default" || fail "a new port is not in the project's default group"
    refuse "in use" os security group delete "$sg"
    os port set --no-security-group --disable-port-security "$plain" || fail "port set --no-security-group --disable-port-security"
    [ "$(os port show "$plain" -f value -c port_security_enabled)" = False ] || fail "port security still on"
    os port delete "$port" "$plain" && os subnet delete "api-v4-$TAG" && os network delete "$net" || fail "cleanup of the API network"
    rule=$(os security group rule list "$sg" --protocol icmp -f value -c ID | head -1)
    os security group rule delete "$rule" || fail "rule delete"
    os security group delete "$sg" || fail "security group delete"
    os address group delete "$ag" || fail "address group delete"
    os quota show --network -f json > "$WORK/quota.json" 2>&1 || fail "quota show --network: $(cat "$WORK/quota.json")"
    python3 -c 'import json,sys; q={r["Resource"]: r["Limit"] for r in json.load(open(sys.argv[1]))}; assert q.get("security_groups") == 10 and q.get("security_group_rules") == 100, q' "$WORK/quota.json" \
      || fail "quota show --network: $(cat "$WORK/quota.json")"
    ok "ports: --security-group, the default group, an in-use group refused, port security off; rule and group delete; quotas"
    ;;
  traffic)
    waitfor 30 bash -c "$OSC --os-cloud petrel network agent list --host $NODE -f value -c Alive | grep -q True" || fail "the node's agents are not alive"
    net=$(os network create "sg-net-$TAG" -f json | field id) || fail "network create"
    os subnet create --network "$net" --subnet-range 198.18.84.0/24 --no-dhcp "sg-v4-$TAG" >/dev/null || fail "subnet create"
    web=$(os security group create "web-$TAG" -f json | field id) && other=$(os security group create "other-$TAG" -f json | field id) || fail "groups"
    os security group rule create --remote-group "$web" "$web" >/dev/null || fail "rule: web from web"
    echo "$net $web $other" > "$WORK/ids"
    bridge="brq${net:0:11}"
    for i in 1 2 3; do
      group=$web; [ $i = 3 ] && group=$other
      port=$(os port create --network "$net" --host "$NODE" --security-group "$group" --mac-address "fa:16:3e:84:00:0$i" \
        --fixed-ip ip-address=198.18.84.1$i "g$i-$TAG" -f json | field id) || fail "port create g$i"
      echo "$port" > "$WORK/port$i"
      ip netns add "${TAG}g$i" || fail "netns g$i"
      ip link add "tap${port:0:11}" type veth peer name eth0 netns "${TAG}g$i" && ip link set "tap${port:0:11}" netns "$HOST" || fail "veth g$i"
      ip -n "${TAG}g$i" link set eth0 address "fa:16:3e:84:00:0$i" && ip -n "${TAG}g$i" addr add "198.18.84.1$i/24" dev eth0 &&
        ip -n "${TAG}g$i" link set eth0 up && ip -n "${TAG}g$i" link set lo up || fail "g$i's address"
    done
    waitfor 15 ip -n "$HOST" link show "$bridge" || fail "the node did not wire $bridge"
    for i in 1 2 3; do port=$(cat "$WORK/port$i"); ip -n "$HOST" link set "tap${port:0:11}" master "$bridge" up || fail "tap g$i on the bridge"; done
    printf 'page of g1\n' > "$WORK/index.html"
    ip netns exec "${TAG}g1" busybox httpd -f -p 80 -h "$WORK" </dev/null >/dev/null 2>&1 &
    echo $! > "$WORK/httpd.pid"
    waitfor 10 pings g2 198.18.84.11 || fail "g2 cannot reach g1 (both in web)"
    silent g3 198.18.84.11 || fail "g3 (in other) reaches g1"
    refused g3 198.18.84.11 || fail "g3 fetches g1's page without a rule"
    ok "one group: g2 reaches g1; g3 in another group cannot"
    rule=$(os security group rule create --protocol tcp --dst-port 80 --remote-ip 198.18.84.13/32 "$web" -f json | field id) || fail "rule create"
    took=$(within 1000 fetches g3 198.18.84.11) || fail "g3 cannot fetch g1's page 1 s after the rule"
    silent g3 198.18.84.11 || fail "the TCP rule let ping through"
    os security group rule delete "$rule" || fail "rule delete"
    took2=$(within 1000 refused g3 198.18.84.11) || fail "g3 still fetches 1 s after the rule went"
    ok "a TCP 80 rule from g3's address: page fetched after ${took} ms, ping still dropped; rule deleted: refused after ${took2} ms"
    port3=$(cat "$WORK/port3")
    os port set --security-group "$web" "$port3" || fail "port set --security-group"
    took=$(within 1000 pings g3 198.18.84.11) || fail "g3 does not reach g1 1 s after joining web"
    os port unset --security-group "$web" "$port3" || fail "port unset --security-group"
    took2=$(within 1000 silent g3 198.18.84.11) || fail "g3 still reaches g1 1 s after leaving web"
    ok "remote group: g3 joins web and reaches g1 after ${took} ms; leaves, shut out after ${took2} ms"
    port2=$(cat "$WORK/port2")
    ip -n "${TAG}g2" addr add 198.18.84.99/24 dev eth0
    ! ip netns exec "${TAG}g2" ping -c 1 -W 0.5 -I 198.18.84.99 198.18.84.11 >/dev/null 2>&1 || fail "g2 sends from an address not its own"
    os port set --allowed-address ip-address=198.18.84.99 "$port2" || fail "port set --allowed-address"
    waitfor 3 ip netns exec "${TAG}g2" ping -c 1 -W 0.3 -I 198.18.84.99 198.18.84.11 || fail "the allowed pair does not let g2 send"
    ok "anti-spoofing: g2 cannot send from 198.18.84.99 until it is an allowed address pair"
    silent g1 198.18.84.13 || fail "g1 reaches g3 (other)"
    os port set --no-security-group --disable-port-security "$port3" || fail "--disable-port-security"
    waitfor 3 pings g1 198.18.84.13 || fail "port security off: g3 still closed"
    ! saved | contains "petrel-sg-i${port3:0:11}" || fail "g3 still has a chain"
    ok "port security off: g3 takes everything, no chain of its own"
    ;;
  while-down)
    read -r net web other < "$WORK/ids"
    os port delete "$(cat "$WORK/port2")" || fail "port delete while the node is down"
    os security group rule create --protocol tcp --dst-port 8080 --remote-ip 198.18.84.0/24 "$web" >/dev/null || fail "rule create while down"
    ok "while the node was down: g2's port deleted, a rule added"
    ;;
  restarted)
    read -r net web other < "$WORK/ids"
    port1=$(cat "$WORK/port1") port2=$(cat "$WORK/port2") port3=$(cat "$WORK/port3")
    waitfor 30 bash -c "saved | grep -q -- '--dport 8080'" || fail "the restarted node has not the new rule"
    chains=$(saved | grep -o '^:petrel-sg-[^ ]*' | sort | tr '\n' ' ')
    expected=":petrel-sg-fwd :petrel-sg-gi${web:0:11} :petrel-sg-i${port1:0:11} :petrel-sg-o${port1:0:11} :petrel-sg-s${port1:0:11} "
    [ "$chains" = "$expected" ] || fail "chains after the restart: '$chains', expected '$expected'"
    sets=$(ip netns exec "$HOST" ipset list -n | grep '^psg' | tr '\n' ' ')
    [ "$sets" = "psg4g${web:0:26} " ] || fail "sets after the restart: '$sets'"
    members=$(ip netns exec "$HOST" ipset list "psg4g${web:0:26}" | sed -n '/^Members:/,$p' | tail -n +2 | sort | tr '\n' ' ')
    [ "$members" = "198.18.84.11 " ] || fail "web's members after the restart: '$members'"
    silent g2 198.18.84.11 || fail "g2 (port deleted while the node was down) still reaches g1"
    pings g1 198.18.84.13 || fail "g3 (port security off) no longer reachable"
    ok "after kill -9 and restart: chains and sets exactly the desired ones (g2's gone, the new rule in), traffic as before"
    ;;
  servers)
    read -r net web other < "$WORK/ids"
    truncate -s 1M "$WORK/disk.raw"
    os image create --file "$WORK/disk.raw" --disk-format raw --container-format bare "sg-img-$TAG" >/dev/null || fail "image create"
    os flavor create --vcpus 1 --ram 64 --disk 1 "sg-flavor-$TAG" >/dev/null || fail "flavor create"
    os server create --image "sg-img-$TAG" --flavor "sg-flavor-$TAG" --network "$net" --security-group "$web" --security-group "other-$TAG" \
      --wait "sg-vm-$TAG" -f json > "$WORK/server.json" || fail "server create --security-group: $(cat "$WORK/server.json")"
    server=$(field id < "$WORK/server.json")
    groups() {
      local port; port=$(os port list --server "$server" -f value -c ID)
      os port show "$port" -f json | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["security_group_ids"])))'
    }
    [ "$(groups)" = "$(printf '%s\n' "$web" "$other" | sort | tr '\n' ' ' | sed 's/ $//')" ] || fail "the server's port groups: $(groups)"
    os server show "$server" -f json | python3 -c 'import json,sys; s=json.load(sys.stdin); names=sorted(g["name"] for g in s["security_groups"]); assert names == sorted(["web-'"$TAG"'", "other-'"$TAG"'"]), names' \
      || fail "server show security_groups: $(os server show "$server" -f json -c security_groups)"
    os server remove security group "$server" "other-$TAG" || fail "server remove security group"
    [ "$(groups)" = "$web" ] || fail "after remove: $(groups)"
    os server add security group "$server" default || fail "server add security group"
    groups | contains "$web" && [ "$(groups | wc -w)" = 2 ] || fail "after add: $(groups)"
    refuse "not found" os server add security group "$server" "nosuch-$TAG"
    os server delete --wait "$server" || fail "server delete"
    os image delete "sg-img-$TAG" && os flavor delete "sg-flavor-$TAG" || fail "image/flavor delete"
    ok "server create --security-group (two), server show lists them, server remove/add security group, an unknown group refused"
    ;;
  cleanup)
    read -r net web other < "$WORK/ids"
    kill "$(cat "$WORK/httpd.pid")" 2>/dev/null
    for i in 1 3; do os port delete "$(cat "$WORK/port$i")" || fail "port delete"; done
    os subnet delete "sg-v4-$TAG" && os network delete "$net" || fail "network delete"
    os security group delete "$web" "$other" || fail "security group delete"
    waitfor 10 bash -c "! saved | grep -q petrel-sg" || fail "chains left: $(saved | grep petrel-sg)"
    ! ip netns exec "$HOST" ipset list -n | contains '^psg' || fail "sets left: $(ip netns exec "$HOST" ipset list -n)"
    ok "all ports gone: no Petrel chain or set left on the node"
    ;;
esac
echo "phase $1 passed"
