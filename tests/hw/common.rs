//! Shared helpers of the `hw` tests: where the emulated IOMMU host's devices are.
//!
//! The guest's `/init` (tests/vm/init) binds each test device to vfio-pci and exports its PCI
//! address as `UVFIO_TEST_<NAME>` (see tests/vm/devices.sh for the device set). Outside that VM
//! the variables are missing and every helper here panics with instructions: a hardware test
//! must never pass without its hardware.

#![allow(dead_code)] // each test module uses a different subset

use std::fs::File;
use std::path::PathBuf;

use uvfio::{DmaSpace, IommuMode};

/// How to run the hardware tests; part of every "not in the VM" panic message.
pub const HOW_TO_RUN: &str =
    "hardware tests need the emulated IOMMU host: run `tests/vm/cargo-vm test --test hw -- --include-ignored`";

/// Every device variable the VM exports, with the QEMU device behind it.
pub const DEVICE_VARS: &[(&str, &str)] = &[
    ("UVFIO_TEST_EDU", "edu"),
    ("UVFIO_TEST_E1000_A", "e1000"),
    ("UVFIO_TEST_E1000_B", "e1000"),
    ("UVFIO_TEST_E1000E_A", "e1000e"),
    ("UVFIO_TEST_E1000E_B", "e1000e"),
    ("UVFIO_TEST_NVME", "nvme"),
    ("UVFIO_TEST_TESTDEV", "pci-testdev"),
];

/// The PCI address (`0000:00:03.0`) of the test device in environment variable `var`, e.g.
/// `device("UVFIO_TEST_EDU")`. Panics when the variable is missing or malformed.
pub fn device(var: &str) -> String {
    let addr = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set; {HOW_TO_RUN}"));
    assert!(
        is_pci_address(&addr),
        "{var}={addr:?} is not a PCI address like 0000:00:03.0"
    );
    assert!(
        sysfs_path(&addr).exists(),
        "{var}={addr}: no /sys/bus/pci/devices/{addr}"
    );
    addr
}

/// All devices the VM bound to vfio-pci (`UVFIO_TEST_DEVICES`). Panics outside the VM.
pub fn devices() -> Vec<String> {
    let list = std::env::var("UVFIO_TEST_DEVICES")
        .unwrap_or_else(|_| panic!("UVFIO_TEST_DEVICES is not set; {HOW_TO_RUN}"));
    let devices: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
    assert!(!devices.is_empty(), "UVFIO_TEST_DEVICES is empty");
    devices
}

/// `/sys/bus/pci/devices/<addr>`.
pub fn sysfs_path(addr: &str) -> PathBuf {
    PathBuf::from("/sys/bus/pci/devices").join(addr)
}

/// The name of the driver bound to `addr`, if any.
pub fn driver(addr: &str) -> Option<String> {
    let link = std::fs::read_link(sysfs_path(addr).join("driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The IOMMU group number of `addr`, from `/sys/bus/pci/devices/<addr>/iommu_group`.
pub fn iommu_group(addr: &str) -> u32 {
    let link = std::fs::read_link(sysfs_path(addr).join("iommu_group"))
        .unwrap_or_else(|e| panic!("{addr} has no iommu_group link (is the IOMMU on?): {e}"));
    let name = link.file_name().expect("iommu_group link has a name");
    name.to_string_lossy()
        .parse()
        .unwrap_or_else(|e| panic!("{addr}: iommu group {name:?} is not a number: {e}"))
}

/// Opens `/dev/vfio/<group of addr>` read-write (`/dev/vfio/noiommu-<group>` in no-IOMMU
/// mode).
pub fn open_group(addr: &str) -> File {
    let group = iommu_group(addr);
    let path = if noiommu() {
        format!("/dev/vfio/noiommu-{group}")
    } else {
        format!("/dev/vfio/{group}")
    };
    File::options()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {path} (group of {addr}): {e}"))
}

/// Opens the VFIO container `/dev/vfio/vfio` read-write.
pub fn open_container() -> File {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/vfio/vfio")
        .unwrap_or_else(|e| panic!("open /dev/vfio/vfio: {e}; {HOW_TO_RUN}"))
}

fn is_pci_address(s: &str) -> bool {
    // dddd:bb:ss.f in hex
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// The number of open fds of this process (`/proc/self/fd`), for leak checks.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The IOMMU mode the tests run in: `UVFIO_IOMMU_MODE`, by the kernel selftests' names
/// (`vfio_type1_iommu`, `vfio_type1v2_iommu`, `iommufd_compat_type1`,
/// `iommufd_compat_type1v2`, `iommufd`) or `noiommu`. When unset: `noiommu` in a VM booted
/// without an IOMMU (`UVFIO_VM_IOMMU=none`), else `vfio_type1v2_iommu`. A mode the kernel
/// lacks makes the tests fail when they open their space, never pass.
pub fn mode() -> IommuMode {
    match std::env::var("UVFIO_IOMMU_MODE") {
        Ok(name) => name
            .parse()
            .unwrap_or_else(|e| panic!("UVFIO_IOMMU_MODE: {e}")),
        Err(_) if std::env::var("UVFIO_VM_IOMMU").as_deref() == Ok("none") => IommuMode::NoIommu,
        Err(_) => IommuMode::VfioType1v2,
    }
}

/// Whether the tests run in VFIO's no-IOMMU mode.
pub fn noiommu() -> bool {
    mode() == IommuMode::NoIommu
}

/// A fresh DMA space of the test mode ([`mode`]).
pub fn space() -> DmaSpace {
    let mode = mode();
    if mode == IommuMode::NoIommu {
        // SAFETY: the hw tests run as root in a throwaway VM booted for no-IOMMU mode; every
        // DMA they start targets memory of a live DmaBuffer (or a device's own buffer), and
        // each waits for its DMA to finish before the buffer is dropped.
        return unsafe { DmaSpace::open_noiommu() }
            .unwrap_or_else(|e| panic!("DmaSpace::open_noiommu(): {e}"));
    }
    DmaSpace::open(mode).unwrap_or_else(|e| panic!("DmaSpace::open({mode}): {e}"))
}

/// Whether a test that needs an IOMMU runs: it is skipped visibly in no-IOMMU mode, with
/// `reason` (what the test checks that only an IOMMU gives).
pub fn needs_iommu(test: &str, reason: &str) -> bool {
    runs_in_mode(test, |m| m != IommuMode::NoIommu, reason)
}

/// Opens the PCI device at `addr` in a fresh DMA space of the test mode: through its group in
/// a container (with the mode's type1 model) or through its cdev attached to an IOAS.
pub fn open_in_space(addr: &str) -> (DmaSpace, uvfio::Device) {
    let space = space();
    let device = space
        .open_pci_device(&addr.parse().expect("PCI address"))
        .unwrap_or_else(|e| panic!("open {addr} in {}: {e}", space.mode()));
    (space, device)
}

/// Opens the PCI device at `addr` in a fresh DMA space of the test mode (see
/// [`open_in_space`]); the device keeps its container or IOAS alive.
pub fn open_device(addr: &str) -> uvfio::Device {
    open_in_space(addr).1
}

/// For tests of the container and group API: a fresh container of the test mode
/// (`/dev/vfio/vfio`, or iommufd's compatibility container) and the type1 model the mode
/// sets. In `iommufd` mode, where devices have no container, the test is skipped visibly.
pub fn container(test: &str) -> Option<(uvfio::Container, uvfio::IommuType)> {
    let mode = mode();
    if mode == IommuMode::NoIommu {
        say(&format!(
            "SKIPPED {test}: a test of the type1 container API; a no-IOMMU container has only \
             the noiommu model (tests/hw/noiommu.rs tests it)"
        ));
        return None;
    }
    let Some(iommu) = mode.iommu_type() else {
        say(&format!(
            "SKIPPED {test}: a test of the container/group API, and mode {mode} has no container"
        ));
        return None;
    };
    let container = if mode.needs_iommufd() {
        uvfio::Container::iommufd_compat()
    } else {
        uvfio::Container::new()
    }
    .unwrap_or_else(|e| panic!("the container of mode {mode}: {e}"));
    Some((container, iommu))
}

/// Whether the test runs in the test mode: it does when `applies(mode)`, else it is skipped
/// visibly with `reason`.
pub fn runs_in_mode(test: &str, applies: impl FnOnce(IommuMode) -> bool, reason: &str) -> bool {
    let mode = mode();
    if applies(mode) {
        return true;
    }
    say(&format!("SKIPPED {test} in mode {mode}: {reason}"));
    false
}

/// The kernel flavour the VM booted, as the guest exports it (`UVFIO_VM_FLAVOR`): `debian`
/// (Debian's stock kernel), `full` (the project's kernel) or `custom` (`UVFIO_VM_KERNEL`).
pub fn flavor() -> String {
    let flavor = std::env::var("UVFIO_VM_FLAVOR")
        .unwrap_or_else(|_| panic!("UVFIO_VM_FLAVOR is not set; {HOW_TO_RUN}"));
    assert!(
        matches!(flavor.as_str(), "debian" | "full" | "custom"),
        "UVFIO_VM_FLAVOR={flavor:?}: want debian, full or custom"
    );
    flavor
}

/// The IOMMU mode of the VM (`UVFIO_VM_IOMMU`): `vtd` or `none`.
pub fn vm_iommu() -> String {
    let mode = std::env::var("UVFIO_VM_IOMMU")
        .unwrap_or_else(|_| panic!("UVFIO_VM_IOMMU is not set; {HOW_TO_RUN}"));
    assert!(
        matches!(mode.as_str(), "vtd" | "none"),
        "UVFIO_VM_IOMMU={mode:?}: want vtd or none"
    );
    mode
}

/// Prints a line past the test harness's output capture, so that it shows even when the test
/// passes (`eprintln!` is captured; a direct write to the stderr handle is not).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether a test of `feature`, which only the project's kernel is guaranteed to have, runs
/// here. On the `full` flavour always: a missing feature must then fail the test. On `debian`
/// the test is skipped, visibly, with the reason; on a `custom` kernel it runs when `present`.
pub fn needs_full(test: &str, feature: &str, present: bool) -> bool {
    match flavor().as_str() {
        "full" => true,
        "custom" if present => true,
        other => {
            say(&format!(
                "SKIPPED {test}: needs {feature}, which the {other} flavour's kernel does not have (run with UVFIO_VM_FLAVOR=full)"
            ));
            false
        }
    }
}

/// `needs_full`, and the VM must also run in IOMMU mode `mode` (`vtd` or `none`); otherwise the
/// test is skipped visibly, saying which mode it needs.
pub fn needs_full_in_mode(test: &str, feature: &str, present: bool, mode: &str) -> bool {
    if !needs_full(test, feature, present) {
        return false;
    }
    let here = vm_iommu();
    if here != mode {
        say(&format!(
            "SKIPPED {test}: {feature} needs UVFIO_VM_IOMMU={mode}, this VM runs with {here}"
        ));
        return false;
    }
    true
}

/// One edu DMA between `iova` (an IOVA, or a physical address in no-IOMMU mode) and edu's
/// buffer at 0x40000 (at most 4095 bytes: see tests/vm/README.md), through BAR0 mapped by the
/// library, finished by polling.
pub fn edu_dma(device: &uvfio::Device, iova: u64, len: u64, to_ram: bool) {
    assert!(len > 0 && len < 4096 && iova + len <= 1 << 28);
    let bar0 = device
        .region(uvfio::device::RegionIndex::BAR0)
        .expect("BAR0");
    let (src, dst) = if to_ram {
        (0x40000, iova)
    } else {
        (iova, 0x40000)
    };
    bar0.write_u64(0x80, src).unwrap();
    bar0.write_u64(0x88, dst).unwrap();
    bar0.write_u64(0x90, len).unwrap();
    bar0.write_u64(0x98, 1 | (u64::from(to_ram) << 1)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while bar0.read_u64(0x98).unwrap() & 1 != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "edu DMA did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// The kernel log so far (`/dev/kmsg`, read without blocking), one record a line; empty when
/// it cannot be read (then a test looking for a record fails on its absence).
pub fn kernel_log() -> Vec<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => lines.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()),
            // EPIPE: records were overwritten while reading; go on from the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break, // WouldBlock: the end; anything else: what was read so far
        }
    }
    lines
}
