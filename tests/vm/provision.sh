#!/usr/bin/env bash
# Provision the emulated IOMMU host used by tests/vm/runner.sh.
#
# Everything is cached under <crate root>/target/vm:
#   kernel-<key>/vmlinuz            the guest kernel
#   kernel-<key>/modules/*.ko       vfio-pci and its dependencies, decompressed
#   kernel-<key>/modules.order      insmod order, computed with modprobe --show-depends
#   kernel-<key>/modules.wanted     GUEST_MODULES they were computed for (a change refreshes them)
#   initramfs-<key>-<hash>.cpio.gz  busybox + tests/vm/init + those modules
#   current.env                     what runner.sh boots (sourced by it)
# <key> is the Debian kernel package and version (or a hash of UVFIO_VM_KERNEL), <hash> covers
# tests/vm/init, this script and the modules, so editing the init script rebuilds the initramfs.
# A warm run downloads and rebuilds nothing and prints nothing.
#
# Kernel source, in order:
#   1. UVFIO_VM_KERNEL=<bzImage/vmlinuz> (+ UVFIO_VM_MODULES=<.../lib/modules/<kver>>, which may be
#      omitted when vfio-pci, vfio_iommu_type1 and intel-iommu are built in);
#   2. on Debian as root: apt-get installs qemu-system-x86 busybox-static cpio kmod if missing, and
#      `apt-get download`s the kernel that bookworm's linux-image-amd64 metapackage depends on;
#   3. otherwise a Debian kernel provisioned earlier into the cache (e.g. by root).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE=$(cd "$HERE/../.." && pwd)
CACHE="$CRATE/target/vm"
INIT="$HERE/init"
# Modules the guest needs; their dependencies are added by modprobe --show-depends.
# vfio_iommu_type1 is only a soft dependency of vfio, so it is listed explicitly. i6300esb is the
# host driver of the watchdog that makes one test group non-viable (see runner.sh).
GUEST_MODULES=(vfio-pci vfio_iommu_type1 i6300esb)
DEBIAN_PACKAGES=(qemu-system-x86 busybox-static cpio kmod)

say() { echo "provision: $*" >&2; }
die() {
    echo "provision: error: $*" >&2
    exit 1
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.provision.lock"
flock 9

is_debian_root() {
    [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null &&
        command -v dpkg-deb >/dev/null
}

apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }

apt_update() {
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get -qq update >&2 || die "apt-get update failed"
}

install_debian_packages() {
    local missing=() p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_lists_present || apt_update
    say "apt-get install ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get -qq -y install "${missing[@]}" >&2; then
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get -qq -y install "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed"
    fi
}

# Prints "<package> <version>" of the kernel linux-image-amd64 currently depends on.
resolve_debian_kernel() {
    local pkg="" ver=""
    apt_lists_present || apt_update
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n1) || true
    if [ -z "$pkg" ]; then
        apt_update
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n1) || true
    fi
    [ -n "$pkg" ] || die "cannot resolve the kernel package from linux-image-amd64 (apt-cache depends linux-image-amd64)"
    ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then die "no installable version of $pkg"; fi
    echo "$pkg $ver"
}

# collect_modules <root> <kver> <outdir>: <root>/lib/modules/<kver> holds the kernel's modules.
# Writes <outdir>/modules/*.ko (decompressed) and <outdir>/modules.order.
collect_modules() {
    local root=$1 kver=$2 out=$3 m line path name seen=" "
    local moddir="$root/lib/modules/$kver"
    [ -d "$moddir" ] || die "no module directory $moddir"
    if ! command -v modprobe >/dev/null || ! command -v depmod >/dev/null; then
        die "modprobe/depmod (kmod) are needed to compute the module order"
    fi
    if [ ! -e "$moddir/modules.dep" ]; then
        depmod -b "$root" "$kver" || die "depmod -b $root $kver failed"
    fi
    mkdir -p "$out/modules"
    : >"$out/modules.order"
    for m in "${GUEST_MODULES[@]}"; do
        local deps
        deps=$(modprobe -d "$root" -S "$kver" --show-depends "$m" 2>&1) ||
            die "modprobe -d $root -S $kver --show-depends $m failed: $deps"
        while read -r line; do
            case $line in
            insmod\ *) ;;
            *) continue ;; # "builtin <name>": nothing to load
            esac
            path=$(echo "$line" | awk '{print $2}')
            name=$(basename "$path")
            name=${name%.xz} name=${name%.zst} name=${name%.gz}
            case $seen in *" $name "*) continue ;; esac
            seen="$seen$name "
            case $path in
            *.ko.xz) xz -dc "$path" >"$out/modules/$name" ;;
            *.ko.zst) zstd -qdc "$path" >"$out/modules/$name" ;;
            *.ko.gz) gzip -dc "$path" >"$out/modules/$name" ;;
            *.ko) cp "$path" "$out/modules/$name" ;;
            *) die "unexpected module file $path" ;;
            esac
            echo "$name" >>"$out/modules.order"
        done <<<"$deps"
    done
    echo "${GUEST_MODULES[*]}" >"$out/modules.wanted"
}

# Whether the modules cached in <kdir> were collected for the current GUEST_MODULES.
modules_current() {
    [ -r "$1/modules.wanted" ] && [ "$(cat "$1/modules.wanted")" = "${GUEST_MODULES[*]}" ]
}

# install_kdir <new> <kdir>: moves a freshly provisioned kernel directory into place. An existing
# one is updated file by file, vmlinuz last and by rename, so a runner booting it meanwhile
# always finds a complete file.
install_kdir() {
    local new=$1 kdir=$2 f
    if [ ! -e "$kdir/.done" ]; then
        rm -rf "$kdir"
        mv "$new" "$kdir"
        return 0
    fi
    rm -rf "$kdir/modules"
    mv "$new/modules" "$kdir/modules"
    for f in modules.order modules.wanted source vmlinuz; do
        mv -f "$new/$f" "$kdir/$f"
    done
    rm -rf "$new"
}

# Debian kernel: download, extract, keep vmlinuz + the vfio modules. Sets KDIR and KVER.
provision_debian_kernel() {
    local pkg ver tmp deb img stamp s
    # apt-cache takes seconds; redo the resolution only when the apt lists changed.
    stamp=$(stat -c '%n %Y %s' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha256sum | cut -c1-16)
    if [ -r "$CACHE/debian-kernel.resolved" ] &&
        read -r s pkg ver <"$CACHE/debian-kernel.resolved" && [ "$s" = "$stamp" ] &&
        [ -n "$ver" ]; then
        :
    else
        read -r pkg ver < <(resolve_debian_kernel)
        stamp=$(stat -c '%n %Y %s' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha256sum | cut -c1-16)
        echo "$stamp $pkg $ver" >"$CACHE/debian-kernel.resolved"
    fi
    KVER=${pkg#linux-image-}
    KDIR="$CACHE/kernel-${pkg}_${ver}"
    if [ -e "$KDIR/.done" ]; then
        modules_current "$KDIR" && return 0
        say "guest modules changed to: ${GUEST_MODULES[*]}"
    fi
    say "fetching $pkg $ver"
    tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
    (cd "$tmp" && apt-get -qq download "$pkg=$ver" >&2) || die "apt-get download $pkg=$ver failed"
    deb=$(echo "$tmp"/*.deb)
    [ -f "$deb" ] || die "apt-get download produced no .deb in $tmp"
    say "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$tmp/root"
    # usr-merged packages (trixie+) ship usr/lib/modules; modprobe -d looks in <root>/lib/modules.
    if [ ! -d "$tmp/root/lib/modules" ] && [ -d "$tmp/root/usr/lib/modules" ]; then
        ln -s usr/lib "$tmp/root/lib"
    fi
    img="$tmp/root/boot/vmlinuz-$KVER"
    [ -f "$img" ] || die "$deb has no boot/vmlinuz-$KVER"
    mkdir -p "$tmp/out"
    cp "$img" "$tmp/out/vmlinuz"
    collect_modules "$tmp/root" "$KVER" "$tmp/out"
    echo "$pkg $ver" >"$tmp/out/source"
    touch "$tmp/out/.done"
    install_kdir "$tmp/out" "$KDIR"
    rm -rf "$tmp"
    say "kernel $KVER ready, modules: $(tr '\n' ' ' <"$KDIR/modules.order")"
}

# UVFIO_VM_KERNEL (+ UVFIO_VM_MODULES). Sets KDIR and KVER.
provision_custom_kernel() {
    local kernel=$UVFIO_VM_KERNEL mods=${UVFIO_VM_MODULES:-} key tmp
    [ -f "$kernel" ] || die "UVFIO_VM_KERNEL=$kernel is not a file"
    kernel=$(readlink -f "$kernel")
    key=$( (sha256sum "$kernel" | cut -c1-64 && echo "$mods" && echo "${GUEST_MODULES[*]}" &&
        if [ -n "$mods" ]; then stat -c '%Y %s' "$mods/modules.dep" 2>/dev/null || true; fi) |
        sha256sum | cut -c1-16)
    KDIR="$CACHE/kernel-custom-$key"
    KVER=${mods:+$(basename "$mods")}
    KVER=${KVER:-custom}
    [ -e "$KDIR/.done" ] && return 0
    tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
    mkdir -p "$tmp/out/modules"
    cp "$kernel" "$tmp/out/vmlinuz"
    : >"$tmp/out/modules.order"
    if [ -n "$mods" ]; then
        [ -d "$mods" ] || die "UVFIO_VM_MODULES=$mods is not a directory (want .../lib/modules/<kver>)"
        mods=$(readlink -f "$mods")
        local root
        if [ -e "$mods/modules.dep" ] && [ "$(basename "$(dirname "$mods")")" = modules ] &&
            [ "$(basename "$(dirname "$(dirname "$mods")")")" = lib ]; then
            root=$(dirname "$(dirname "$(dirname "$mods")")")
        else # not laid out as <root>/lib/modules/<kver>, or no modules.dep yet: work on a copy
            root="$tmp/root"
            mkdir -p "$root/lib/modules"
            cp -a "$mods" "$root/lib/modules/$KVER"
        fi
        collect_modules "$root" "$KVER" "$tmp/out"
    else
        say "UVFIO_VM_MODULES not set: assuming ${GUEST_MODULES[*]} are built into $kernel"
        echo "${GUEST_MODULES[*]}" >"$tmp/out/modules.wanted"
    fi
    echo "custom $kernel ${mods:-}" >"$tmp/out/source"
    touch "$tmp/out/.done"
    rm -rf "$KDIR"
    mv "$tmp/out" "$KDIR"
    rm -rf "$tmp"
}

find_busybox() {
    local bb
    bb=$(command -v busybox || true)
    [ -n "$bb" ] || return 1
    # It must run in the guest without any libraries.
    if ldd "$bb" >/dev/null 2>&1; then
        return 1
    fi
    echo "$bb"
}

check_host_tools() {
    local missing=() t
    for t in qemu-system-x86_64 cpio gzip sha256sum; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    find_busybox >/dev/null || missing+=("a statically linked busybox (Debian: busybox-static)")
    [ ${#missing[@]} -eq 0 ] && return 0
    die "missing on this host: ${missing[*]}"
}

build_initramfs() {
    local bb hash out tmp stage applet pad
    bb=$(find_busybox)
    hash=$( (cat "$INIT" "${BASH_SOURCE[0]}" "$KDIR/modules.order" &&
        find "$bb" "$KDIR/modules" -type f -exec sha256sum {} + | cut -c1-64) | sha256sum | cut -c1-16)
    out="$CACHE/initramfs-$(basename "$KDIR" | sed 's/^kernel-//')-$hash.cpio.gz"
    INITRD=$out
    [ -f "$out" ] && return 0
    say "building base initramfs $(basename "$out")"
    tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
    stage="$tmp/root"
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,test,uvfio/modules}
    cp "$bb" "$stage/bin/busybox"
    for applet in $("$bb" --list-full); do
        [ -e "$stage/$applet" ] || [ -L "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
    done
    cp "$INIT" "$stage/init"
    chmod 0755 "$stage/init"
    cp "$KDIR/modules.order" "$stage/uvfio/modules.order"
    if compgen -G "$KDIR/modules/*.ko" >/dev/null; then
        cp "$KDIR"/modules/*.ko "$stage/uvfio/modules/"
    fi
    # The kernel opens /dev/console for init before devtmpfs is mounted; without root we cannot
    # mknod, and init re-opens the console after mounting devtmpfs instead.
    if [ "$(id -u)" = 0 ]; then
        mknod -m 600 "$stage/dev/console" c 5 1
        mknod -m 666 "$stage/dev/null" c 1 3
    fi
    (cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc -R 0:0 --quiet) | gzip -9n >"$tmp/initramfs.cpio.gz"
    # runner.sh appends an uncompressed cpio; the kernel wants each archive 4-byte aligned.
    pad=$(((4 - $(stat -c %s "$tmp/initramfs.cpio.gz") % 4) % 4))
    head -c "$pad" /dev/zero >>"$tmp/initramfs.cpio.gz"
    rm -f "$CACHE/initramfs-$(basename "$KDIR" | sed 's/^kernel-//')"-*.cpio.gz
    mv "$tmp/initramfs.cpio.gz" "$out"
    rm -rf "$tmp"
}

write_env() {
    local new="$CACHE/current.env.$$"
    {
        printf 'UVFIO_VM_KVER=%q\n' "$KVER"
        printf 'UVFIO_VM_KERNEL_IMAGE=%q\n' "$KDIR/vmlinuz"
        printf 'UVFIO_VM_INITRD=%q\n' "$INITRD"
    } >"$new"
    if cmp -s "$new" "$CACHE/current.env"; then rm -f "$new"; else mv "$new" "$CACHE/current.env"; fi
}

rm -rf "$CACHE"/tmp.* # leftovers of an interrupted run (we hold the lock)

KDIR="" KVER="" INITRD=""
if [ -n "${UVFIO_VM_KERNEL:-}" ]; then
    check_host_tools
    provision_custom_kernel
elif is_debian_root; then
    install_debian_packages
    check_host_tools
    provision_debian_kernel
else
    # Not Debian/root: reuse a Debian kernel provisioned earlier, if any.
    KDIR=$(find "$CACHE" -maxdepth 2 -path "$CACHE/kernel-linux-image-*/.done" -printf '%T@ %h\n' 2>/dev/null |
        sort -n | tail -n1 | cut -d' ' -f2-) || true
    if [ -z "$KDIR" ]; then
        die "cannot provision a guest kernel here (not Debian, or not root). Set
  UVFIO_VM_KERNEL=<path to a bzImage/vmlinuz for x86_64 with INTEL_IOMMU and IRQ_REMAP>
  UVFIO_VM_MODULES=<its lib/modules/<kver> directory> (omit if VFIO, VFIO_PCI and
                    VFIO_IOMMU_TYPE1 are built in)
and install: qemu-system-x86_64, a statically linked busybox, cpio, gzip, kmod (modprobe/depmod)"
    fi
    check_host_tools
    KVER=$(sed -n 's/^linux-image-\([^ ]*\) .*/\1/p' "$KDIR/source")
    if ! modules_current "$KDIR"; then
        say "warning: the cached kernel $KDIR has modules for" \
            "'$(cat "$KDIR/modules.wanted" 2>/dev/null || echo vfio-pci vfio_iommu_type1)'," \
            "not '${GUEST_MODULES[*]}': run tests/vm/provision.sh once as root on Debian to" \
            "refresh them (until then the guest reports the drivers it misses)"
    fi
fi
build_initramfs
write_env
