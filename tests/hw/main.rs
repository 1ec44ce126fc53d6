//! Hardware tests: they run inside the emulated IOMMU host (QEMU with intel-iommu and the test
//! devices bound to vfio-pci, see tests/vm/). On a plain host they are ignored; run them with
//!
//! ```text
//! tests/vm/cargo-vm test --test hw -- --include-ignored
//! ```
//!
//! Every test panics when its device variable is missing, so they never pass outside the VM.
//! This first module talks to the kernel with raw `libc` ioctls, to check the environment itself
//! independently of the crate's API.

// The counting allocator of the unit tests, shared: hot paths are checked to allocate nothing.
#[path = "../../src/test_alloc.rs"]
mod alloc;
mod common;
mod concurrency;
mod core;
mod decoding;
mod discover;
mod dma;
mod dma_lost;
mod gfx;
mod groups;
mod hotpath;
mod hwpt;
mod iommufd;
mod irq;
mod kernel;
mod mdev;
mod migration;
mod misbehave;
mod noiommu;
mod pci;
mod regions;

use std::os::fd::AsRawFd;

const VFIO_API_VERSION: libc::c_int = 0;
const VFIO_TYPE1_IOMMU: libc::c_ulong = 1;
const VFIO_TYPE1V2_IOMMU: libc::c_ulong = 3;
const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)` with `VFIO_TYPE = ';'` and `VFIO_BASE = 100`.
const fn vfio_io(n: libc::c_ulong) -> libc::c_ulong {
    ((b';' as libc::c_ulong) << 8) | (100 + n)
}
const VFIO_GET_API_VERSION: libc::c_ulong = vfio_io(0);
const VFIO_CHECK_EXTENSION: libc::c_ulong = vfio_io(1);
const VFIO_GROUP_GET_STATUS: libc::c_ulong = vfio_io(3);

#[repr(C)]
#[derive(Debug, Default)]
struct VfioGroupStatus {
    argsz: u32,
    flags: u32,
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn ioctl_numbers_match_the_kernel_abi() {
    // Plain arithmetic, but keep it in the VM set so the constants are checked where they are used.
    let _ = common::devices();
    assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
    assert_eq!(VFIO_CHECK_EXTENSION, 0x3b65);
    assert_eq!(VFIO_GROUP_GET_STATUS, 0x3b67);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn container_api_version_is_0() {
    let _ = common::devices();
    // The mode's container: /dev/vfio/vfio, or /dev/iommu answering the container ioctls.
    let Some((container, _)) = common::container("container_api_version_is_0") else {
        return;
    };
    // SAFETY: VFIO_GET_API_VERSION takes no argument; the fd is valid for the call.
    let v = unsafe { libc::ioctl(container.as_raw_fd(), VFIO_GET_API_VERSION) };
    assert!(v >= 0, "VFIO_GET_API_VERSION: {}", errno());
    assert_eq!(v, VFIO_API_VERSION);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn container_supports_type1v2() {
    let _ = common::devices();
    let Some((container, _)) = common::container("container_supports_type1v2") else {
        return;
    };
    // Both type1 models, whichever the mode sets.
    for (name, ext) in [
        ("VFIO_TYPE1_IOMMU", VFIO_TYPE1_IOMMU),
        ("VFIO_TYPE1v2_IOMMU", VFIO_TYPE1V2_IOMMU),
    ] {
        // SAFETY: VFIO_CHECK_EXTENSION takes the extension number by value.
        let r = unsafe { libc::ioctl(container.as_raw_fd(), VFIO_CHECK_EXTENSION, ext) };
        assert_eq!(r, 1, "VFIO_CHECK_EXTENSION({name}) = {r} ({})", errno());
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn every_listed_device_is_bound_to_vfio_pci() {
    let devices = common::devices();
    for addr in &devices {
        assert_eq!(
            common::driver(addr).as_deref(),
            Some("vfio-pci"),
            "{addr} is not bound to vfio-pci"
        );
    }
    for (var, model) in common::DEVICE_VARS {
        let addr = common::device(var);
        assert!(
            devices.contains(&addr),
            "{var}={addr} ({model}) is missing from UVFIO_TEST_DEVICES={devices:?}"
        );
    }
}

/// Opens the device's group and checks `VFIO_GROUP_GET_STATUS` reports it viable (every device
/// in the group bound to vfio-pci or otherwise harmless) and not yet in a container.
fn assert_group_viable(var: &str) {
    let addr = common::device(var);
    let group = common::open_group(&addr);
    let mut status = VfioGroupStatus {
        argsz: std::mem::size_of::<VfioGroupStatus>() as u32,
        flags: 0,
    };
    // SAFETY: VFIO_GROUP_GET_STATUS writes a struct vfio_group_status, which `status` is.
    let r = unsafe {
        libc::ioctl(
            group.as_raw_fd(),
            VFIO_GROUP_GET_STATUS,
            std::ptr::addr_of_mut!(status),
        )
    };
    assert_eq!(r, 0, "VFIO_GROUP_GET_STATUS on {var}={addr}: {}", errno());
    assert_ne!(
        status.flags & VFIO_GROUP_FLAGS_VIABLE,
        0,
        "group {} of {var}={addr} is not viable: {status:?}",
        common::iommu_group(&addr)
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_edu() {
    assert_group_viable("UVFIO_TEST_EDU");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_e1000_a() {
    assert_group_viable("UVFIO_TEST_E1000_A");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_e1000_b() {
    assert_group_viable("UVFIO_TEST_E1000_B");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_e1000e_a() {
    assert_group_viable("UVFIO_TEST_E1000E_A");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_e1000e_b() {
    assert_group_viable("UVFIO_TEST_E1000E_B");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_nvme() {
    assert_group_viable("UVFIO_TEST_NVME");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn group_viable_testdev() {
    assert_group_viable("UVFIO_TEST_TESTDEV");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn nic_pairs_and_hotreset_aliases() {
    assert_eq!(
        common::device("UVFIO_TEST_NIC_A"),
        common::device("UVFIO_TEST_E1000_A")
    );
    assert_eq!(
        common::device("UVFIO_TEST_NIC_B"),
        common::device("UVFIO_TEST_E1000_B")
    );
    assert_eq!(
        common::device("UVFIO_TEST_HOTRESET"),
        common::device("UVFIO_TEST_NVME")
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn hotreset_device_sits_behind_a_bridge() {
    let addr = common::device("UVFIO_TEST_HOTRESET");
    let real = std::fs::canonicalize(common::sysfs_path(&addr)).expect("canonicalize sysfs path");
    let parent = real
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Behind a root port the parent is the port's PCI address; on the root bus it is "pci0000:00".
    assert!(
        !parent.starts_with("pci"),
        "{addr} is on the root bus ({}), not behind a bridge",
        real.display()
    );
    assert_eq!(
        std::fs::read_to_string(common::sysfs_path(&parent).join("class"))
            .expect("read the bridge's class")
            .trim()
            .get(..6),
        Some("0x0604"),
        "{addr}'s parent {parent} is not a PCI-to-PCI bridge"
    );
}
