#!/usr/bin/env bash
# Builds the programs the way they ship: release, the Swift runtime and Foundation linked in
# statically (a host needs no Swift toolchain; the process maps only the runtime pages it
# uses), linked by lld with packed relative relocations (DT_RELR: the loader's relocation
# table is ~25 KB instead of ~3 MB, read at every start) and no exported symbols.
# Binaries land in .build-release/release/.
#
#   Packaging/release-build.sh                      both programs
#   Packaging/release-build.sh petrel-node          one
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(petrel-controller petrel-node)
for product in "${products[@]}"; do
  echo "building $product (release, static Swift runtime, lld)…" >&2
  (cd "$top" && swift build -c release --product "$product" --scratch-path .build-release \
    --static-swift-stdlib -Xswiftc -use-ld=lld \
    -Xlinker -z -Xlinker pack-relative-relocs \
    -Xlinker --version-script="$top/Packaging/exports.map" >&2)
done
