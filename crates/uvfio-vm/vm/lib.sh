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
