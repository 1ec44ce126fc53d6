#!/usr/bin/env bash
# The whole test suite:
#   1. `cargo test` on the host: unit tests, host integration tests, doc tests (the hardware
#      tests in tests/hw show up as ignored), bounded fuzzing of every parser (tests/fuzz.sh),
#      and tests/vm/selftest.sh (provisioning's errors);
#   then for each kernel flavour of the emulated IOMMU host (tests/vm/README.md), `debian`
#   (Debian's stock kernel) and `full` (the project's kernel, built on first use):
#   2. provisioning (download or build the kernel, once; cached); on full, the ABI test against
#      that kernel's uapi headers (crates/uvfio-uapi/tests/abi, ignored tests included);
#   3. for each IOMMU mode of the flavour (the kernel VFIO selftests' names: vfio_type1_iommu and
#      vfio_type1v2_iommu on both, and iommufd_compat_type1, iommufd_compat_type1v2 and iommufd
#      on full), one boot that runs the hardware tests and every example in that mode:
#      UVFIO_VM_FLAVOR=<flavour> tests/vm/suite.sh <mode>
#   4. on debian, tests/downstream.sh: a crate made from tests/downstream/template, with its own
#      uvfio-vm.toml, runs its tests in the VM through `cargo install`ed uvfio-vm;
#   5. on full, VFIO's no-IOMMU mode (UVFIO_VM_IOMMU=none): every hardware test (those that need
#      an IOMMU skip visibly) and every example with --iommu noiommu (tests/vm/suite.sh noiommu).
# UVFIO_VM_FLAVORS="debian" (or "full") runs one flavour only, UVFIO_IOMMU_MODES="<mode> ..." only
# those modes (of the ones the flavour has); with UVFIO_VM_KERNEL set (a kernel of your own) the
# suite runs once, on it, in the two vfio_* modes. Every stage runs even if an earlier one
# failed; the script exits non-zero if any failed and prints the time each stage took.
set -euo pipefail

CRATE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$CRATE"

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

# One mode's hardware tests and examples take 1-2 minutes here; a guest that hangs is reported
# (where its tasks wait) after UVFIO_VM_HANG_REPORT seconds and killed at UVFIO_VM_TIMEOUT.
export UVFIO_VM_TIMEOUT=${UVFIO_VM_TIMEOUT:-480} UVFIO_VM_HANG_REPORT=${UVFIO_VM_HANG_REPORT:-240}

if [ -n "${UVFIO_VM_KERNEL:-}" ]; then
    FLAVORS=(custom)
else
    read -r -a FLAVORS <<<"${UVFIO_VM_FLAVORS:-debian full}"
fi

# The host stage must not inherit a VM runner from the caller's environment.
stage "host: cargo test --workspace" env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER cargo test --workspace
# Every parser's fuzz target for UVFIO_FUZZ_SECONDS (15) seconds each (fuzz/README.md).
stage "host: fuzzing (tests/fuzz.sh)" env -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER tests/fuzz.sh
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
            UVFIO_ABI_HEADERS="$headers" cargo test -p uvfio-uapi --test abi -- --include-ignored
    fi
    modes=(vfio_type1_iommu vfio_type1v2_iommu)
    [ "$flavor" != full ] || modes+=(iommufd_compat_type1 iommufd_compat_type1v2 iommufd)
    for mode in "${modes[@]}"; do
        if [ -n "${UVFIO_IOMMU_MODES:-}" ] && [[ " $UVFIO_IOMMU_MODES " != *" $mode "* ]]; then
            continue
        fi
        stage "vm $flavor $mode: hw tests + examples" "${vm[@]}" tests/vm/suite.sh "$mode"
    done
    # A crate outside uvfio with its own device config, run through the installed uvfio-vm.
    if [ "$flavor" = debian ]; then
        stage "vm debian: downstream crate via the installed uvfio-vm" "${vm[@]}" tests/downstream.sh
    fi
    if [ "$flavor" = full ] && { [ -z "${UVFIO_IOMMU_MODES:-}" ] || [[ " $UVFIO_IOMMU_MODES " == *" noiommu "* ]]; }; then
        stage "vm full noiommu: hw tests + examples" env UVFIO_VM_FLAVOR=full tests/vm/suite.sh noiommu
    fi
done
# Point out examples that exist but are not run in the VM.
for f in examples/*.rs examples/*/main.rs; do
    [ -e "$f" ] || continue
    case $f in */main.rs) name=$(basename "$(dirname "$f")") ;; *) name=$(basename "$f" .rs) ;; esac
    grep -Eq "^ *\"?$name( |\"|$)" tests/vm/suite.sh ||
        echo "run-all: note: example $name is not run in the VM (add it to EXAMPLES in tests/vm/suite.sh)"
done

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
