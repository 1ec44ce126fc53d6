# shellcheck shell=bash
# Shared by the emulated host's scripts (sourced, not run): where the cache is, and which kernel
# flavour and IOMMU mode a run asked for.
#
# The cache outlives any clone: built kernels, downloaded packages, base initramfs images and
# the logs of failed runs, keyed by what they were made from, so a second run, a second clone,
# CI on the same machine and a crate that uses uvfio from a registry all share them.
#   UVFIO_VM_CACHE      the cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/uvfio/vm)
#   UVFIO_VM_FLAVOR     debian (default: Debian's stock kernel, legacy VFIO container only)
#                       or full (the project's kernel: iommufd, cdev, no-IOMMU, mdev samples,
#                       fault injection; built from Debian's linux-source-6.12 on first use).
#                       UVFIO_VM_KERNEL (bring your own) makes the flavour "custom".
#   UVFIO_VM_IOMMU      vtd (default: emulated Intel VT-d) or none (no vIOMMU, no-IOMMU mode)

vm_cache_dir() {
    if [ -n "${UVFIO_VM_CACHE:-}" ]; then
        echo "$UVFIO_VM_CACHE"
    elif [ -n "${XDG_CACHE_HOME:-}" ]; then
        echo "$XDG_CACHE_HOME/uvfio/vm"
    elif [ -n "${HOME:-}" ]; then
        echo "$HOME/.cache/uvfio/vm"
    else
        echo "uvfio-vm: error: neither UVFIO_VM_CACHE, XDG_CACHE_HOME nor HOME is set: nowhere to cache the VM" >&2
        return 1
    fi
}

# Prints the flavour this run boots: debian, full or custom. Fails on an unknown one.
vm_flavor() {
    if [ -n "${UVFIO_VM_KERNEL:-}" ]; then
        case ${UVFIO_VM_FLAVOR:-custom} in
        custom) ;;
        *)
            echo "uvfio-vm: error: UVFIO_VM_KERNEL is set (a kernel of your own) and UVFIO_VM_FLAVOR=$UVFIO_VM_FLAVOR: unset one of them" >&2
            return 1
            ;;
        esac
        echo custom
        return 0
    fi
    case ${UVFIO_VM_FLAVOR:-debian} in
    debian | full) echo "${UVFIO_VM_FLAVOR:-debian}" ;;
    *)
        echo "uvfio-vm: error: UVFIO_VM_FLAVOR=$UVFIO_VM_FLAVOR: want debian or full (or set UVFIO_VM_KERNEL for a kernel of your own)" >&2
        return 1
        ;;
    esac
}

# Prints the IOMMU mode this run asks for: vtd or none. Fails on an unknown one.
vm_iommu() {
    case ${UVFIO_VM_IOMMU:-vtd} in
    vtd | none) echo "${UVFIO_VM_IOMMU:-vtd}" ;;
    *)
        echo "uvfio-vm: error: UVFIO_VM_IOMMU=$UVFIO_VM_IOMMU: want vtd (emulated Intel VT-d) or none (no-IOMMU mode)" >&2
        return 1
        ;;
    esac
}

# vm_bench_boots NAME BOOTS MARKER EACH SUMMARIZE COMMAND...: the benchmark scripts' boots.
# Runs COMMAND (one boot of a benchmark) BOOTS times, each boot's whole output kept in a fresh
# directory (printed); a boot that fails, or prints no line matching the grep pattern MARKER,
# stops the run with its last lines. After each boot the function EACH gets that boot's log
# (":" for nothing); at the end SUMMARIZE gets all the logs, in boot order.
vm_bench_boots() {
    local name=$1 boots=$2 marker=$3 each=$4 summarize=$5 out boot log logs=()
    shift 5
    out=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
    echo "$name: $boots boot(s); each boot's output in $out" >&2
    for boot in $(seq 1 "$boots"); do
        echo "$name: boot $boot/$boots" >&2
        log=$out/boot-$boot.log
        if ! "$@" >"$log" 2>&1; then
            echo "$name: error: boot $boot failed:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        if ! grep -q -- "$marker" "$log"; then
            echo "$name: error: boot $boot printed no '$marker':" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        logs+=("$log")
        "$each" "$log"
    done
    "$summarize" "${logs[@]}"
}
