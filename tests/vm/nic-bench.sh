#!/usr/bin/env bash
# The NIC benchmark: the userspace e1000/e1000e driver of examples/nic against Linux's own e1000
# and e1000e drivers, on the same emulated NICs, in one run of the emulated IOMMU host.
#
#   tests/vm/nic-bench.sh [--boots N] [options of `nic --bench`, e.g. --pair e1000e]
#
# With --boots N (default 1) it boots N times and ends with two tables per NIC model, packets
# per second and guest CPU ns per packet: for every row of `nic --bench`'s tables (uvfio polling
# and on interrupts, and each Linux setting: IOMMU DMA or passthrough x pktgen burst 1 or 32 x
# interrupt moderation off or on) and column (size, TX/RX), the median over the boots with
# min-max, and the ratios uvfio (polling, interrupts) / best Linux of each boot summarised the
# same way. Each boot's whole output is kept (the path is printed).
#
# ethtool goes into the guest too (UVFIO_VM_SHIP): the host's, or Debian's package unpacked
# once into the VM cache (nic-bench-ethtool/); the bench sets Linux's rings to uvfio's size and
# switches the interrupt moderation with it.
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
# shellcheck source=tests/vm/bench-lib.sh
. "$HERE/bench-lib.sh"
CACHE=$(vm_cache_dir)
NIC_MODULES=(e1000 e1000e pktgen)

say() { echo "nic-bench: $*" >&2; }
die() {
    echo "nic-bench: error: $*" >&2
    exit 1
}

BOOTS=1
if [ "${1:-}" = --boots ]; then
    [ $# -ge 2 ] || die "--boots needs a number"
    BOOTS=$2
    shift 2
fi
case $BOOTS in
'' | *[!0-9]* | 0) die "--boots wants a positive number, not '$BOOTS'" ;;
esac

# run_boots <command...>: the bench once, or BOOTS times and the summary table.
run_boots() {
    if [ "$BOOTS" = 1 ]; then
        exec "$@"
    fi
    vm_bench_boots nic-bench "$BOOTS" 'ratio uvfio polling / best Linux' : summarize "$@" ||
        die "the boots did not all give a comparison table (above)"
}

# summarize <boot logs...>: the tables of each log ("<model> pair, packets per second ..." and
# "<model> pair, CPU ns per packet ...", each ended by an empty line) -> median (min-max) per
# table, row and column over the logs. Cells are "496.3 kpps", "1.23 Mpps", "812 pps", "1234 ns",
# a ratio, or "-" (no figure). The "time in TDT / RDT writes" row is left out.
summarize() {
    awk -v boots="$#" '
        function val(c,   n) { n = c + 0; if (c ~ /Mpps/) n *= 1e6; else if (c ~ /kpps/) n *= 1e3; return n }
        /^[a-z0-9]+ pair, / {
            title = $0; sub(/^[a-z0-9]+ pair, /, "", title); sub(/ *[(:].*$/, "", title)
            t = $1 " pair" SUBSEP title; head = 1; next
        }
        head == 1 { cols = $0; head = 2; if (!(t in seen)) { seen[t] = 1; tables[++nt] = t; colhead[t] = cols } next }
        head == 2 && /^  [^ ]/ {
            label = substr($0, 3, 38); sub(/ +$/, "", label)
            if (label ~ /time in TDT/) next
            rest = substr($0, 41); sub(/  (lost|DAMAGED).*$/, "", rest)
            n = split(rest, cell, /  +/); k = 0
            for (i = 1; i <= n; i++) {
                if (cell[i] == "") continue
                k++; key = t SUBSEP label SUBSEP k
                if (!((t, label) in lseen)) { lseen[t, label] = 1; labels[t, ++nl[t]] = label }
                if (k > ncol[t]) ncol[t] = k
                if (cell[i] != "-") v[key, ++cnt[key]] = val(cell[i])
            }
            next
        }
        head == 2 { head = 0 }
        function fmt(x, kind) {
            if (kind == "ratio") return sprintf("%.2f", x)
            if (kind == "ns") return sprintf("%.0f", x)
            if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
            return sprintf("%.0fk", x / 1e3)
        }
        END {
            for (m = 1; m <= nt; m++) {
                t = tables[m]; split(t, part, SUBSEP)
                printf "\n%s over %d boots, %s: median (min-max)\n", part[1], boots, part[2]
                printf "  %-38s", ""
                nh = split(colhead[t], hcol, /  +/)
                for (i = 1; i <= nh; i++) if (hcol[i] != "") printf " %-20s", hcol[i]
                printf "\n"
                for (l = 1; l <= nl[t]; l++) {
                    label = labels[t, l]
                    kind = (label ~ /^ratio/) ? "ratio" : (part[2] ~ /ns per packet/) ? "ns" : "pps"
                    printf "  %-38s", label
                    for (k = 1; k <= ncol[t]; k++) {
                        key = t SUBSEP label SUBSEP k; c = cnt[key] + 0
                        if (c == 0) { printf " %-20s", "-"; continue }
                        for (i = 1; i <= c; i++) a[i] = v[key, i]
                        for (i = 2; i <= c; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
                        med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
                        printf " %-20s", sprintf("%s (%s-%s)", fmt(med, kind), fmt(a[1], kind), fmt(a[c], kind))
                    }
                    printf "\n"
                }
            }
        }' "$@"
}

# ethtool_binary: prints the path of an ethtool for the guest (Linux's ring size and interrupt
# moderation): the host's, else Debian's package unpacked once into the cache; nothing when
# neither can be had (the bench then runs Linux with its defaults only, and says so).
ethtool_binary() {
    local dir="$CACHE/nic-bench-ethtool" tmp
    if command -v ethtool >/dev/null; then
        command -v ethtool
        return
    fi
    if [ ! -x "$dir/ethtool" ]; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            say "no ethtool (install it, or run once as root on Debian): Linux keeps its default settings"
            return
        fi
        say "fetching Debian's ethtool package (once)"
        tmp=$(mktemp -d "$CACHE/tmp-ethtool.XXXXXX")
        if ! (cd "$tmp" && apt-get -qq download ethtool >&2); then
            rm -rf "$tmp"
            die "apt-get download ethtool failed"
        fi
        dpkg-deb -x "$tmp"/ethtool_*.deb "$tmp/root"
        mkdir -p "$tmp/out"
        find "$tmp/root" -name ethtool -type f -perm -u+x -exec cp {} "$tmp/out/ethtool" \;
        [ -x "$tmp/out/ethtool" ] || {
            rm -rf "$tmp"
            die "no ethtool binary in Debian's ethtool package"
        }
        rm -rf "$dir"
        mv "$tmp/out" "$dir"
        rm -rf "$tmp"
    fi
    echo "$dir/ethtool"
}

ENV_FILE=$("$HERE/provision.sh") || die "provisioning the VM failed (tests/vm/provision.sh)"
# shellcheck source=/dev/null
. "$ENV_FILE"
# One boot measures for several minutes (both pairs, every setting, REPS times); the guest's
# hang report would land in the middle of a measurement (it reads every task's stack).
export UVFIO_VM_TIMEOUT=${UVFIO_VM_TIMEOUT:-1800}
export UVFIO_VM_HANG_REPORT=${UVFIO_VM_HANG_REPORT:-1750}
ETHTOOL=$(ethtool_binary)
if [ -n "$ETHTOOL" ]; then
    export UVFIO_VM_SHIP="$ETHTOOL${UVFIO_VM_SHIP:+:$UVFIO_VM_SHIP}"
fi
if [ "$UVFIO_VM_FLAVOR" = full ]; then
    # The NIC drivers are built in; the runner keeps them from loading unless told.
    export UVFIO_VM_HOST_DRIVERS=1
    # QEMU's e1000 is an 82540EM, whose interrupt moderation the e1000 driver will not change
    # through ethtool (EOPNOTSUPP): it takes InterruptThrottleRate per probe, in probe order,
    # from the kernel command line. The boot probes both NICs (3, the default), then each of the
    # bench's repetitions binds the pair four times: moderation off on both IOMMU domains (0),
    # then on (3). The driver has 32 entries (E1000_MAX_NIC): enough for --runs 3; later
    # repetitions get the default, and the bench (which reads the setting back with ethtool)
    # skips their "ITR off" rows and says so.
    itr=3,3
    for _ in 1 2 3; do itr="$itr,0,0,0,0,3,3,3,3"; done
    export UVFIO_VM_CMDLINE="${UVFIO_VM_CMDLINE:+$UVFIO_VM_CMDLINE }e1000.InterruptThrottleRate=$itr,3,3,3,3,3,3"
    run_boots "$HERE/cargo-vm" run --release --example nic -- --bench "$@"
    exit 0
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
run_boots "$HERE/cargo-vm" run --release --example nic -- --bench "$@"
