#!/usr/bin/env bash
# Installs the unmodified OpenStack command-line client (python-openstackclient, with
# openstacksdk and keystoneauth) from PyPI into a venv, once, and links `openstack` into
# /usr/local/bin. `make run` uses it so `openstack --os-cloud petrel …` works at once; the
# end-to-end tests drive it. Prints the venv's directory.
set -euo pipefail
venv=${PETREL_OSC_VENV:-/var/cache/petrel/osc-venv}
version=${PETREL_OSC_VERSION:-10.5.0}
if ! "$venv/bin/openstack" --version >/dev/null 2>&1 || [ "$(cat "$venv/.petrel-osc-version" 2>/dev/null)" != "$version" ]; then
  echo "openstack-client: installing python-openstackclient $version into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "python-openstackclient==$version" >&2
  echo "$version" > "$venv/.petrel-osc-version"
fi
# The Placement plugin (`openstack resource provider list`, `allocation candidate list`, …).
placement_version=${PETREL_OSC_PLACEMENT_VERSION:-4.9.1}
if [ "$("$venv/bin/pip" show osc-placement 2>/dev/null | sed -n 's/^Version: //p')" != "$placement_version" ]; then
  echo "openstack-client: installing osc-placement $placement_version into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "osc-placement==$placement_version" >&2
fi
ln -sf "$venv/bin/openstack" /usr/local/bin/openstack
echo "$venv"
