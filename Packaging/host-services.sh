#!/usr/bin/env bash
# Petrel host services: installs the Debian packages Petrel builds and runs with
# (only those missing; `apt-get update` at most once) and starts the services a
# hypervisor host needs — libvirtd + virtlogd, RabbitMQ, ovsdb-server +
# ovs-vswitchd, PostgreSQL, tgtd (iSCSI exports of volumes) — waiting until each one answers.
# Re-running it when everything is up is a quick no-op.
#
#   Packaging/host-services.sh            install + start everything
#   Packaging/host-services.sh install    packages only
#   Packaging/host-services.sh start      services only
#   Packaging/host-services.sh status     print what answers and what does not
set -euo pipefail

log() { printf 'host-services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts system daemons)"

PACKAGES=(
  # building Petrel: C libraries through pkg-config
  pkg-config libvirt-dev libnl-3-dev libnl-route-3-dev librabbitmq-dev liblvm2-dev libmnl-dev libcrypt-dev
  # hypervisor
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  # messaging, database
  rabbitmq-server postgresql
  # networking
  iproute2 iptables dnsmasq-base openvswitch-switch
  # security groups: ipset sets for remote groups and address groups; conntrack to inspect and clear flows
  ipset conntrack
  # the DHCP driver's tests: a guest-side DHCP client (udhcpc)
  busybox-static
  # dhcp_release: the DHCP driver frees leases of ports that went away (as Neutron does)
  dnsmasq-utils
  # block storage; tgt: volumes exported over iSCSI to guests on other hosts, which QEMU's own
  # initiator (qemu-block-extra's block-iscsi module) reaches
  lvm2 tgt qemu-block-extra
  # test guest image (genisoimage: config drives)
  extlinux syslinux-common cpio e2fsprogs fdisk kmod genisoimage
  # benchmarks and end-to-end tests
  wrk curl python3-venv iputils-ping openssh-client
  # make run's CA and server certificate, and the TLS test's
  openssl
  # the two-host network test: node B reaches the broker on loopback through a socat relay
  socat
  # noVNC's page and files, which the controller's console proxy serves ([console] web), and
  # the browser the end-to-end test opens a console URL in
  novnc chromium
)

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  log "installing:" $missing
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting daemons themselves: this script starts
  # them, in the foreground's control, with or without systemd.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1
  fi
  local stamp=/var/lib/apt/periodic/petrel-update-stamp
  if [ ! -e "$stamp" ] || ! apt-get install -y -qq --no-install-recommends $missing >/tmp/petrel-apt.log 2>&1; then
    apt-get update -qq
    mkdir -p "$(dirname "$stamp")"; touch "$stamp"
    apt-get install -y -qq --no-install-recommends $missing >/tmp/petrel-apt.log 2>&1 \
      || { [ $created_policy = 1 ] && rm -f "$policy"; tail -30 /tmp/petrel-apt.log >&2; die "apt-get install failed"; }
  fi
  [ $created_policy = 1 ] && rm -f "$policy"
  missing=$(missing_packages)
  [ -z "$missing" ] || die "still missing after install: $missing"
}

wait_for() { # wait_for SECONDS NAME COMMAND...
  local secs=$1 name=$2; shift 2
  local i
  for ((i = 0; i < secs * 5; i++)); do
    if ( "$@" ) >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$name did not answer within ${secs}s"
}

libvirt_up() { virsh -c qemu:///system version >/dev/null 2>&1; }
start_libvirt() {
  # What Debian's udev rule does on a real host (group kvm, mode 0660). Without udev,
  # /dev/kvm stays root-only: libvirt then probes QEMU with KVM but finds it unusable
  # for the qemu user, throws its capability cache away, and re-probes QEMU (~30 s)
  # on every define and start.
  if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
  if ! pgrep -x virtlogd >/dev/null; then virtlogd -d; fi
  if ! libvirt_up; then
    pgrep -x libvirtd >/dev/null || libvirtd -d
    wait_for 30 libvirtd libvirt_up
    log "libvirtd up"
  fi
}

rabbit_up() { rabbitmqctl -q status >/dev/null 2>&1; }
start_rabbitmq() {
  rabbit_up && return 0
  if ! pgrep -f 'beam.*rabbit' >/dev/null; then
    mkdir -p /var/log/rabbitmq /var/lib/rabbitmq
    chown -R rabbitmq:rabbitmq /var/log/rabbitmq /var/lib/rabbitmq 2>/dev/null || true
    # rabbitmq-server drops privileges to the rabbitmq user itself.
    (setsid rabbitmq-server >>/var/log/rabbitmq/petrel-startup.log 2>&1 &)
  fi
  timeout 120 rabbitmqctl -q await_startup >/dev/null 2>&1 || wait_for 60 rabbitmq rabbit_up
  log "rabbitmq up"
}

ovs_up() { ovs-vsctl --timeout=2 show >/dev/null 2>&1 && pgrep -x ovs-vswitchd >/dev/null; }
start_ovs() {
  ovs_up && return 0
  mkdir -p /var/run/openvswitch /var/log/openvswitch /etc/openvswitch
  local db=/etc/openvswitch/conf.db
  [ -s "$db" ] || ovsdb-tool create "$db" /usr/share/openvswitch/vswitch.ovsschema
  if ! pgrep -x ovsdb-server >/dev/null; then
    ovsdb-server "$db" --remote=punix:/var/run/openvswitch/db.sock \
      --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
      --pidfile=/var/run/openvswitch/ovsdb-server.pid --detach \
      --log-file=/var/log/openvswitch/ovsdb-server.log
  fi
  wait_for 20 ovsdb-server ovs-vsctl --timeout=2 show
  ovs-vsctl --no-wait init
  if ! pgrep -x ovs-vswitchd >/dev/null; then
    ovs-vswitchd unix:/var/run/openvswitch/db.sock --pidfile=/var/run/openvswitch/ovs-vswitchd.pid \
      --detach --log-file=/var/log/openvswitch/ovs-vswitchd.log
  fi
  wait_for 20 ovs-vswitchd ovs_up
  log "openvswitch up"
}

pg_up() { su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1; }
# The suite runs many controllers and test databases at once (each controller pools several
# connections per event loop): PostgreSQL's default of 100 connections runs out.
pg_max_connections=400
start_postgres() {
  local ver
  ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
  [ -n "$ver" ] || die "postgresql is not installed"
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then pg_createcluster "$ver" main >/dev/null; fi
  if [ "$(pg_conftool -s "$ver" main show max_connections 2>/dev/null)" != "$pg_max_connections" ]; then
    pg_conftool "$ver" main set max_connections "$pg_max_connections"
    # A running server reads it only at start.
    if pg_up; then pg_ctlcluster "$ver" main restart 2>/dev/null || true; fi
  fi
  pg_up && return 0
  pg_ctlcluster "$ver" main start 2>/dev/null || true
  wait_for 30 postgresql pg_up
  log "postgresql up"
}

# The role Petrel's tests (and a development controller) use: it may create databases.
ensure_postgres_role() {
  su postgres -c "psql -qAtc \"SELECT 1 FROM pg_roles WHERE rolname = 'petrel'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE petrel LOGIN PASSWORD 'petrel' CREATEDB\"" >/dev/null
}

# tgtd's portal: loopback unless the operator says otherwise (a multi-host cloud sets its
# storage address, which volume backends name as target_ip_address).
TGT_PORTAL=${PETREL_ISCSI_PORTAL:-127.0.0.1:3260}
tgt_up() { tgtadm --lld iscsi --op show --mode sys >/dev/null 2>&1; }
start_tgt() {
  tgt_up && return 0
  # tgtd daemonizes itself; its targets live in memory (petrel-node exports them again).
  tgtd --iscsi "portal=$TGT_PORTAL"
  wait_for 20 tgtd tgt_up
  log "tgtd up on $TGT_PORTAL"
}

status() {
  local rc=0
  libvirt_up && echo "libvirtd: up" || { echo "libvirtd: down"; rc=1; }
  rabbit_up && echo "rabbitmq: up" || { echo "rabbitmq: down"; rc=1; }
  ovs_up && echo "openvswitch: up" || { echo "openvswitch: down"; rc=1; }
  pg_up && echo "postgresql: up" || { echo "postgresql: down"; rc=1; }
  tgt_up && echo "tgtd: up" || { echo "tgtd: down"; rc=1; }
  return $rc
}

start_all() {
  # Kernel pieces the network drivers use; absent modules are not fatal here
  # (the driver tests say precisely what is missing).
  modprobe -q br_netfilter 2>/dev/null || true
  start_libvirt
  start_rabbitmq
  start_ovs
  start_postgres
  ensure_postgres_role
  start_tgt
}

case "${1:-all}" in
  install) install_packages ;;
  start) start_all ;;
  status) status ;;
  all) install_packages; start_all ;;
  *) die "unknown command '$1' (install | start | status | all)" ;;
esac
