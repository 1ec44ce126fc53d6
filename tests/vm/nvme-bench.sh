#!/usr/bin/env bash
# The NVMe benchmark: the userspace NVMe driver of examples/nvme against Linux's own nvme
# driver driven by fio, on the same emulated controller, in one boot of the emulated IOMMU host.
#
#   tests/vm/nvme-bench.sh [--boots N] [options of `nvme --bench`, e.g. --qd 1,32 --seconds 2]
#
# Each boot runs `nvme --bench` (examples/nvme/bench.rs has the method): 4 KiB random reads and
# writes at queue depths 1, 8, 32 and 128, on one and on two I/O queue pairs, for this driver
# (polled completions) and for Linux with fio's io_uring and libaio engines (interrupts) and
# io_uring with hipri (polled, on the driver's poll queue: the guest boots with
# nvme.poll_queues=1), all with the IOMMU translating as the kernel set it up, and io_uring
# once more with the controller's IOMMU group in passthrough (identity). Within a boot the two sides alternate and each figure is the median of
# the repetitions; the boot prints one table (IOPS, latency p50/p99/p99.9, CPU time per I/O,
# and the ratio uvfio / best Linux per cell). With --boots N (default 1) it boots N times,
# prints each boot's table as it ends, and at the end one table of the median (min-max) over
# the boots of every figure, ratios included: each ratio is taken within one boot, against the
# Linux baseline measured in that same boot. It exits 0 when every boot produced its table.
#
# Under QEMU/TCG the controller is emulated on the same host CPUs as both drivers and every
# doorbell write is an exit into the emulator: the ratios measure the costs of the emulation as
# much as those of the drivers, not what either would do on hardware.
#
# It needs the full flavour (UVFIO_VM_FLAVOR=full, the default here): its kernel has the nvme
# driver built in (UVFIO_VM_HOST_DRIVERS=1 lets it load), io_uring, libaio and System V shared
# memory (which fio needs). fio is Debian's package from the host (`apt-get install fio`, done
# here when run as root), shipped into the guest with its libraries (about 80 MB, hence
# UVFIO_VM_MEM=2G by default); UVFIO_NVME_BENCH_FIO names another fio binary.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/vm/bench-lib.sh
. "$HERE/bench-lib.sh"

say() { echo "nvme-bench: $*" >&2; }
die() {
    echo "nvme-bench: error: $*" >&2
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

export UVFIO_VM_FLAVOR=${UVFIO_VM_FLAVOR:-full}
[ "$UVFIO_VM_FLAVOR" = full ] ||
    die "UVFIO_VM_FLAVOR=$UVFIO_VM_FLAVOR: the benchmark needs the full flavour (nvme driver, io_uring, System V IPC for fio)"

FIO=${UVFIO_NVME_BENCH_FIO:-$(command -v fio || true)}
if [ -z "$FIO" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing Debian's fio"
        DEBIAN_FRONTEND=noninteractive apt-get -qq -y install fio >&2 || die "apt-get install fio failed"
        FIO=$(command -v fio) || die "fio installed but not found"
    else
        die "no fio: install Debian's fio package (apt-get install fio) or set UVFIO_NVME_BENCH_FIO"
    fi
fi
[ -x "$FIO" ] || die "$FIO is not an executable"

# The built-in nvme driver loads (the runner keeps it off otherwise), with one poll queue for
# io_uring's hipri; fio and its libraries go into the guest's /test.
export UVFIO_VM_HOST_DRIVERS=1
export UVFIO_VM_CMDLINE="nvme.poll_queues=1${UVFIO_VM_CMDLINE:+ $UVFIO_VM_CMDLINE}"
export UVFIO_VM_SHIP="$FIO${UVFIO_VM_SHIP:+:$UVFIO_VM_SHIP}"
export UVFIO_VM_MEM=${UVFIO_VM_MEM:-2G}
export UVFIO_VM_TIMEOUT=${UVFIO_VM_TIMEOUT:-1800}
export UVFIO_VM_HANG_REPORT=${UVFIO_VM_HANG_REPORT:-1500}

# each_boot <log>: that boot's setup lines and table.
each_boot() {
    sed -n -e '/^nvme bench: /p' -e '/^  Linux: /p' -e '/^  wrote the span/p' -e '/^nvme bench table:/,/^goal:/p' "$1"
}

# summarize <boot logs...>: the "nvme bench table" rows (cell | side | IOPS | p50 | p99 |
# p99.9 | CPU) -> the median (min-max) of each figure over the logs.
summarize() {
    awk -v boots="$#" '
        /^nvme bench table:/ { on = 1; next }
        /^nvme bench table end/ { on = 0; next }
        on && / \| / {
            n = split($0, f, / *\| */)
            sub(/^ +/, "", f[1])
            if (f[1] == "cell") { next }
            key = f[1] SUBSEP f[2]
            if (!(key in seen)) { seen[key] = 1; keys[++nk] = key; cell[nk] = f[1]; side[nk] = f[2] }
            for (i = 3; i <= n; i++) { c = key SUBSEP i; v[c, ++cnt[c]] = f[i] + 0 }
            ncol = n
        }
        function fmt(x, col, ratio) {
            if (ratio) return sprintf("%.2f", x)
            if (col == 3) return sprintf("%.0f", x)
            return sprintf("%.1f", x)
        }
        END {
            w[3] = 22; w[4] = 22; w[5] = 24; w[6] = 26; w[7] = 22
            printf "\nnvme bench over %d boot(s): median (min-max) of each figure; latency and CPU in us, IOPS per second\n", boots
            printf "  %-20s | %-38s | %-22s | %-22s | %-24s | %-26s | %-22s\n", "cell", "side", "IOPS", "p50", "p99", "p99.9", "CPU us/IO"
            for (k = 1; k <= nk; k++) {
                key = keys[k]; ratio = (side[k] ~ /^ratio/)
                printf "  %-20s | %-38s", cell[k], side[k]
                for (i = 3; i <= ncol; i++) {
                    c = key SUBSEP i; m = cnt[c]
                    for (j = 1; j <= m; j++) a[j] = v[c, j]
                    for (j = 2; j <= m; j++) { x = a[j]; for (l = j - 1; l >= 1 && a[l] > x; l--) a[l + 1] = a[l]; a[l + 1] = x }
                    med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
                    printf " | %-" w[i] "s", sprintf("%s (%s-%s)", fmt(med, i, ratio), fmt(a[1], i, ratio), fmt(a[m], i, ratio))
                }
                printf "\n"
            }
            print "(ratio rows: uvfio / best Linux of the same boot; IOPS above 1 and latency or CPU below 1 favour uvfio)"
            print "(QEMU/TCG: the controller is emulated on the same host CPUs; the ratios measure emulation costs, not hardware)"
        }' "$@"
}

say "fio: $FIO ($("$FIO" --version)); $BOOTS boot(s) of the full flavour"
vm_bench_boots nvme-bench "$BOOTS" '^nvme bench table end' each_boot summarize \
    "$HERE/cargo-vm" run --release --example nvme -- --bench "$@" || exit 1
