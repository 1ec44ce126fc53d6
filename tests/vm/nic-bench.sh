#!/usr/bin/env bash
# The NIC benchmark: the userspace e1000/e1000e driver of examples/nic against Linux's own e1000
# and e1000e drivers, on the same emulated NICs, in one run of the emulated IOMMU host.
#
#   tests/vm/nic-bench.sh [options of `nic --bench`, e.g. --pair e1000e]
#
# The normal test VM ships no NIC drivers (every NIC is for vfio-pci). This script adds them for
# one run: it takes e1000, e1000e and pktgen (plus dependencies, by modprobe --show-depends) from
# the guest kernel's package, packs them as /uvfio/extra-modules in a cpio archive that runner.sh
# appends to the initrd (UVFIO_VM_INITRD_EXTRA), and init loads them before binding the devices.
# `nic --bench` then measures its own driver on each pair, hands the pair to the kernel driver
# through sysfs, measures again with pktgen and the interface counters, and gives the NICs back.
#
# Cached in the VM cache (tests/vm/lib.sh) under nic-bench-<kernel>/: the first run downloads
# Debian's kernel package again (as root, like provision.sh); later runs only build and boot.
# The full flavour (UVFIO_VM_FLAVOR=full) has the drivers built in and needs no archive.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$HERE/lib.sh"
CACHE=$(vm_cache_dir)
NIC_MODULES=(e1000 e1000e pktgen)

say() { echo "nic-bench: $*" >&2; }
die() {
    echo "nic-bench: error: $*" >&2
    exit 1
}

ENV_FILE=$("$HERE/provision.sh") || die "provisioning the VM failed (tests/vm/provision.sh)"
# shellcheck source=/dev/null
. "$ENV_FILE"
if [ "$UVFIO_VM_FLAVOR" = full ]; then
    # The NIC drivers are built in; the runner keeps them from loading unless told.
    UVFIO_VM_HOST_DRIVERS=1 exec "$HERE/cargo-vm" run --release --example nic -- --bench "$@"
fi
KDIR=$UVFIO_VM_KERNEL_DIR
KVER=$UVFIO_VM_KVER
OUT="$CACHE/nic-bench-$(basename "$KDIR" | sed 's/^kernel-//')"

# collect <root>: the NIC modules of <root>/lib/modules/$KVER and their dependencies, minus those
# the base initramfs loads already, decompressed into $tmp/stage/uvfio/extra-modules.
collect() {
    local root=$1 m deps line path name seen=" "
    while read -r name; do seen="$seen$name "; done <"$KDIR/modules.order"
    [ -e "$root/lib/modules/$KVER/modules.dep" ] || depmod -b "$root" "$KVER"
    mkdir -p "$tmp/stage/uvfio/extra-modules"
    : >"$tmp/stage/uvfio/extra-modules.order"
    for m in "${NIC_MODULES[@]}"; do
        deps=$(modprobe -d "$root" -S "$KVER" --show-depends "$m" 2>&1) ||
            die "modprobe --show-depends $m failed: $deps"
        while read -r line; do
            case $line in insmod\ *) ;; *) continue ;; esac # "builtin <name>": nothing to load
            path=$(echo "$line" | awk '{print $2}')
            name=$(basename "$path")
            name=${name%.xz} name=${name%.zst} name=${name%.gz}
            case $seen in *" $name "*) continue ;; esac
            seen="$seen$name "
            case $path in
            *.ko.xz) xz -dc "$path" ;;
            *.ko.zst) zstd -qdc "$path" ;;
            *.ko.gz) gzip -dc "$path" ;;
            *) cat "$path" ;;
            esac >"$tmp/stage/uvfio/extra-modules/$name"
            echo "$name" >>"$tmp/stage/uvfio/extra-modules.order"
        done <<<"$deps"
    done
}

if [ ! -e "$OUT/.done" ]; then
    tmp=$(mktemp -d "$CACHE/tmp-nic-bench.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    read -r kind pkg_ver <"$KDIR/source" || true
    case $kind in
    linux-image-*)
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            die "the NIC modules come from the kernel package $kind: run this once as root on Debian"
        fi
        say "fetching $kind $pkg_ver for its NIC modules (once)"
        (cd "$tmp" && apt-get -qq download "$kind=$pkg_ver" >&2) || die "apt-get download $kind=$pkg_ver failed"
        dpkg-deb -x "$tmp"/*.deb "$tmp/root"
        if [ ! -d "$tmp/root/lib/modules" ] && [ -d "$tmp/root/usr/lib/modules" ]; then
            ln -s usr/lib "$tmp/root/lib"
        fi
        collect "$tmp/root"
        ;;
    custom)
        if [ -n "${UVFIO_VM_MODULES:-}" ]; then
            mods=$(readlink -f "$UVFIO_VM_MODULES")
            mkdir -p "$tmp/root/lib/modules"
            cp -a "$mods" "$tmp/root/lib/modules/$KVER"
            collect "$tmp/root"
        else
            say "custom kernel without UVFIO_VM_MODULES: assuming ${NIC_MODULES[*]} are built in"
            mkdir -p "$tmp/stage/uvfio"
            : >"$tmp/stage/uvfio/extra-modules.order"
        fi
        ;;
    *) die "cannot tell where the kernel in $KDIR came from ($KDIR/source)" ;;
    esac
    (cd "$tmp/stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc -R 0:0 --quiet) >"$tmp/extra.cpio"
    mkdir -p "$tmp/out"
    mv "$tmp/extra.cpio" "$tmp/out/extra.cpio"
    cp "$tmp/stage/uvfio/extra-modules.order" "$tmp/out/modules.order"
    touch "$tmp/out/.done"
    rm -rf "$OUT"
    mv "$tmp/out" "$OUT"
    rm -rf "$tmp"
    trap - EXIT
    say "NIC modules ready: $(tr '\n' ' ' <"$OUT/modules.order")"
fi

export UVFIO_VM_INITRD_EXTRA="$OUT/extra.cpio${UVFIO_VM_INITRD_EXTRA:+:$UVFIO_VM_INITRD_EXTRA}"
exec "$HERE/cargo-vm" run --release --example nic -- --bench "$@"
