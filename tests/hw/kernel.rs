//! What the emulated host's kernel offers, by flavour and IOMMU mode (tests/vm/README.md):
//! the guest says where it runs; the `full` flavour has iommufd, the VFIO device cdev, the mdev
//! samples and (with `UVFIO_VM_IOMMU=none`) no-IOMMU groups. On `debian` the tests of those
//! features are skipped with the reason printed; on `full` a missing feature fails them.
//!
//! The iommufd and cdev checks use raw ioctls: they check the environment, not the crate.

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::common;

/// `_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + n)`, `IOMMUFD_TYPE = ';'`, `IOMMUFD_CMD_BASE = 0x80`
/// (`<linux/iommufd.h>` of 6.12).
const fn iommufd_io(n: libc::c_ulong) -> libc::c_ulong {
    ((b';' as libc::c_ulong) << 8) | (0x80 + n)
}
const IOMMU_DESTROY: libc::c_ulong = iommufd_io(0);
const IOMMU_IOAS_ALLOC: libc::c_ulong = iommufd_io(1);

#[repr(C)]
struct IommuIoasAlloc {
    size: u32,
    flags: u32,
    out_ioas_id: u32,
}

#[repr(C)]
struct IommuDestroy {
    size: u32,
    id: u32,
}

/// The mdev instances the guest's init creates on the full flavour (tests/vm/devices.sh).
const MDEV_VARS: &[(&str, &str)] = &[
    ("UVFIO_TEST_MTTY_A", "mtty-2"),
    ("UVFIO_TEST_MTTY_B", "mtty-2"),
    ("UVFIO_TEST_MDPY", "mdpy-xga"),
    ("UVFIO_TEST_MBOCHS", "mbochs-medium"),
];

fn read_trimmed(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn iommus() -> Vec<String> {
    std::fs::read_dir("/sys/class/iommu")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The group number behind a sysfs device directory's `iommu_group` link.
fn group_of(sysfs_dir: &Path) -> u32 {
    let link = std::fs::read_link(sysfs_dir.join("iommu_group"))
        .unwrap_or_else(|e| panic!("{}: no iommu_group link: {e}", sysfs_dir.display()));
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}: bad iommu_group link {link:?}", sysfs_dir.display()))
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn the_guest_says_where_it_runs() {
    let flavor = common::flavor();
    let mode = common::vm_iommu();
    let release = std::env::var("UVFIO_VM_KERNEL_RELEASE").expect("UVFIO_VM_KERNEL_RELEASE");
    assert_eq!(release, read_trimmed("/proc/sys/kernel/osrelease"));
    let iommus = iommus();
    match mode.as_str() {
        "vtd" => assert!(
            iommus.iter().any(|i| i.starts_with("dmar")),
            "IOMMU mode vtd but /sys/class/iommu has {iommus:?}"
        ),
        // iommufd's selftest mock (iommufd_selftest_iommu.0) may be there; no VT-d unit may.
        _ => assert!(
            !iommus.iter().any(|i| i.starts_with("dmar")),
            "IOMMU mode none but /sys/class/iommu has {iommus:?}"
        ),
    }
    match flavor.as_str() {
        // The project's kernel carries its config (IKCONFIG_PROC); Debian's does not.
        "full" => assert!(
            Path::new("/proc/config.gz").exists(),
            "the full flavour's kernel has /proc/config.gz"
        ),
        "debian" => assert!(
            release.ends_with("-amd64"),
            "a Debian kernel's release ends in -amd64: {release}"
        ),
        _ => {}
    }
    common::say(&format!(
        "kernel: flavour {flavor}, IOMMU mode {mode}, release {release}"
    ));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iommufd_allocates_and_destroys_an_ioas() {
    let present = Path::new("/dev/iommu").exists();
    if !common::needs_full(
        "iommufd_allocates_and_destroys_an_ioas",
        "iommufd (/dev/iommu)",
        present,
    ) {
        return;
    }
    let meta = std::fs::metadata("/dev/iommu").expect("/dev/iommu exists on the full flavour");
    assert!(
        meta.file_type().is_char_device(),
        "/dev/iommu is a character device"
    );
    let iommufd = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/iommu")
        .expect("open /dev/iommu");
    let mut alloc = IommuIoasAlloc {
        size: std::mem::size_of::<IommuIoasAlloc>() as u32,
        flags: 0,
        out_ioas_id: 0,
    };
    // SAFETY: IOMMU_IOAS_ALLOC reads and writes a struct iommu_ioas_alloc of `size` bytes.
    let rc = unsafe { libc::ioctl(iommufd.as_raw_fd(), IOMMU_IOAS_ALLOC, &mut alloc) };
    assert_eq!(
        rc,
        0,
        "IOMMU_IOAS_ALLOC: {}",
        std::io::Error::last_os_error()
    );
    assert_ne!(alloc.out_ioas_id, 0, "an IOAS id is never 0");
    let destroy = IommuDestroy {
        size: std::mem::size_of::<IommuDestroy>() as u32,
        id: alloc.out_ioas_id,
    };
    // SAFETY: IOMMU_DESTROY reads a struct iommu_destroy of `size` bytes.
    let rc = unsafe { libc::ioctl(iommufd.as_raw_fd(), IOMMU_DESTROY, &destroy) };
    assert_eq!(rc, 0, "IOMMU_DESTROY: {}", std::io::Error::last_os_error());
    // A second destroy of the same id is refused: the first one really happened.
    // SAFETY: as above.
    let rc = unsafe { libc::ioctl(iommufd.as_raw_fd(), IOMMU_DESTROY, &destroy) };
    assert_eq!(rc, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOENT)
    );
}

/// `/sys/bus/pci/devices/<addr>/vfio-dev/vfioN`, if the device has one.
fn vfio_dev_dir(addr: &str) -> Option<PathBuf> {
    let dir = common::sysfs_path(addr).join("vfio-dev");
    let entry = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("vfio"))?;
    Some(entry.path())
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn every_bound_device_has_a_cdev() {
    let devices = common::devices();
    let present = vfio_dev_dir(&devices[0]).is_some();
    if !common::needs_full_in_mode(
        "every_bound_device_has_a_cdev",
        "the VFIO device cdev (/dev/vfio/devices/vfioN)",
        present,
        "vtd",
    ) {
        return;
    }
    for addr in &devices {
        let dir =
            vfio_dev_dir(addr).unwrap_or_else(|| panic!("{addr}: no vfio-dev/vfioN in sysfs"));
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let node = Path::new("/dev/vfio/devices").join(&name);
        let meta =
            std::fs::metadata(&node).unwrap_or_else(|e| panic!("{addr}: {}: {e}", node.display()));
        assert!(
            meta.file_type().is_char_device(),
            "{} is a character device",
            node.display()
        );
        // The node is the device sysfs says it is.
        let dev = read_trimmed(dir.join("dev"));
        let (major, minor) = dev.split_once(':').expect("major:minor");
        let rdev = meta.rdev();
        assert_eq!(
            (libc::major(rdev).to_string(), libc::minor(rdev).to_string()),
            (major.to_owned(), minor.to_owned()),
            "{addr}: {} is not {dev}",
            node.display()
        );
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn each_mdev_opens_through_its_group() {
    let present = MDEV_VARS.iter().all(|(var, _)| std::env::var(var).is_ok());
    if !common::needs_full(
        "each_mdev_opens_through_its_group",
        "the mdev sample drivers",
        present,
    ) {
        return;
    }
    let test = "each_mdev_opens_through_its_group";
    if !common::runs_in_mode(
        test,
        |mode| mode.uses_groups() && mode.iommu_type().is_some(),
        "needs a type1 container (the mdevs' cdev path is \
         iommufd::each_mdev_opens_through_its_cdev; a no-IOMMU host offers no type1)",
    ) {
        return;
    }
    for (var, mdev_type) in MDEV_VARS {
        let path = PathBuf::from(
            std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set on the full flavour")),
        );
        let uuid = path.file_name().unwrap().to_string_lossy().into_owned();
        let type_link = std::fs::read_link(path.join("mdev_type")).expect("mdev_type link");
        assert_eq!(
            type_link.file_name().unwrap().to_string_lossy(),
            *mdev_type,
            "{var}: the mdev's type"
        );
        let group = uvfio::Group::open(group_of(&path)).unwrap_or_else(|e| panic!("{var}: {e}"));
        assert!(
            group.is_viable().expect("status"),
            "{var}: its group is viable"
        );
        let (container, iommu) = common::container(test).expect("a container mode");
        group.set_container(&container).expect("set_container");
        container.set_iommu(iommu).expect("set_iommu");
        let device = group
            .open_device(&uuid)
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        // The samples all present themselves as PCI devices with a config space region.
        assert!(
            device.flags().contains(uvfio::device::DeviceFlags::PCI),
            "{var}: flags {:?}",
            device.flags()
        );
        assert!(device.info().num_regions > 7, "{var}: {:?}", device.info());
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn noiommu_mode_gives_noiommu_groups() {
    let devices = common::devices();
    let present = Path::new("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode").exists();
    if !common::needs_full_in_mode(
        "noiommu_mode_gives_noiommu_groups",
        "VFIO's no-IOMMU mode",
        present,
        "none",
    ) {
        return;
    }
    for addr in &devices {
        let node = format!("/dev/vfio/noiommu-{}", common::iommu_group(addr));
        let meta = std::fs::metadata(&node).unwrap_or_else(|e| panic!("{addr}: {node}: {e}"));
        assert!(
            meta.file_type().is_char_device(),
            "{node} is a character device"
        );
    }
    let container = uvfio::Container::new().expect("container");
    assert!(
        container
            .check_extension(uvfio::Extension::NoIommu)
            .expect("CHECK_EXTENSION"),
        "the container offers VFIO_NOIOMMU_IOMMU in no-IOMMU mode"
    );
    // The group opens by its no-IOMMU node (the node check accepts `noiommu-N`), and the safe
    // set_iommu refuses the mode: only the unsafe call selects it.
    let id = common::iommu_group(&devices[0]);
    let group = uvfio::Group::open_path(id, format!("/dev/vfio/noiommu-{id}")).expect("group");
    group.set_container(&container).expect("SET_CONTAINER");
    let err = container.set_iommu(uvfio::IommuType::NoIommu).unwrap_err();
    assert!(matches!(err, uvfio::Error::InvalidArgument { .. }), "{err}");
    assert_eq!(container.iommu(), None);
    // SAFETY: no device of the group is opened, so none is given a DMA address.
    unsafe { container.set_iommu_unchecked(uvfio::IommuType::NoIommu) }.expect("SET_IOMMU");
    assert_eq!(container.iommu(), Some(uvfio::IommuType::NoIommu));
}
