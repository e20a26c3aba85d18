#!/usr/bin/env bash
# What the test suite creates and must remove: links and namespaces (pt*/petrel-test-*),
# iptables chains, libvirt domains, test clouds' directories, loop devices, LVM volume
# groups, PostgreSQL databases and RabbitMQ virtual hosts, queues and exchanges named
# petrel-test-*, tgtd targets exporting a test cloud's volumes (and their CHAP accounts), and
# libvirt's CHAP secrets (petrel-iscsi-*) no domain uses.
#
#   test-leftovers.sh --sweep   before the suite: removes what an earlier, interrupted run
#                               left (a killed `swift test` runs no cleanup), saying what
#   test-leftovers.sh           after the suite: fails if this run left anything behind
set -uo pipefail

links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^pt[0-9a-z]+$'; }
namespaces() { ip netns list | awk '{print $1}' | grep -E '^(petrel-test-|pt[0-9a-z]+$)'; }
chains() { (iptables-save; ip6tables-save) 2>/dev/null | grep -E '^:X?pt[0-9a-z]+-' | awk '{print substr($1, 2)}'; }
domains() { virsh -c qemu:///system list --all --name 2>/dev/null | grep '^petrel-test-'; }
server_domains() {
  for name in $(virsh -c qemu:///system list --all --name 2>/dev/null | grep '^petrel-'); do
    virsh -c qemu:///system dumpxml "$name" 2>/dev/null | grep -q 'petrel-test-cloud-' && echo "$name"
  done
}
clouds() { ls -d /tmp/petrel-test-cloud-* 2>/dev/null; }
loops() { losetup -a | grep 'petrel-lvm-'; }
groups() { vgs --noheadings -o vg_name 2>/dev/null | tr -d ' ' | grep '^petrel-test-'; }
databases() { su postgres -c "psql -qAtc 'SELECT datname FROM pg_database'" 2>/dev/null | grep '^petrel_test_'; }
vhosts() { rabbitmqctl -q list_vhosts name 2>/dev/null | grep '^petrel-test-'; }
tgt_targets() {
  tgtadm --lld iscsi --op show --mode target 2>/dev/null | awk '
    /^Target / { tid = $2; sub(":", "", tid); iqn = $3; if (iqn ~ /org\.petrel\.test:/) print tid }
    /Backing store path:/ && $4 ~ /petrel-test-cloud-/ { print tid }' | sort -u
}
tgt_accounts() { # accounts no target binds
  local bound
  bound=$(tgtadm --lld iscsi --op show --mode target 2>/dev/null | awk '/^    Account information:/ {a = 1; next} /^    [A-Z]/ {a = 0} a {print $1}')
  tgtadm --lld iscsi --op show --mode account 2>/dev/null | tail -n +2 | awk '{print $1}' | grep -E '^(petrel-|tgt-)' |
    while read -r user; do echo "$bound" | grep -qx "$user" || echo "$user"; done
}
iscsi_secrets() { # uuids of petrel-iscsi-* secrets no defined domain names
  local used
  used=$(for d in $(virsh -c qemu:///system list --all --name 2>/dev/null); do virsh -c qemu:///system dumpxml --inactive "$d" 2>/dev/null; done |
    grep -o "usage='petrel-iscsi-[^']*'" | cut -d"'" -f2 | sort -u)
  virsh -c qemu:///system secret-list 2>/dev/null | awk '$3 ~ /^petrel-iscsi-/ {print $1, $3}' |
    while read -r uuid usage; do echo "$used" | grep -qx "$usage" || echo "$uuid"; done
}
broker() { vhosts; rabbitmqctl -q list_queues name 2>/dev/null | grep '^petrel-test-'; rabbitmqctl -q list_exchanges name 2>/dev/null | grep '^petrel-test-'; }

if [ "${1:-}" = "--sweep" ]; then
  swept=()
  note() { [ -n "$2" ] && swept+=("$1: $(echo "$2" | tr '\n' ' ')"); }
  found=$(domains; server_domains)
  note "domains" "$found"
  for name in $found; do
    virsh -c qemu:///system destroy "$name" >/dev/null 2>&1
    virsh -c qemu:///system undefine --managed-save --nvram "$name" >/dev/null 2>&1 ||
      virsh -c qemu:///system undefine --managed-save "$name" >/dev/null 2>&1
  done
  found=$(namespaces)
  note "namespaces" "$found"
  for name in $found; do
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$name" 2>/dev/null
  done
  # DHCP namespaces whose dnsmasq served a test cloud (their configuration lies under it).
  for name in $(ip netns list | awk '{print $1}' | grep '^qdhcp-'); do
    owned=0
    for pid in $(ip netns pids "$name" 2>/dev/null); do
      tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'petrel-test-cloud-' && owned=1
    done
    if [ "$owned" = 1 ]; then
      note "dhcp namespaces" "$name"
      for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
      ip netns del "$name" 2>/dev/null
    fi
  done
  found=$(links)
  note "links" "$found"
  for name in $found; do ip link del "$name" 2>/dev/null; done
  found=$(chains)
  note "iptables" "$found"
  for tool in iptables ip6tables; do
    for table in filter nat mangle raw; do
      for chain in $($tool-save -t "$table" 2>/dev/null | grep -E '^:X?pt[0-9a-z]+-' | awk '{print substr($1, 2)}'); do
        $tool -t "$table" -F "$chain" 2>/dev/null
      done
      for chain in $($tool-save -t "$table" 2>/dev/null | grep -E '^:X?pt[0-9a-z]+-' | awk '{print substr($1, 2)}'); do
        # Jumps into the chain from others go first.
        $tool-save -t "$table" | grep -E "^-A .* -j $chain( |$)" | sed 's/^-A /-D /' |
          while read -r rule; do eval "$tool -t $table $rule" 2>/dev/null; done
        $tool -t "$table" -X "$chain" 2>/dev/null
      done
    done
  done
  found=$(tgt_targets)
  note "tgtd targets" "$found"
  for tid in $found; do tgtadm --lld iscsi --op delete --force --mode target --tid "$tid" >/dev/null 2>&1; done
  found=$(tgt_accounts)
  note "tgtd accounts" "$found"
  for user in $found; do tgtadm --lld iscsi --op delete --mode account --user "$user" >/dev/null 2>&1; done
  found=$(iscsi_secrets)
  note "libvirt secrets" "$found"
  for uuid in $found; do virsh -c qemu:///system secret-undefine "$uuid" >/dev/null 2>&1; done
  found=$(groups)
  note "volume groups" "$found"
  for name in $found; do vgremove -f "$name" >/dev/null 2>&1; done
  found=$(loops)
  note "loop devices" "$found"
  for device in $(echo "$found" | cut -d: -f1); do losetup -d "$device" 2>/dev/null; done
  found=$(databases)
  note "postgresql databases" "$found"
  for name in $found; do su postgres -c "dropdb --if-exists --force $name" >/dev/null 2>&1; done
  found=$(vhosts)
  note "rabbitmq" "$found"
  for name in $found; do rabbitmqctl -q delete_vhost "$name" >/dev/null 2>&1; done
  # Tests on the default vhost (RPCTests) name their queues petrel-test-…: the check reports
  # them too, so the sweep removes them as well (rabbitmqctl cannot delete exchanges).
  found=$(rabbitmqctl -q list_queues name 2>/dev/null | grep '^petrel-test-')
  note "rabbitmq queues" "$found"
  for name in $found; do rabbitmqctl -q delete_queue "$name" >/dev/null 2>&1; done
  found=$(clouds)
  note "test clouds" "$found"
  for name in $found; do rm -rf "$name"; done
  if ((${#swept[@]})); then
    echo "test-leftovers: removed what an interrupted earlier run left:"
    printf '  %s\n' "${swept[@]}"
  fi
  exit 0
fi

left=()
add() { [ -n "$2" ] && left+=("$1: $(echo "$2" | tr '\n' ' ')"); }
add "links" "$(links)"
add "namespaces" "$(namespaces)"
add "iptables" "$(chains)"
add "domains" "$(domains)"
add "server domains" "$(server_domains)"
add "test clouds" "$(clouds)"
add "loop devices" "$(loops)"
add "volume groups" "$(groups)"
add "postgresql databases" "$(databases)"
add "rabbitmq" "$(broker)"
add "tgtd targets" "$(tgt_targets)"
add "tgtd accounts" "$(tgt_accounts)"
add "libvirt secrets" "$(iscsi_secrets)"
if ((${#left[@]})); then
  echo "test-leftovers: the tests left these behind:" >&2
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
echo "test-leftovers: nothing left behind"
