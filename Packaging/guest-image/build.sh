#!/usr/bin/env bash
# Builds Petrel's test guest: a tiny bootable qcow2 disk made only from Debian packages
# (no download from the internet). Kernel from linux-image-cloud-amd64, a busybox-static
# initramfs with the virtio modules, extlinux on an ext4 partition. The guest's init
# (./init) reads a config drive when one is attached, does DHCP, fetches the metadata, runs
# `#!/bin/sh` user data, prints markers on the serial console, answers pings and serves its
# host name over HTTP on port 80.
#
# Prints the image's path. The image is cached under $PETREL_CACHE_DIR (default
# /var/cache/petrel) and rebuilt only when its inputs (these files, the package versions)
# change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PETREL_CACHE_DIR:-/var/cache/petrel}/guest
log() { printf 'guest-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (loop mounts)"
for tool in apt-get dpkg-deb depmod cpio sfdisk mkfs.ext4 extlinux qemu-img losetup; do
  command -v "$tool" >/dev/null || die "$tool is missing: run Packaging/host-services.sh"
done

kernel_package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kernel_package" ] || { apt-get update -qq; kernel_package=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
[ -n "$kernel_package" ] || die "cannot resolve linux-image-cloud-amd64"
versions="$kernel_package=$(apt-cache policy "$kernel_package" | awk '/Candidate:/ {print $2}') busybox-static=$(apt-cache policy busybox-static | awk '/Candidate:/ {print $2}')"
key=$( { cat "$here/build.sh" "$here/init" "$here/udhcpc.script"; echo "$versions"; } | sha256sum | cut -c1-16)
image="$cache/petrel-tiny-$key.qcow2"
if [ -s "$image" ]; then echo "$image"; exit 0; fi

mkdir -p "$cache"
work=$(mktemp -d /tmp/petrel-guest.XXXXXX)
mnt="$work/mnt"
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [ -n "${loop:-}" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
log "building from $versions"

cd "$work"
apt-get download -qq "$kernel_package" busybox-static >/dev/null 2>&1 \
  || { apt-get update -qq; apt-get download -qq "$kernel_package" busybox-static >/dev/null; }
mkdir kernel busybox
dpkg-deb -x ./linux-image-*.deb kernel
dpkg-deb -x ./busybox-static_*.deb busybox
vmlinuz=$(ls kernel/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
moddir="kernel/lib/modules/$kver"
# The package leaves modules.dep to depmod at install time.
[ -s "$moddir/modules.dep" ] || depmod -b "$work/kernel" "$kver"

# initramfs: busybox with every applet, the virtio modules in load order, init.
root="$work/root"
mkdir -p "$root"/{bin,proc,sys,dev,etc,tmp,lib/modules,www}
cp busybox/bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# isofs: the config drive (an ISO 9660 disk labelled config-2).
wanted="virtio_pci virtio_net virtio_blk virtio_console net_failover failover isofs"
ordered=()
add_module() { # depth-first: dependencies before the module
  local name=$1 path deps dep
  path=$(awk -F: -v n="$name" '{ f=$1; sub(/.*\//, "", f); sub(/\.ko(\.[a-z]+)?$/, "", f); gsub(/-/, "_", f); if (f == n) { print $1; exit } }' "$moddir/modules.dep")
  [ -n "$path" ] || return 0   # built into the kernel
  for existing in "${ordered[@]:-}"; do [ "$existing" = "$path" ] && return 0; done
  deps=$(awk -F: -v p="$path" '$1 == p { print $2 }' "$moddir/modules.dep")
  for dep in $deps; do
    dep=${dep##*/}; dep=${dep%%.ko*}; add_module "${dep//-/_}"
  done
  ordered+=("$path")
}
for module in $wanted; do add_module "$module"; done
: > "$root/etc/modules"
for path in "${ordered[@]}"; do
  file=${path##*/}
  case "$file" in
    *.ko) cp "$moddir/$path" "$root/lib/modules/$file" ;;
    *.ko.xz) xz -dc "$moddir/$path" > "$root/lib/modules/${file%.xz}"; file=${file%.xz} ;;
    *.ko.zst) zstd -qdc "$moddir/$path" > "$root/lib/modules/${file%.zst}"; file=${file%.zst} ;;
  esac
  echo "$file" >> "$root/etc/modules"
done
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/udhcpc.script" "$root/etc/udhcpc.script"
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/initrd.img"

# Disk: an MBR with one bootable ext4 partition from 1 MiB, extlinux installed in it.
size_mib=48
truncate -s "${size_mib}M" disk.raw
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q disk.raw
truncate -s "$((size_mib - 1))M" part.raw
mkfs.ext4 -q -F -L petrel-root -O ^64bit,^metadata_csum,^has_journal part.raw
mkdir -p "$mnt"
loop=$(losetup --find --show part.raw)
mount "$loop" "$mnt"
mkdir -p "$mnt/boot/extlinux"
cp "$vmlinuz" "$mnt/boot/vmlinuz"
cp initrd.img "$mnt/boot/initrd.img"
cat > "$mnt/boot/extlinux/extlinux.conf" <<CONF
DEFAULT petrel
PROMPT 0
TIMEOUT 1
LABEL petrel
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND console=ttyS0,115200 quiet panic=-1
CONF
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1
umount "$mnt"
losetup -d "$loop"; loop=
dd if=part.raw of=disk.raw bs=1M seek=1 conv=notrunc status=none
dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.raw bs=440 count=1 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 disk.raw "$work/out.qcow2"
mv "$work/out.qcow2" "$image"
# Older builds are of no further use.
find "$cache" -maxdepth 1 -name 'petrel-tiny-*.qcow2' ! -name "${image##*/}" -delete
log "built $image ($(du -h "$image" | cut -f1))"
echo "$image"
