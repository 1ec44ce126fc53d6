#!/usr/bin/env bash
# Run a binary inside the emulated IOMMU host (QEMU/TCG, intel-iommu, test devices on vfio-pci).
#
#   tests/vm/runner.sh <binary> [args...]
#
# Usable as a cargo target runner (tests/vm/cargo-vm sets it up):
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/tests/vm/runner.sh cargo test --test hw
#
# The binary, its ldd libraries and the dynamic loader go into a cpio appended to the cached base
# initramfs (tests/vm/provision.sh), with /test/run.sh running it in /test with the arguments
# quoted. Its stdout/stderr stream back live through the guest's ttyS1/ttyS2; the kernel console
# (ttyS0) goes to a log file. The runner exits with the binary's exit status, or 125 when the
# guest never reports one (timeout, QEMU died, setup error in the guest).
#
# Environment:
#   UVFIO_VM_TIMEOUT     seconds before the VM is killed (default 600)
#   UVFIO_VM_HANG_REPORT seconds after which the guest prints where every task waits, to the
#                        console, shown with the failure (default 240)
#   UVFIO_VM_MEM         guest memory (default 1G)
#   UVFIO_VM_SMP         guest CPUs (default 2)
#   UVFIO_VM_CMDLINE     appended to the kernel command line (e.g. hugepages=64)
#   UVFIO_VM_EXTRA_ARGS  appended to the QEMU command line (split on whitespace)
#   UVFIO_VM_CRASH_FILE  where to write QEMU's exit status when QEMU itself crashed
#                        (SIGSEGV/SIGABRT) before the guest reported (suite.sh boots again)
#   UVFIO_VM_KEEP_DEBUG  1: ship binaries with their debug info (stripped by default: RAM)
#   UVFIO_VM_SHIP        more files (colon-separated) to copy into the guest's /test beside the
#                        binary, with their libraries (tests/vm/suite.sh runs several binaries
#                        in one boot this way)
#   UVFIO_VM_INITRD_EXTRA  cpio archives (uncompressed, colon-separated) appended to the initrd,
#                        e.g. extra modules for init to load (tests/vm/nic-bench.sh)
#   UVFIO_VM_VERBOSE=1   print the guest console after the run
#   UVFIO_VM_KERNEL_LOG=1  print the guest's whole kernel log (dmesg, taken after the binary
#                        exited) after the run
#   UVFIO_VM_TIMINGS=1   print how long provisioning, the boot and the binary took
#   UVFIO_VM_DEVICES     a device table to use instead of devices.sh (same functions; uvfio-vm
#                        writes one from a crate's uvfio-vm.toml)
#   UVFIO_VM_KEEP=1      keep the run directory (initrd, logs) under <cache>/runs
#   UVFIO_VM_FLAVOR      debian (default) or full: the guest kernel (tests/vm/README.md)
#   UVFIO_VM_IOMMU       vtd (default: emulated Intel VT-d) or none (no vIOMMU, VFIO's no-IOMMU
#                        mode; the full flavour or a kernel of your own with VFIO_NOIOMMU)
#   UVFIO_VM_CACHE       the cache (tests/vm/lib.sh)
#   UVFIO_VM_HOST_DRIVERS=1  full flavour: let the built-in e1000/e1000e/nvme drivers load (they
#                        are kept from claiming the devices at boot otherwise; nic-bench.sh sets it)
#   UVFIO_VM_KERNEL, UVFIO_VM_MODULES: see provision.sh
# Passed into the guest: RUST_BACKTRACE, RUST_LOG, RUST_LIB_BACKTRACE, RUST_TEST_THREADS,
# RUST_TEST_NOCAPTURE, RUST_MIN_STACK and every UVFIO_* variable except UVFIO_VM_* (the VM's own
# configuration) and the UVFIO_TEST_* the guest sets itself. The guest exports UVFIO_VM_FLAVOR,
# UVFIO_VM_IOMMU and UVFIO_VM_KERNEL_RELEASE (uname -r) so tests can tell where they run. RUST_TEST_THREADS defaults to 1 in
# the guest: a VFIO group can be opened only once, so tests sharing a device must not overlap.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=crates/uvfio-vm/vm/lib.sh
. "$HERE/lib.sh"

die() {
    echo "uvfio-vm: error: $*" >&2
    exit 125
}
CACHE=$(vm_cache_dir) || exit 125
vm_flavor >/dev/null || exit 125
IOMMU=$(vm_iommu) || exit 125

[ $# -ge 1 ] || die "usage: $0 <binary> [args...]"
BIN=$1
shift
[ -f "$BIN" ] || die "no such binary: $BIN"
BIN=$(readlink -f "$BIN")

TIMEOUT=${UVFIO_VM_TIMEOUT:-600}
MEM=${UVFIO_VM_MEM:-1G}
SMP=${UVFIO_VM_SMP:-2}
case $TIMEOUT in '' | *[!0-9]*) die "UVFIO_VM_TIMEOUT must be a number of seconds" ;; esac

now() { date +%s.%N; }
# seconds between two now()s, one decimal
span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
T_PROVISION=$(now)
ENV_FILE=$("$HERE/provision.sh") || die "provisioning failed (tests/vm/provision.sh)"
# shellcheck source=/dev/null
. "$ENV_FILE"
if [ "$IOMMU" = none ] && [ "$UVFIO_VM_FLAVOR" = debian ]; then
    die "UVFIO_VM_IOMMU=none needs VFIO's no-IOMMU mode, which Debian's kernel does not have (CONFIG_VFIO_NOIOMMU is off): use UVFIO_VM_FLAVOR=full"
fi

# ---------------------------------------------------------------------------------------------
# The device set.
#
#   dev <NAME> <vendor:device> [OPTION...] <QEMU args...>
#
# The guest takes the next device with that id (in PCI address order, which on each bus follows
# the order here), binds it to vfio-pci and exports UVFIO_TEST_<NAME>=<PCI address>. Options
# (words before the first QEMU argument, which starts with '-'):
#   at=root        the device must be on the root bus (not behind a bridge);
#   at=BB:DD.F     the device must sit directly behind the bridge at 0000:BB:DD.F;
#   host=MODULE    bind it to the PCI driver of kernel module MODULE instead of vfio-pci (the
#                  module must be in GUEST_MODULES of provision.sh, or built in);
#   group=TAG      the devices with the same TAG must share one IOMMU group, and nothing else of
#                  the table may be in it; devices without a TAG must each have a group of their
#                  own (bridges do not count);
#   unlisted       keep it out of UVFIO_TEST_DEVICES (implied by host=).
# UVFIO_TEST_DEVICES lists the vfio-pci devices without "unlisted": each is alone in a viable
# group, so any of them can be opened on its own.
QEMU_DEVICES=()
GUEST_DEVICES=""
dev() {
    local line="$1 $2"
    shift 2
    while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
        case $1 in
        at=root | at=[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7] | host=?* | group=?* | unlisted) ;;
        *) die "device table: unknown option '$1' for ${line%% *}" ;;
        esac
        line+=" $1"
        shift
    done
    GUEST_DEVICES+="$line"$'\n'
    QEMU_DEVICES+=("$@")
}
alias_dev() { GUEST_DEVICES+="alias $1 $2"$'\n'; }
guest_env() { GUEST_DEVICES+="env $1 $2"$'\n'; }
# guest_list VAR NAME...: the guest exports VAR as the space-separated addresses of the NAMEs.
guest_list() { GUEST_DEVICES+="list $*"$'\n'; }
# dev_env VAR NAME: the guest also exports VAR as the address of device NAME.
# shellcheck disable=SC2317 # called by a generated table (UVFIO_VM_DEVICES)
dev_env() { GUEST_DEVICES+="var $1 $2"$'\n'; }
# Mediated devices, created by the guest's init from the kernel's sample drivers where the
# kernel has them (the full flavour; elsewhere init says they are missing and sets nothing):
#   mdev <NAME> <mdev type> <uuid>
# exports UVFIO_TEST_<NAME>=/sys/bus/mdev/devices/<uuid>.
mdev() { GUEST_DEVICES+="mdev $1 $2 $3"$'\n'; }

if [ -n "${UVFIO_VM_DEVICES:-}" ]; then
    [ -f "$UVFIO_VM_DEVICES" ] || die "UVFIO_VM_DEVICES: no such file: $UVFIO_VM_DEVICES"
    # shellcheck source=/dev/null
    . "$UVFIO_VM_DEVICES"
else
    # shellcheck source=crates/uvfio-vm/vm/devices.sh
    . "$HERE/devices.sh"
fi

guest_env UVFIO_VM_FLAVOR "$UVFIO_VM_FLAVOR"
HANG_REPORT=${UVFIO_VM_HANG_REPORT:-240}
case $HANG_REPORT in '' | *[!0-9]*) die "UVFIO_VM_HANG_REPORT must be a number of seconds" ;; esac
guest_env UVFIO_VM_HANG_REPORT "$HANG_REPORT"
guest_env UVFIO_VM_IOMMU "$IOMMU"
[ "${UVFIO_VM_KERNEL_LOG:-}" != 1 ] || guest_env UVFIO_VM_KERNEL_LOG 1
# ---------------------------------------------------------------------------------------------

RUNS="$CACHE/runs"
mkdir -p "$RUNS"
# Logs of failed runs are kept for inspection; drop those older than a day.
find "$RUNS" -mindepth 1 -maxdepth 1 -name 'run.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
WORK=$(mktemp -d "$RUNS/run.XXXXXX")
QEMU_PID="" OUT_PID="" ERR_PID="" KEEP=${UVFIO_VM_KEEP:-}
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local p
    for p in $QEMU_PID $OUT_PID $ERR_PID; do kill "$p" 2>/dev/null || true; done
    if [ -n "$KEEP" ]; then
        rm -f "$WORK/stdout.fifo" "$WORK/stderr.fifo"
        [ "$KEEP" = 1 ] || rm -f "$WORK/initrd" "$WORK/extra.cpio"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'echo "uvfio-vm: interrupted" >&2; exit 130' INT TERM HUP

# Single-quote a string for the guest's sh.
squote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# --- second cpio: the binary, its libraries and loader, /test/run.sh, /uvfio/devices ---------
STAGE="$WORK/stage"
mkdir -p "$STAGE/test" "$STAGE/uvfio"
NAME=$(basename "$BIN")
LIBDIRS=""
# Copies a file into /test, with the libraries ldd finds for it (none for a script).
ship() {
    local file=$1 lib LDD
    [ ! -e "$STAGE/test/$(basename "$file")" ] || die "two files to ship are named $(basename "$file")"
    # Debug builds carry tens of MB of DWARF each: the guest's initramfs lives in its RAM (a
    # 384 MiB no-IOMMU guest could not unpack the suite's binaries), so ELF files go in
    # without it. The symbol table stays: backtraces still name functions, not lines.
    # UVFIO_VM_KEEP_DEBUG=1 ships them whole.
    if [ -z "${UVFIO_VM_KEEP_DEBUG:-}" ] && command -v objcopy >/dev/null &&
        [ "$(head -c 4 "$file" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        objcopy --strip-debug "$file" "$STAGE/test/$(basename "$file")"
    else
        cp "$file" "$STAGE/test/$(basename "$file")"
    fi
    LDD=$(ldd "$file" 2>/dev/null) || return 0
    while read -r lib; do
        [ -n "$lib" ] || continue
        [ -f "$lib" ] || die "library $lib of $file not found"
        mkdir -p "$STAGE$(dirname "$lib")"
        cp -L "$lib" "$STAGE$lib"
        case ":$LIBDIRS:" in *":$(dirname "$lib"):"*) ;; *) LIBDIRS="${LIBDIRS:+$LIBDIRS:}$(dirname "$lib")" ;; esac
    done < <(echo "$LDD" | sed -n -e 's/^.*=> \(\/[^ ]*\) (0x.*$/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p')
    if echo "$LDD" | grep -q 'not found'; then
        die "$file has unresolved libraries: $(echo "$LDD" | grep 'not found' | tr -s ' \t' ' ')"
    fi
}
ship "$BIN"
SHIP=()
IFS=: read -r -a SHIP <<<"${UVFIO_VM_SHIP:-}"
for f in ${SHIP[@]+"${SHIP[@]}"}; do
    [ -f "$f" ] || die "UVFIO_VM_SHIP: no such file: $f"
    ship "$(readlink -f "$f")"
done

{
    echo '#!/bin/sh'
    echo '# written by tests/vm/runner.sh'
    echo 'cd /test || exit 125'
    for var in $(compgen -e | LC_ALL=C sort); do
        case $var in
        RUST_BACKTRACE | RUST_LIB_BACKTRACE | RUST_LOG | RUST_TEST_THREADS | RUST_TEST_NOCAPTURE | RUST_MIN_STACK) ;;
        UVFIO_VM_*) continue ;;
        UVFIO_*) ;;
        *) continue ;;
        esac
        # Values the guest set itself (device addresses) win over the host's.
        # shellcheck disable=SC2016 # $ is for the guest's shell
        printf '[ -n "${%s+x}" ] || export %s=%s\n' "$var" "$var" "$(squote "${!var}")"
    done
    # shellcheck disable=SC2016
    echo '[ -n "${RUST_TEST_THREADS+x}" ] || export RUST_TEST_THREADS=1'
    # (an empty LD_LIBRARY_PATH would mean the current directory)
    [ -z "$LIBDIRS" ] || printf 'export LD_LIBRARY_PATH=%s\n' "$(squote "$LIBDIRS")"
    printf 'exec %s' "$(squote "/test/$NAME")"
    for arg in "$@"; do printf ' %s' "$(squote "$arg")"; done
    echo
} >"$STAGE/test/run.sh"
chmod 0755 "$STAGE/test/run.sh"
printf '%s' "$GUEST_DEVICES" >"$STAGE/uvfio/devices"

(cd "$STAGE" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) >"$WORK/extra.cpio"
INITRD_EXTRA=()
IFS=: read -r -a INITRD_EXTRA <<<"${UVFIO_VM_INITRD_EXTRA:-}"
for f in ${INITRD_EXTRA[@]+"${INITRD_EXTRA[@]}"}; do
    [ -f "$f" ] || die "UVFIO_VM_INITRD_EXTRA: no such file: $f"
done
cat "$UVFIO_VM_INITRD" ${INITRD_EXTRA[@]+"${INITRD_EXTRA[@]}"} "$WORK/extra.cpio" >"$WORK/initrd"
rm -rf "$STAGE"

# --- QEMU --------------------------------------------------------------------------------------
chardev_path() { printf '%s' "${1//,/,,}"; } # QEMU option syntax: a comma is written ",,"
CONSOLE="$WORK/console.log"
QEMU_ERR="$WORK/qemu.stderr"
mkfifo "$WORK/stdout.fifo" "$WORK/stderr.fifo"
read -r -a EXTRA <<<"${UVFIO_VM_EXTRA_ARGS:-}"
# The full flavour builds the test devices' host drivers in (for nic-bench.sh and comparison
# runs); left alone they would claim the devices at boot and leave them in the state Linux
# left them in. Debian's kernel has them as modules the guest never loads: for the same fresh
# devices on both flavours their init functions are skipped, unless UVFIO_VM_HOST_DRIVERS=1.
# (e1000_init_module is the name of both e1000's and e1000e's.)
HOST_DRIVERS_CMDLINE=""
if [ "$UVFIO_VM_FLAVOR" = full ] && [ "${UVFIO_VM_HOST_DRIVERS:-}" != 1 ]; then
    HOST_DRIVERS_CMDLINE=" initcall_blacklist=e1000_init_module,nvme_init"
fi
if [ "$IOMMU" = vtd ]; then
    # shellcheck disable=SC2054 # commas belong to QEMU options
    IOMMU_ARGS=(-device intel-iommu,intremap=on,caching-mode=on)
    IOMMU_CMDLINE="intel_iommu=on"
else
    # No vIOMMU: vfio-pci then offers devices only in VFIO's unsafe no-IOMMU mode.
    IOMMU_ARGS=()
    IOMMU_CMDLINE="vfio.enable_unsafe_noiommu_mode=1"
fi
# shellcheck disable=SC2054 # commas belong to QEMU options
QEMU=(
    qemu-system-x86_64
    -nodefaults -display none -no-reboot -no-user-config
    -accel tcg -M q35,kernel-irqchip=split -cpu max -smp "$SMP" -m "$MEM"
    "${IOMMU_ARGS[@]}"
    -kernel "$UVFIO_VM_KERNEL_IMAGE" -initrd "$WORK/initrd"
    # no_timer_check: under a loaded host, TCG can be too slow for the kernel's check that the
    # timer interrupt arrives through the remapped IO-APIC, which then panics at boot.
    -append "console=ttyS0 $IOMMU_CMDLINE no_timer_check panic=-1 quiet$HOST_DRIVERS_CMDLINE${UVFIO_VM_CMDLINE:+ $UVFIO_VM_CMDLINE}"
    -chardev "file,id=con,path=$(chardev_path "$CONSOLE")" -serial chardev:con
    -chardev "file,id=out,path=$(chardev_path "$WORK/stdout.fifo")" -serial chardev:out
    -chardev "file,id=err,path=$(chardev_path "$WORK/stderr.fifo")" -serial chardev:err
    "${QEMU_DEVICES[@]}"
    "${EXTRA[@]}"
)

# Boot watchdog: under TCG on a loaded host the guest kernel occasionally hangs while booting
# (an RCU stall, a timer check), long before anything of the test runs. If the guest has not
# reached the test (init prints UVFIO_VM_STARTED) within UVFIO_VM_BOOT_TIMEOUT seconds, QEMU is
# killed and the boot tried again, up to UVFIO_VM_BOOT_TRIES times. Once the test has started,
# only the overall UVFIO_VM_TIMEOUT applies and nothing is retried.
BOOT_TIMEOUT=${UVFIO_VM_BOOT_TIMEOUT:-120}
BOOT_TRIES=${UVFIO_VM_BOOT_TRIES:-3}
START=$SECONDS
T_BOOT=$(now)
T_STARTED=""
for BOOT_TRY in $(seq 1 "$BOOT_TRIES"); do
    : >"$CONSOLE"
    # Readers first: QEMU's open() of each FIFO waits for them.
    cat "$WORK/stdout.fifo" &
    OUT_PID=$!
    cat "$WORK/stderr.fifo" >&2 &
    ERR_PID=$!

    timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$QEMU_ERR" 2>&1 &
    QEMU_PID=$!
    BOOT_START=$SECONDS
    BOOTED=0
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        if grep -aq 'UVFIO_VM_STARTED' "$CONSOLE" 2>/dev/null; then
            BOOTED=1
            T_STARTED=$(now)
            break
        fi
        [ $((SECONDS - BOOT_START)) -lt "$BOOT_TIMEOUT" ] || break
        sleep 0.2
    done
    if [ "$BOOTED" = 0 ] && kill -0 "$QEMU_PID" 2>/dev/null && [ "$BOOT_TRY" -lt "$BOOT_TRIES" ]; then
        echo "uvfio-vm: the guest did not reach the test within ${BOOT_TIMEOUT}s (boot $BOOT_TRY of $BOOT_TRIES); last console lines:" >&2
        tr -d '\r' <"$CONSOLE" | tail -n 5 | sed 's/^/  | /' >&2
        echo "uvfio-vm: booting again" >&2
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
        QEMU_PID=""
        # QEMU's end closes the FIFOs; the readers finish (or are unblocked and stopped).
        for pid in "$OUT_PID" "$ERR_PID"; do
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
        continue
    fi
    set +e
    wait "$QEMU_PID"
    QRC=$?
    set -e
    QEMU_PID=""
    break
done
ELAPSED=$((SECONDS - START))
T_END=$(now)

# Let the streams drain. If QEMU never opened a FIFO, unblock its reader with a dummy writer.
for p in OUT_PID ERR_PID; do
    pid=${!p}
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        if [ "$p" = OUT_PID ]; then : 3<>"$WORK/stdout.fifo"; else : 3<>"$WORK/stderr.fifo"; fi
        sleep 0.2
        kill "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
done
OUT_PID="" ERR_PID=""

if [ "${UVFIO_VM_VERBOSE:-}" = 1 ]; then
    echo "----- guest console -----" >&2
    tr -d '\r' <"$CONSOLE" >&2 || true
    echo "-------------------------" >&2
fi

if [ "${UVFIO_VM_KERNEL_LOG:-}" = 1 ]; then
    echo "----- guest kernel log -----" >&2
    tr -d '\r' <"$CONSOLE" | sed -n '/^UVFIO_VM_KLOG_BEGIN$/,/^UVFIO_VM_KLOG_END$/{//!p}' >&2 || true
    echo "----------------------------" >&2
fi
if [ "${UVFIO_VM_TIMINGS:-}" = 1 ]; then
    if [ -n "$T_STARTED" ]; then
        echo "uvfio-vm: timings: provision $(span "$T_PROVISION" "$T_BOOT") s, boot $(span "$T_BOOT" "$T_STARTED") s (try $BOOT_TRY of $BOOT_TRIES), test $(span "$T_STARTED" "$T_END") s (with poweroff)" >&2
    else
        echo "uvfio-vm: timings: provision $(span "$T_PROVISION" "$T_BOOT") s, boot did not finish after $(span "$T_BOOT" "$T_END") s" >&2
    fi
fi

RC=$(tr -d '\r' <"$CONSOLE" | grep -ao 'UVFIO_VM_RC=[0-9]*' | tail -n1 | cut -d= -f2) || true

report_failure() {
    local shown
    KEEP=${KEEP:-keep-logs}
    {
        echo "uvfio-vm: $*"
        if grep -aq 'uvfio-vm: the test has run for' "$CONSOLE" 2>/dev/null; then
            echo "uvfio-vm: ----- the guest's report of where its tasks waited -----"
            tr -d '\r' <"$CONSOLE" | sed -n '/uvfio-vm: the test has run for/,$p' | head -n 600 | sed 's/^/  | /'
        fi
        echo "uvfio-vm: ----- last 40 lines of the guest console ($CONSOLE) -----"
        tr -d '\r' <"$CONSOLE" 2>/dev/null | tail -n 40 | sed 's/^/  | /'
        if [ -s "$QEMU_ERR" ]; then
            shown=$(grep -v 'is not connected to host network' "$QEMU_ERR" || true)
            if [ -n "$shown" ]; then
                echo "uvfio-vm: ----- QEMU stderr ($QEMU_ERR) -----"
                echo "$shown" | tail -n 40 | sed 's/^/  | /'
            fi
        fi
        echo "uvfio-vm: QEMU command:"
        for arg in "${QEMU[@]}"; do
            if [[ $arg =~ ^[A-Za-z0-9_,.:=/@%+-]+$ ]]; then printf ' %s' "$arg"; else printf ' %q' "$arg"; fi
        done
        echo
        echo "uvfio-vm: logs kept in $WORK"
    } >&2
}

if [ -n "$RC" ]; then
    if [ "$RC" != 0 ] && grep -aq 'uvfio-vm: ERROR' "$CONSOLE"; then
        report_failure "guest setup failed (status $RC):"$'\n'"$(tr -d '\r' <"$CONSOLE" |
            grep -a 'uvfio-vm: ERROR' | sed 's/^.*uvfio-vm: ERROR: */    /')"
    fi
    exit "$RC"
fi
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
    report_failure "TIMEOUT: the guest did not report an exit status within UVFIO_VM_TIMEOUT=${TIMEOUT}s; QEMU was killed"
else
    report_failure "QEMU exited with status $QRC after ${ELAPSED}s before the guest reported an exit status (crash, hw_error, kernel panic?)"
    # QEMU itself killed by a signal (SIGSEGV 139, SIGABRT 134): said to the caller that asked.
    if [ -n "${UVFIO_VM_CRASH_FILE:-}" ] && { [ "$QRC" = 139 ] || [ "$QRC" = 134 ]; }; then
        echo "$QRC" >"$UVFIO_VM_CRASH_FILE"
    fi
fi
exit 125
