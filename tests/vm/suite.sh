#!/usr/bin/env bash
# The hardware tests and the examples in one IOMMU mode, in one boot of the emulated IOMMU host:
#
#   tests/vm/suite.sh MODE            e.g. UVFIO_VM_FLAVOR=full tests/vm/suite.sh iommufd
#
# MODE is one of the kernel VFIO selftests' IOMMU modes (vfio_type1_iommu, vfio_type1v2_iommu,
# iommufd_compat_type1, iommufd_compat_type1v2, iommufd), or noiommu (VFIO's no-IOMMU mode:
# the VM boots without a vIOMMU, UVFIO_VM_IOMMU=none, with 384 MiB and 32 huge pages; the hw tests
# that need an IOMMU skip themselves there, saying why: tests/hw/common.rs's needs_iommu); the iommufd
# modes and noiommu need the full flavour. The script builds the hw test binary and the examples once (cargo, on the host),
# ships them into one guest (runner.sh's UVFIO_VM_SHIP) and runs there, in order:
#   - the hw tests with UVFIO_IOMMU_MODE=MODE: cargo test --test hw -- --include-ignored;
#   - on the full flavour, the fault-injection sweep (tests/faults: every operation with the
#     kernel's fail-nth = 1, 2, ..., checked for leaks, panics and kernel warnings);
#   - the soak test (tests/soak: create/drop cycles, the footprint back to its baseline);
#   - `uvfio ls -v` (crates/uvfio-cli: what VFIO reports for every device, as the lsvfio
#     example did);
#   - each example of EXAMPLES below, with `--iommu MODE` where it takes one;
#   - in one mode per flavour and in noiommu, the `uvfio` command's checks (tests/vm/cli-check.sh).
# Each stage prints "=== suite: <stage>: ok|FAILED (exit status N) in S s"; the script exits with
# the number of failed stages (0: all passed), or 125 when the guest did not report (runner.sh).
# One boot per mode instead of one per binary keeps the suite's boots at 7 for both flavours.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE=$(cd "$HERE/../.." && pwd)
cd "$CRATE"

die() {
    echo "suite: error: $*" >&2
    exit 2
}

MODES="vfio_type1_iommu vfio_type1v2_iommu iommufd_compat_type1 iommufd_compat_type1v2 iommufd noiommu"
[ $# = 1 ] || die "usage: $0 MODE (one of: $MODES)"
MODE=$1
case " $MODES " in *" $MODE "*) ;; *) die "unknown IOMMU mode '$MODE': want one of $MODES" ;; esac

# "<example> [args...]": @MODE@ becomes the mode. Add new examples here.
EXAMPLES=(
    "edu --iommu @MODE@"
    # Two bring-ups and shutdowns in one process; the VM's NVMe drive keeps writes (runner.sh).
    "nvme --iommu @MODE@ --repeat 2 --expect-persistent"
    # The benchmark's own half, briefly (two polled queue pairs, two depths, read and write):
    # tests/vm/nvme-bench.sh is the comparison with Linux's nvme driver and fio.
    "nvme --bench --iommu @MODE@ --queues 2 --qd 1,4 --seconds 0.2 --reps 1 --span-mib 1 --no-linux"
    # NIC A sends, NIC B checks every frame (mixed sizes): the e1000 pair polling, twice in a row,
    # and the e1000e pair with MSI-X interrupts. The comparison with Linux's drivers is
    # tests/vm/nic-bench.sh (not part of the suite: it measures, it does not check).
    "nic --iommu @MODE@ --count 2000 --runs 2 --quiet"
    "nic --iommu @MODE@ --pair e1000e --irq --count 2000 --quiet"
)
# The mediated devices exist on the full flavour only, and need an IOMMU model (type1 or an
# IOAS): not in no-IOMMU mode.
MDEV_EXAMPLES=(
    # mtty A's serial ports migrated into mtty B, both through the mode's path.
    "migrate --iommu @MODE@"
    # The display samples' planes read back and saved as PPM images.
    "gfxshot --iommu @MODE@"
    "gfxshot UVFIO_TEST_MBOCHS --iommu @MODE@ --out /tmp/mbochs.ppm"
)
if [ "${UVFIO_VM_FLAVOR:-debian}" = full ] && [ "$MODE" != noiommu ]; then
    EXAMPLES+=("${MDEV_EXAMPLES[@]}")
fi

# The `uvfio` command's checks (tests/vm/cli-check.sh), last in the boot: once per flavour in
# an IOMMU mode (debian: vfio_type1v2_iommu; full: iommufd) and in no-IOMMU mode.
CLI=""
case "${UVFIO_VM_FLAVOR:-debian}:$MODE" in
full:iommufd | full:noiommu | debian:vfio_type1v2_iommu | custom:vfio_type1v2_iommu) CLI=1 ;;
esac

if [ "$MODE" != noiommu ]; then
    # 8 huge pages of 2 MiB for the 2 MiB cases of the DMA tests (a 1 GiB page needs a 4 GiB
    # guest: that case skips, saying so, unless UVFIO_VM_MEM and UVFIO_VM_CMDLINE provide one).
    export UVFIO_VM_CMDLINE="${UVFIO_VM_CMDLINE:+$UVFIO_VM_CMDLINE }hugepages=8"
fi
if [ "$MODE" = noiommu ]; then
    export UVFIO_VM_IOMMU=none
    # Without an IOMMU, edu's 28-bit DMA needs physical memory below 256 MiB: a small guest
    # makes most of it so (the library picks pages below a device's limit, but cannot make
    # them). 32 huge pages hold every buffer of the drivers larger than a page.
    export UVFIO_VM_MEM=${UVFIO_VM_MEM:-384M}
    export UVFIO_VM_CMDLINE="${UVFIO_VM_CMDLINE:+$UVFIO_VM_CMDLINE }hugepages=32"
fi

"$HERE/provision.sh" >/dev/null || die "provisioning the VM failed (tests/vm/provision.sh)"

# The binaries, built once for all modes (cargo does nothing when they are fresh).
env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo build --examples --quiet
HW=$(env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo test --test hw --no-run 2>&1 |
    sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -n 1)
if [ -z "$HW" ] || [ ! -f "$HW" ]; then
    die "cargo test --test hw --no-run gave no test binary"
fi
# The uvfio command (crates/uvfio-cli): `uvfio ls -v` in every mode, its checks in some.
env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo build -p uvfio-cli --quiet
[ -f target/debug/uvfio ] || die "cargo build -p uvfio-cli gave no target/debug/uvfio"
SHIP=("$HW" target/debug/uvfio)
[ -z "$CLI" ] || SHIP+=("$HERE/cli-check.sh")
# The fault-injection sweep (tests/faults): its own binary, on the full flavour only (Debian's
# kernel has no fault injection).
FAULTS=
if [ "${UVFIO_VM_FLAVOR:-debian}" = full ]; then
    FAULTS=$(env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo test --test faults --no-run 2>&1 |
        sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -n 1)
    if [ -z "$FAULTS" ] || [ ! -f "$FAULTS" ]; then
        die "cargo test --test faults --no-run gave no test binary"
    fi
    SHIP+=("$FAULTS")
fi
# The soak test (tests/soak): create/drop cycles with the footprint compared exactly, in every
# mode; UVFIO_SOAK_SCALE (default 10 here: 100 000 pool cycles, 10 000 buffers, 1 000 whole
# stacks) divides its counts, 1 runs the full ones (tests/vm/README.md).
SOAK=$(env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo test --test soak --no-run 2>&1 |
    sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -n 1)
if [ -z "$SOAK" ] || [ ! -f "$SOAK" ]; then
    die "cargo test --test soak --no-run gave no test binary"
fi
SHIP+=("$SOAK")
names=()
for entry in "${EXAMPLES[@]}"; do
    name=${entry%% *}
    bin=target/debug/examples/$name
    [ -f "$bin" ] || die "example $name was not built ($bin)"
    case " ${names[*]-} " in *" $name "*) ;; *) SHIP+=("$bin") names+=("$name") ;; esac
done

# Single-quote a string for the guest's sh.
squote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SCRIPT=$WORK/suite.sh
{
    echo '#!/bin/sh'
    echo "# written by tests/vm/suite.sh for mode $MODE"
    echo 'failed=0'
    echo 'summary='
    # shellcheck disable=SC2016 # for the guest's shell
    echo 'stage() {
    name=$1
    shift
    echo
    echo "=== suite: $name: $*"
    start=$(date +%s)
    "$@"
    status=$?
    took=$(($(date +%s) - start))
    if [ "$status" = 0 ]; then result=ok; else result="FAILED (exit status $status)"; failed=$((failed + 1)); fi
    echo "=== suite: $name: $result in $took s"
    summary="$summary$(printf "  %-60s %5s s  %s" "$name" "$took" "$result")
"
}'
    printf 'export UVFIO_IOMMU_MODE=%s\n' "$(squote "$MODE")"
    printf 'stage %s %s --include-ignored' "$(squote "hw tests ($MODE)")" "$(squote "/test/$(basename "$HW")")"
    echo
    if [ -n "$FAULTS" ]; then
        printf 'stage %s %s --include-ignored\n' "$(squote "fault-injection sweep ($MODE)")" "$(squote "/test/$(basename "$FAULTS")")"
    fi
    printf 'export UVFIO_SOAK_SCALE=%s\n' "$(squote "${UVFIO_SOAK_SCALE:-10}")"
    printf 'stage %s %s --include-ignored\n' "$(squote "soak ($MODE)")" "$(squote "/test/$(basename "$SOAK")")"
    # What VFIO reports for every device, in both views (opens each through the container).
    printf 'stage %s /test/uvfio ls -v\n' "$(squote "uvfio ls -v")"
    for entry in "${EXAMPLES[@]}"; do
        read -r -a words <<<"${entry//@MODE@/$MODE}"
        printf 'stage %s %s' "$(squote "example ${words[*]}")" "$(squote "/test/${words[0]}")"
        for w in "${words[@]:1}"; do printf ' %s' "$(squote "$w")"; done
        echo
    done
    if [ -n "$CLI" ]; then printf 'stage %s /test/cli-check.sh\n' "$(squote "uvfio cli ($MODE)")"; fi
    echo 'echo'
    printf 'echo %s\n' "$(squote "=== suite: summary ($MODE)")"
    # shellcheck disable=SC2016 # for the guest's shell
    echo 'printf "%s" "$summary"'
    # shellcheck disable=SC2016
    echo 'exit "$failed"'
} >"$SCRIPT"
chmod 0755 "$SCRIPT"

SHIP_LIST=$(
    IFS=:
    echo "${SHIP[*]}"
)
# QEMU 7.2 under TCG has crashed (SIGSEGV) mid-suite, rarely and not again on the next boot
# (seen once in iommufd mode, during `uvfio ls -v` after the DMAR-fault test; QEMU, not the
# guest, died). An emulator crash is no test result: the suite boots once more, saying so, and
# a second crash fails it.
CRASH=$WORK/qemu-crash
status=0
UVFIO_VM_CRASH_FILE=$CRASH UVFIO_VM_SHIP=$SHIP_LIST "$HERE/runner.sh" "$SCRIPT" || status=$?
if [ "$status" = 125 ] && [ -s "$CRASH" ]; then
    echo "suite: QEMU itself crashed (exit status $(cat "$CRASH")): an emulator failure, not a test result; booting the suite again (once)" >&2
    rm -f "$CRASH"
    status=0
    UVFIO_VM_SHIP=$SHIP_LIST "$HERE/runner.sh" "$SCRIPT" || status=$?
fi
exit "$status"
