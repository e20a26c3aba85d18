#!/usr/bin/env bash
# After the test suite: fails if anything the tests create was left behind — links and
# namespaces (pt*/petrel-test-*), iptables chains, libvirt domains, loop devices, LVM
# volume groups and RabbitMQ queues and exchanges named petrel-test-*.
set -uo pipefail
left=()
add() { [ -n "$2" ] && left+=("$1: $(echo "$2" | tr '\n' ' ')"); }
add "links" "$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^pt[0-9a-z]+$')"
add "namespaces" "$(ip netns list | awk '{print $1}' | grep -E '^(petrel-test-|pt[0-9a-z]+$)')"
add "iptables" "$( (iptables-save; ip6tables-save) 2>/dev/null | grep -E '^:X?pt[0-9a-z]+-' )"
add "domains" "$(virsh -c qemu:///system list --all --name 2>/dev/null | grep '^petrel-test-')"
add "server domains" "$(for name in $(virsh -c qemu:///system list --all --name 2>/dev/null | grep '^petrel-'); do
  virsh -c qemu:///system dumpxml "$name" 2>/dev/null | grep -q 'petrel-test-cloud-' && echo "$name"; done)"
add "test clouds" "$(ls -d /tmp/petrel-test-cloud-* 2>/dev/null)"
add "loop devices" "$(losetup -a | grep 'petrel-lvm-')"
add "volume groups" "$(vgs --noheadings -o vg_name 2>/dev/null | tr -d ' ' | grep '^petrel-test-')"
add "postgresql databases" "$(su postgres -c "psql -qAtc 'SELECT datname FROM pg_database'" 2>/dev/null | grep '^petrel_test_')"
add "rabbitmq" "$(rabbitmqctl -q list_vhosts name 2>/dev/null | grep '^petrel-test-'; rabbitmqctl -q list_queues name 2>/dev/null | grep '^petrel-test-'; rabbitmqctl -q list_exchanges name 2>/dev/null | grep '^petrel-test-')"
if ((${#left[@]})); then
  echo "test-leftovers: the tests left these behind:" >&2
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
echo "test-leftovers: nothing left behind"
