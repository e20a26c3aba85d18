#!/usr/bin/env bash
# Petrel's layer check: who may import whom (../shared/DESIGN.md, "The layers, and who may know whom").
# The rules, the layer table and the allow-list of known rule-4 exceptions are in layer_check.py.
#   bash Packaging/layer-check.sh [ROOT]       check ROOT (default: this repository); exit 1 on a violation
#   bash Packaging/layer-check.sh --self-test  prove each rule can fail, on temporary copies of the tree
#   bash Packaging/layer-check.sh --markdown   print the layer table for README's Layout section
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/layer_check.py" "$@"
