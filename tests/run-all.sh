#!/usr/bin/env bash
# The whole test suite:
#   1. `cargo test` on the host: unit tests, host integration tests, doc tests (the hardware
#      tests in tests/hw show up as ignored), and tests/vm/selftest.sh (provisioning's errors);
#   then for each kernel flavour of the emulated IOMMU host (tests/vm/README.md), `debian`
#   (Debian's stock kernel) and `full` (the project's kernel, built on first use):
#   2. provisioning (download or build the kernel, once; cached); on full, the ABI test against
#      that kernel's uapi headers (tests/abi, ignored tests included);
#   3. the hardware tests inside the VM:
#      UVFIO_VM_FLAVOR=<flavour> tests/vm/cargo-vm test --test hw -- --include-ignored
#   4. every example of VM_EXAMPLES below, inside the VM: tests/vm/cargo-vm run --example <name>
#   5. on full, the kernel:: and discover:: hardware tests again in no-IOMMU mode
#      (UVFIO_VM_IOMMU=none).
# UVFIO_VM_FLAVORS="debian" (or "full") runs one flavour only; with UVFIO_VM_KERNEL set (a kernel
# of your own) the suite runs once, on it. Every stage runs even if an earlier one failed; the
# script exits non-zero if any failed and prints the time each stage took.
set -euo pipefail

CRATE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$CRATE"

# Examples run in the VM, one entry each: "<name> [args...]". Add new examples here. A listed
# example whose source does not exist (yet) is reported as skipped in the summary.
VM_EXAMPLES=(
    lsvfio
    edu
    # Two bring-ups and shutdowns in one process; the VM's NVMe drive keeps writes (runner.sh).
    "nvme --repeat 2 --expect-persistent"
    # NIC A sends, NIC B checks every frame (mixed sizes): the e1000 pair polling, twice in a row,
    # and the e1000e pair with MSI-X interrupts. The comparison with Linux's drivers is
    # tests/vm/nic-bench.sh (not part of the suite: it measures, it does not check).
    "nic --count 2000 --runs 2 --quiet"
    "nic --pair e1000e --irq --count 2000 --quiet"
)

STAGES=()
RESULTS=()
TIMES=()
FAILED=0

stage() {
    local name=$1 start end status=0
    shift
    echo
    echo "=== run-all: $name: $*"
    start=$(date +%s.%N)
    "$@" || status=$?
    end=$(date +%s.%N)
    STAGES+=("$name")
    TIMES+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')")
    if [ "$status" = 0 ]; then
        RESULTS+=("ok")
    else
        RESULTS+=("FAILED (exit status $status)")
        FAILED=1
    fi
    echo "=== run-all: $name: ${RESULTS[-1]} in ${TIMES[-1]} s"
}

# A whole hardware-test binary takes well under a minute here; a guest that hangs is reported
# (where its tasks wait) after UVFIO_VM_HANG_REPORT seconds and killed at UVFIO_VM_TIMEOUT.
export UVFIO_VM_TIMEOUT=${UVFIO_VM_TIMEOUT:-300} UVFIO_VM_HANG_REPORT=${UVFIO_VM_HANG_REPORT:-150}

if [ -n "${UVFIO_VM_KERNEL:-}" ]; then
    FLAVORS=(custom)
else
    read -r -a FLAVORS <<<"${UVFIO_VM_FLAVORS:-debian full}"
fi

# The host stage must not inherit a VM runner from the caller's environment.
stage "host: cargo test" env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo test
# Provisioning's own failures (missing tool, full disk, failed download) say what failed.
stage "host: VM provisioning self-test" tests/vm/selftest.sh

for flavor in "${FLAVORS[@]}"; do
    case $flavor in
    custom) vm=(env) ;;
    debian | full) vm=(env UVFIO_VM_FLAVOR="$flavor" UVFIO_VM_IOMMU=vtd) ;;
    *)
        echo "run-all: error: UVFIO_VM_FLAVORS has '$flavor': want debian and/or full" >&2
        exit 2
        ;;
    esac
    stage "vm $flavor: provision" "${vm[@]}" tests/vm/provision.sh
    if [ "$flavor" = full ]; then
        # The uAPI against the headers of the kernel source the full flavour is built from (the
        # host's linux-libc-dev is older): tests/abi, with its ignored tests included.
        # shellcheck disable=SC2016 # expanded by the inner shell
        headers=$(env UVFIO_VM_FLAVOR=full bash -c '. "$(tests/vm/provision.sh)" && echo "$UVFIO_VM_KERNEL_DIR/headers/include"') || headers=""
        stage "host: ABI against the full kernel's headers" env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER \
            UVFIO_ABI_HEADERS="$headers" cargo test --test abi -- --include-ignored
    fi
    stage "vm $flavor: cargo test --test hw" "${vm[@]}" tests/vm/cargo-vm test --test hw -- --include-ignored
    for entry in ${VM_EXAMPLES[@]+"${VM_EXAMPLES[@]}"}; do
        read -r -a words <<<"$entry"
        if [ ! -e "examples/${words[0]}.rs" ] && [ ! -e "examples/${words[0]}/main.rs" ]; then
            echo
            echo "=== run-all: vm $flavor: example ${words[0]}: SKIPPED, examples/${words[0]}.rs does not exist"
            STAGES+=("vm $flavor: example ${words[0]}") TIMES+=("-") RESULTS+=("SKIPPED (no such example)")
            continue
        fi
        stage "vm $flavor: example $entry" "${vm[@]}" tests/vm/cargo-vm run --example "${words[0]}" -- "${words[@]:1}"
    done
    if [ "$flavor" = full ]; then
        stage "vm full, no-IOMMU: cargo test --test hw kernel:: discover::" env UVFIO_VM_FLAVOR=full UVFIO_VM_IOMMU=none \
            tests/vm/cargo-vm test --test hw -- --include-ignored kernel:: discover::
    fi
done
# Point out examples that exist but are not run in the VM.
if [ -d examples ]; then
    for f in examples/*.rs examples/*/main.rs; do
        [ -e "$f" ] || continue
        case $f in */main.rs) name=$(basename "$(dirname "$f")") ;; *) name=$(basename "$f" .rs) ;; esac
        listed=0
        for entry in ${VM_EXAMPLES[@]+"${VM_EXAMPLES[@]}"}; do
            [ "${entry%% *}" = "$name" ] && listed=1
        done
        [ "$listed" = 1 ] || echo "run-all: note: example $name is not run in the VM (add it to VM_EXAMPLES in $0)"
    done
fi

echo
echo "=== run-all: summary"
for i in "${!STAGES[@]}"; do
    printf '  %-62s %8s s  %s\n' "${STAGES[$i]}" "${TIMES[$i]}" "${RESULTS[$i]}"
done
if [ "$FAILED" != 0 ]; then
    echo "=== run-all: FAILED"
    exit 1
fi
echo "=== run-all: all stages passed"
