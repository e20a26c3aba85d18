# Petrel — the two commands (see README.md):
#   make run    set up this host and start an all-in-one cloud (controller + node)
#   make test   the whole test suite against the real services
#   make stop   stop what `make run` started
SHELL := /bin/bash
SWIFT ?= swift

.PHONY: run stop test layer-check build services guest-image openstack-client sample-config status bench-identity

services:
	@bash Packaging/host-services.sh

# One build of everything (programs and tests) so `swift test` never rebuilds.
build: services
	$(SWIFT) build --build-tests

guest-image: services
	@Packaging/guest-image/build.sh >/dev/null

# The unmodified OpenStack CLI from PyPI, for the end-to-end tests and `make run`.
openstack-client:
	@bash Packaging/openstack-client.sh >/dev/null

# Who may import whom (README, Layout): the check, and its proof that each rule can fail.
layer-check:
	@bash Packaging/layer-check.sh
	@set -o pipefail; bash Packaging/layer-check.sh --self-test | tail -1

test: layer-check build guest-image openstack-client
	@bash Packaging/test-leftovers.sh --sweep
	$(SWIFT) test --skip-build
	@bash Packaging/test-leftovers.sh

run: build guest-image
	@bash Packaging/all-in-one.sh start

stop:
	@bash Packaging/all-in-one.sh stop

status:
	@bash Packaging/all-in-one.sh status

sample-config: build
	.build/debug/petrel-controller sample-config > etc/petrel.conf.sample
	.build/debug/petrel-controller sample-policy > etc/policy.yaml.sample
