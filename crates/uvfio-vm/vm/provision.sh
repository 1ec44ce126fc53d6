#!/usr/bin/env bash
# Provision the emulated IOMMU host used by tests/vm/runner.sh, for one kernel flavour.
#
#   tests/vm/provision.sh     prints the path of the flavour's env file (sourced by runner.sh)
#
# Everything lives in the per-user cache (tests/vm/lib.sh: $UVFIO_VM_CACHE, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/uvfio/vm), keyed by what it was made from:
#   kernel-debian-<pkg>_<ver>/      Debian's kernel: vmlinuz, modules/*.ko (vfio-pci and its
#                                   dependencies, decompressed), modules.order (insmod order, from
#                                   modprobe --show-depends), modules.wanted, source
#   kernel-full-<ver>-<hash>/       the project's kernel from linux-source-6.12 <ver>, built with
#                                   tests/vm/kernel/ (<hash> covers the fragment and build script):
#                                   vmlinuz, config, release, headers/ (its uapi headers), build.log
#   kernel-custom-<hash>/           UVFIO_VM_KERNEL (+ UVFIO_VM_MODULES)
#   debs/                           downloaded packages (linux-source-6.12, kept for rebuilds)
#   initramfs-<kernel dir>-<hash>.cpio.gz   busybox + tests/vm/init + that kernel's modules
#   env/<flavour>.env               what runner.sh boots for that flavour
# Concurrent runs are safe: each flavour is provisioned under its own lock, and everything is
# made in a temporary directory and renamed into place. A warm run downloads and builds nothing
# and prints nothing but the env file's path.
#
# Flavours (UVFIO_VM_FLAVOR, see tests/vm/README.md):
#   debian  Debian's stock kernel, the one bookworm's linux-image-amd64 depends on (legacy VFIO
#           container only): apt-get downloads it (Debian as root; otherwise a cached one is used);
#   full    the project's kernel: Debian's linux-source-6.12 built with tests/vm/kernel/full.config
#           (about 6 minutes on 2 cores, once per source version and fragment);
#   custom  UVFIO_VM_KERNEL=<bzImage/vmlinuz> (+ UVFIO_VM_MODULES=<.../lib/modules/<kver>>, which
#           may be omitted when vfio-pci, vfio_iommu_type1 and intel-iommu are built in).
# On Debian as root, the host packages (qemu-system-x86 busybox-static cpio kmod, and for full
# the kernel's build tools) are installed with apt-get when missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=crates/uvfio-vm/vm/lib.sh
. "$HERE/lib.sh"
CACHE=$(vm_cache_dir)
FLAVOR=$(vm_flavor)
INIT="$HERE/init"
# Modules the guest needs; their dependencies are added by modprobe --show-depends.
# vfio_iommu_type1 is only a soft dependency of vfio, so it is listed explicitly. i6300esb is the
# host driver of the watchdog that makes one test group non-viable (see runner.sh).
GUEST_MODULES=(vfio-pci vfio_iommu_type1 i6300esb)
DEBIAN_PACKAGES=(qemu-system-x86 busybox-static cpio kmod)
# What tests/vm/kernel/build.sh needs (the full flavour).
BUILD_PACKAGES=(gcc make bison flex bc libelf-dev libssl-dev xz-utils perl rsync)
SOURCE_PACKAGE=linux-source-6.12

say() { echo "provision: $*" >&2; }
die() {
    echo "provision: error: $*" >&2
    exit 1
}

# apt_download <dir> <pkg=ver>: `apt-get download` into dir, with a line every 30 s saying how
# many MB have arrived, so a slow mirror is never minutes of silence.
apt_download() {
    local dir=$1 start=$SECONDS next pid
    (cd "$dir" && apt-get -qq download "$2" >&2) &
    pid=$!
    next=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if [ "$SECONDS" -ge "$next" ]; then
            say "still downloading $2 after $((SECONDS - start)) s: $(du -sm "$dir" | cut -f1) MB so far"
            next=$((SECONDS + 30))
        fi
    done
    wait "$pid"
}

mkdir -p "$CACHE" "$CACHE/env" || die "cannot create the cache $CACHE (set UVFIO_VM_CACHE)"
# One lock per flavour: a 6-minute kernel build does not hold up a run of another flavour.
exec 9>"$CACHE/.provision-$FLAVOR.lock"
flock 9
TMP_PREFIX="$CACHE/tmp-$FLAVOR"

is_debian_root() {
    [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null &&
        command -v dpkg-deb >/dev/null
}

apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }

apt_update() {
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get -qq update >&2 || die "apt-get update failed"
}

# install_debian_packages <package...>: installs those not installed yet.
install_debian_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_lists_present || apt_update
    say "apt-get install ${missing[*]}"
    # No recommends: qemu-system-x86 would pull in a desktop's worth of GUI and audio libraries.
    if ! DEBIAN_FRONTEND=noninteractive apt-get -qq -y --no-install-recommends install "${missing[@]}" >&2; then
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get -qq -y --no-install-recommends install "${missing[@]}" >&2 ||
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

# apt_stamp: a short hash of the apt lists, which change with every apt-get update.
apt_stamp() { stat -c '%n %Y %s' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha256sum | cut -c1-16; }

# cached_resolution <name> <command...>: prints what <command> prints ("<package> <version>"),
# remembered in $CACHE/<name>.resolved until the apt lists change (apt-cache takes seconds).
cached_resolution() {
    local name=$1 file="$CACHE/$1.resolved" s a b
    shift
    if [ -r "$file" ] && read -r s a b <"$file" && [ "$s" = "$(apt_stamp)" ] && [ -n "$b" ]; then
        echo "$a $b"
        return 0
    fi
    read -r a b < <("$@") || die "cannot resolve $name"
    [ -n "$b" ] || die "cannot resolve $name"
    echo "$(apt_stamp) $a $b" >"$file.$$"
    mv -f "$file.$$" "$file"
    echo "$a $b"
}

# Prints "<package> <version>": the candidate version of SOURCE_PACKAGE.
resolve_source_package() {
    local ver
    apt_lists_present || apt_update
    ver=$(apt-cache policy "$SOURCE_PACKAGE" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        apt_update
        ver=$(apt-cache policy "$SOURCE_PACKAGE" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    fi
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        die "no installable version of $SOURCE_PACKAGE (apt-cache policy $SOURCE_PACKAGE): is bookworm-security in the apt sources?"
    fi
    echo "$SOURCE_PACKAGE $ver"
}

# Debian kernel: download, extract, keep vmlinuz + the vfio modules. Sets KDIR and KVER.
provision_debian_kernel() {
    local pkg ver tmp deb img
    read -r pkg ver < <(cached_resolution debian-kernel resolve_debian_kernel)
    KVER=${pkg#linux-image-}
    KDIR="$CACHE/kernel-debian-${pkg}_${ver}"
    if [ -e "$KDIR/.done" ]; then
        modules_current "$KDIR" && return 0
        say "guest modules changed to: ${GUEST_MODULES[*]}"
    fi
    say "fetching $pkg $ver"
    tmp=$(mktemp -d "$TMP_PREFIX.XXXXXX")
    apt_download "$tmp" "$pkg=$ver" || die "apt-get download $pkg=$ver failed"
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

# The key of the project kernel's build recipe: the fragment and the build script.
full_recipe_hash() {
    cat "$HERE/kernel/full.config" "$HERE/kernel/build.sh" | sha256sum | cut -c1-12
}

# The project's kernel (full flavour): linux-source-6.12 built with tests/vm/kernel/. Sets KDIR
# and KVER. Downloads the source package into $CACHE/debs once per version.
provision_full_kernel() {
    local pkg ver hash deb tmp
    hash=$(full_recipe_hash)
    if ! command -v apt-get >/dev/null || ! apt_lists_present && ! is_debian_root; then
        # No apt here: a kernel built earlier from the same recipe, if any.
        KDIR=$(find "$CACHE" -maxdepth 2 -path "$CACHE/kernel-full-*-$hash/.done" -printf '%T@ %h\n' 2>/dev/null |
            sort -n | tail -n1 | cut -d' ' -f2-) || true
        [ -n "$KDIR" ] || die "the full flavour builds its kernel from Debian's $SOURCE_PACKAGE: run tests/vm/provision.sh once on Debian (as root, or with apt lists and the build tools ${BUILD_PACKAGES[*]} installed), or set UVFIO_VM_KERNEL to a kernel of your own"
        KVER=$(cat "$KDIR/release")
        return 0
    fi
    read -r pkg ver < <(cached_resolution full-source resolve_source_package)
    KDIR="$CACHE/kernel-full-${ver}-$hash"
    if [ -e "$KDIR/.done" ]; then
        KVER=$(cat "$KDIR/release")
        return 0
    fi
    is_debian_root && install_debian_packages "${BUILD_PACKAGES[@]}"
    mkdir -p "$CACHE/debs"
    deb="$CACHE/debs/${pkg}_${ver}_all.deb"
    if [ ! -s "$deb" ]; then
        say "fetching $pkg $ver (about 150 MB)"
        tmp=$(mktemp -d "$TMP_PREFIX.XXXXXX")
        apt_download "$tmp" "$pkg=$ver" || die "apt-get download $pkg=$ver failed (network? apt lists? disk full in $CACHE?)"
        compgen -G "$tmp/*.deb" >/dev/null || die "apt-get download $pkg=$ver produced no .deb"
        mv "$tmp"/*.deb "$deb"
        rm -rf "$tmp"
    fi
    say "building the full flavour's kernel from $pkg $ver (once per source version and recipe $hash)"
    tmp=$(mktemp -d "$TMP_PREFIX.XXXXXX")
    "$HERE/kernel/build.sh" "$deb" "$tmp/out" || die "building the kernel failed (see above)"
    mkdir -p "$tmp/out/modules"
    : >"$tmp/out/modules.order"
    echo "builtin" >"$tmp/out/modules.wanted"
    echo "$pkg $ver recipe $hash" >"$tmp/out/source"
    touch "$tmp/out/.done"
    rm -rf "$KDIR"
    mv "$tmp/out" "$KDIR"
    rm -rf "$tmp"
    KVER=$(cat "$KDIR/release")
    say "kernel $KVER ready in $KDIR"
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
    tmp=$(mktemp -d "$TMP_PREFIX.XXXXXX")
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
    tmp=$(mktemp -d "$TMP_PREFIX.XXXXXX")
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

# The env file runner.sh sources: the kernel, the initramfs and the flavour. Rewritten only when
# it changes, by rename, so a runner reading it meanwhile sees a whole file.
write_env() {
    local file="$CACHE/env/$FLAVOR.env" new
    [ "$FLAVOR" = custom ] && file="$CACHE/env/custom-$(basename "$KDIR" | sed 's/^kernel-custom-//').env"
    new="$file.$$"
    {
        printf 'UVFIO_VM_FLAVOR=%q\n' "$FLAVOR"
        printf 'UVFIO_VM_KVER=%q\n' "$KVER"
        printf 'UVFIO_VM_KERNEL_IMAGE=%q\n' "$KDIR/vmlinuz"
        printf 'UVFIO_VM_INITRD=%q\n' "$INITRD"
        printf 'UVFIO_VM_KERNEL_DIR=%q\n' "$KDIR"
    } >"$new"
    if cmp -s "$new" "$file"; then rm -f "$new"; else mv "$new" "$file"; fi
    echo "$file"
}

rm -rf "$TMP_PREFIX".* # leftovers of an interrupted run of this flavour (we hold its lock)

KDIR="" KVER="" INITRD=""
case $FLAVOR in
custom)
    check_host_tools
    provision_custom_kernel
    ;;
full)
    is_debian_root && install_debian_packages "${DEBIAN_PACKAGES[@]}"
    check_host_tools
    provision_full_kernel
    ;;
debian)
    if is_debian_root; then
        install_debian_packages "${DEBIAN_PACKAGES[@]}"
        check_host_tools
        provision_debian_kernel
    else
        # Not Debian/root: reuse a Debian kernel provisioned earlier, if any.
        KDIR=$(find "$CACHE" -maxdepth 2 -path "$CACHE/kernel-debian-*/.done" -printf '%T@ %h\n' 2>/dev/null |
            sort -n | tail -n1 | cut -d' ' -f2-) || true
        if [ -z "$KDIR" ]; then
            die "cannot provision Debian's kernel here (not Debian, or not root). Set
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
    ;;
esac
build_initramfs
write_env
