#!/usr/bin/env bash
# Builds the programs the way they ship: release, the Swift runtime and Foundation linked in
# statically (a host needs no Swift toolchain; the process maps only the runtime pages it
# uses), linked by lld with packed relative relocations (DT_RELR: the loader's relocation
# table is ~25 KB instead of ~3 MB, read at every start) and no exported symbols.
# petrel-node is optimised for size (-Osize): a node's memory is the budget that matters
# (RSS 45.2 → 43.7 MB at start, 48.2 → 46.6 MB with 50 ports), while the controller keeps -O
# for throughput. (The two flag sets share one scratch path, so building both rebuilds it twice.)
# Binaries land in .build-release/release/.
#
#   Packaging/release-build.sh                      both programs
#   Packaging/release-build.sh petrel-node          one
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(petrel-controller petrel-node)
for product in "${products[@]}"; do
  size=()
  [ "$product" = petrel-node ] && size=(-Xswiftc -Osize)
  echo "building $product (release${size:+, -Osize}, static Swift runtime, lld)…" >&2
  (cd "$top" && swift build -c release --product "$product" --scratch-path .build-release \
    --static-swift-stdlib -Xswiftc -use-ld=lld "${size[@]}" \
    -Xlinker -z -Xlinker pack-relative-relocs \
    -Xlinker --version-script="$top/Packaging/exports.map" >&2)
done
