//! Unit tests of `sysfs.rs`, against fake sysfs trees.

use super::*;
use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fake `/sys` in a fresh temporary directory, removed on drop.
struct FakeSysfs {
    root: PathBuf,
}

impl FakeSysfs {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "uvfio-sysfs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        for drv in ["e1000", "vfio-pci", "pcieport"] {
            fs::create_dir_all(root.join("bus/pci/drivers").join(drv)).unwrap();
            fs::write(root.join("bus/pci/drivers").join(drv).join("unbind"), "").unwrap();
        }
        fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
        fs::create_dir_all(root.join("devices/pci0000:00")).unwrap();
        fs::write(root.join("bus/pci/drivers_probe"), "").unwrap();
        FakeSysfs { root }
    }

    /// Adds a function the way sysfs lays it out: its directory under `devices/`, the
    /// `bus/pci/devices` link, its `iommu_group` link and the group's link back.
    fn add(&self, addr: &str, group: u32, driver: Option<&str>, ids: (&str, &str)) {
        let dev = self.root.join("devices/pci0000:00").join(addr);
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("vendor"), format!("{}\n", ids.0)).unwrap();
        fs::write(dev.join("device"), format!("{}\n", ids.1)).unwrap();
        fs::write(dev.join("driver_override"), "(null)\n").unwrap();
        symlink(
            format!("../../../devices/pci0000:00/{addr}"),
            self.root.join("bus/pci/devices").join(addr),
        )
        .unwrap();
        let group_dir = self
            .root
            .join(format!("kernel/iommu_groups/{group}/devices"));
        fs::create_dir_all(&group_dir).unwrap();
        symlink(
            format!("../../../kernel/iommu_groups/{group}"),
            dev.join("iommu_group"),
        )
        .unwrap();
        symlink(
            format!("../../../../devices/pci0000:00/{addr}"),
            group_dir.join(addr),
        )
        .unwrap();
        set_driver(&self.root, addr, driver);
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn sysfs(&self) -> Sysfs {
        Sysfs::with_root(&self.root)
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn set_driver(root: &Path, addr: &str, driver: Option<&str>) {
    let link = root.join("devices/pci0000:00").join(addr).join("driver");
    let _ = fs::remove_file(&link);
    if let Some(d) = driver {
        symlink(format!("../../../bus/pci/drivers/{d}"), link).unwrap();
    }
}

type Log = Arc<Mutex<Vec<(String, String)>>>;

/// A sysfs handle whose writes are logged (path relative to the root, value) and answered
/// the way the kernel would: `unbind` removes the `driver` link, `drivers_probe` binds an
/// unbound device to its `driver_override` if set, else to `native`.
fn simulated(fake: &FakeSysfs, native: &'static str) -> (Sysfs, Log) {
    let log: Log = Arc::default();
    let root = fake.root.clone();
    let seen = Arc::clone(&log);
    let mut sysfs = fake.sysfs();
    sysfs.on_write = Some(Arc::new(move |path: &Path, value: &str| {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        seen.lock().unwrap().push((rel.clone(), value.to_owned()));
        let dev = root.join("devices/pci0000:00").join(value);
        if rel.ends_with("/unbind") {
            set_driver(&root, value, None);
        } else if rel == "bus/pci/drivers_probe" && !dev.join("driver").exists() {
            let ov = fs::read_to_string(dev.join("driver_override")).unwrap();
            let ov = ov.trim_end();
            let target = if ov.is_empty() || ov == "(null)" {
                native
            } else {
                ov
            };
            set_driver(&root, value, Some(target));
        }
    }));
    (sysfs, log)
}

fn take(log: &Log) -> Vec<(String, String)> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn w(path: &str, value: &str) -> (String, String) {
    (path.to_owned(), value.to_owned())
}

const ADDR: &str = "0000:00:03.0";

fn addr() -> PciAddress {
    ADDR.parse().unwrap()
}

fn sysfs_parts(e: &Error) -> (&'static str, &Path, Errno) {
    match e {
        Error::Sysfs { op, path, errno } => (op, path, *errno),
        other => panic!("not a sysfs error: {other:?}"),
    }
}

#[test]
fn default_root_is_sys() {
    assert_eq!(Sysfs::new().root(), Path::new("/sys"));
    assert_eq!(
        Sysfs::default().device_dir(&addr()),
        Path::new("/sys/bus/pci/devices/0000:00:03.0")
    );
}

#[test]
fn reads_group_driver_and_ids() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let sysfs = fake.sysfs();
    assert_eq!(sysfs.iommu_group(&addr()).unwrap(), 7);
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
    assert_eq!(sysfs.vendor_device(&addr()).unwrap(), (0x8086, 0x100e));
    set_driver(&fake.root, ADDR, None);
    assert_eq!(sysfs.driver(&addr()).unwrap(), None);
}

#[test]
fn missing_things_are_errors_that_name_the_path() {
    let fake = FakeSysfs::new();
    let sysfs = fake.sysfs();
    let absent: PciAddress = "0000:00:09.0".parse().unwrap();
    let dev = fake.root.join("bus/pci/devices/0000:00:09.0");

    let e = sysfs.iommu_group(&absent).unwrap_err();
    assert_eq!(
        sysfs_parts(&e),
        ("resolving", &*dev.join("iommu_group"), Errno::ENOENT)
    );
    assert!(e.to_string().contains("0000:00:09.0/iommu_group"), "{e}");

    let e = sysfs.driver(&absent).unwrap_err();
    assert_eq!(sysfs_parts(&e), ("resolving", &*dev, Errno::ENOENT));

    let e = sysfs.vendor_device(&absent).unwrap_err();
    assert_eq!(
        sysfs_parts(&e),
        ("reading", &*dev.join("vendor"), Errno::ENOENT)
    );

    let e = sysfs.group_devices(42).unwrap_err();
    let dir = fake.root.join("kernel/iommu_groups/42/devices");
    assert_eq!(sysfs_parts(&e), ("listing", &*dir, Errno::ENOENT));
    assert!(sysfs.non_vfio_members(42).is_err());
}

#[test]
fn unparsable_files_are_eproto() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, None, ("8086", "0x100e"));
    let dev = fake.root.join("devices/pci0000:00").join(ADDR);
    let sysfs = fake.sysfs();
    let e = sysfs.vendor_device(&addr()).unwrap_err();
    assert_eq!(sysfs_parts(&e).0, "parsing");
    assert_eq!(sysfs_parts(&e).2, Errno::EPROTO);
    assert!(sysfs_parts(&e).1.ends_with("vendor"));
    for bad in ["0x", "0x12345", "0x+123", "0xzz"] {
        fs::write(dev.join("vendor"), bad).unwrap();
        assert!(sysfs.vendor_device(&addr()).is_err(), "{bad}");
    }
    fs::write(dev.join("vendor"), "0xABcd").unwrap();
    assert_eq!(sysfs.vendor_device(&addr()).unwrap(), (0xabcd, 0x100e));

    fs::remove_file(dev.join("iommu_group")).unwrap();
    symlink("../../../kernel/iommu_groups/+7", dev.join("iommu_group")).unwrap();
    let e = sysfs.iommu_group(&addr()).unwrap_err();
    assert_eq!(sysfs_parts(&e).0, "parsing");
    assert!(sysfs_parts(&e).1.ends_with("iommu_group"));
}

#[test]
fn lists_group_members_and_those_not_on_vfio_pci() {
    let fake = FakeSysfs::new();
    fake.add("0000:00:1c.0", 7, Some("pcieport"), ("0x8086", "0xa110"));
    fake.add("0000:01:00.1", 7, None, ("0x10de", "0x10f0"));
    fake.add("0000:01:00.0", 7, Some("vfio-pci"), ("0x10de", "0x1b80"));
    fake.add("0000:01:00.2", 7, Some("pci-stub"), ("0x10de", "0x10f1"));
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    fake.add("0000:00:04.0", 8, Some("e1000"), ("0x8086", "0x100e"));
    let sysfs = fake.sysfs();
    assert_eq!(
        sysfs.group_devices(7).unwrap(),
        [
            "0000:00:03.0",
            "0000:00:1c.0",
            "0000:01:00.0",
            "0000:01:00.1",
            "0000:01:00.2"
        ]
    );
    let member = |device: &str, driver: Option<&str>| GroupMember {
        device: device.into(),
        driver: driver.map(Into::into),
    };
    assert_eq!(
        sysfs.non_vfio_members(7).unwrap(),
        [member("0000:00:03.0", Some("e1000")),]
    );
    let e = Error::GroupNotViable {
        group: 7,
        members: sysfs.non_vfio_members(7).unwrap(),
        errno: Errno::EPERM,
    };
    assert!(
        e.to_string().contains("0000:00:03.0 (bound to e1000)"),
        "{e}"
    );
    assert!(!e.to_string().contains("pcieport"), "{e}");
}

#[test]
fn bind_and_drop_write_the_right_files_in_order() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");
    let dev = "bus/pci/devices/0000:00:03.0";

    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    assert_eq!(
        take(&log),
        [
            w(&format!("{dev}/driver_override"), "vfio-pci"),
            w("bus/pci/drivers/e1000/unbind", ADDR),
            w("bus/pci/drivers_probe", ADDR),
        ]
    );
    assert_eq!(fake.read(&format!("{dev}/driver_override")), "vfio-pci");
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
    assert_eq!(binding.previous_driver(), Some("e1000"));
    assert_eq!(binding.address(), addr());
    assert!(binding.restores());

    drop(binding);
    assert_eq!(
        take(&log),
        [
            w("bus/pci/drivers/vfio-pci/unbind", ADDR),
            w(&format!("{dev}/driver_override"), "e1000"),
            w("bus/pci/drivers_probe", ADDR),
            w(&format!("{dev}/driver_override"), "\n"),
        ]
    );
    assert_eq!(fake.read(&format!("{dev}/driver_override")), "\n");
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
}

#[test]
fn a_device_moved_off_vfio_pci_goes_back_to_vfio_pci() {
    // As the NIC benchmark does: a device the harness bound to vfio-pci (override set) is
    // lent to its kernel driver, then given back. Re-probing with the override cleared would
    // hand it to e1000 (its native driver); the restore pins vfio-pci and puts the override
    // back as it was.
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("vfio-pci"), ("0x8086", "0x100e"));
    let dev = "bus/pci/devices/0000:00:03.0";
    fs::write(fake.root.join(dev).join("driver_override"), "vfio-pci\n").unwrap();
    let (sysfs, log) = simulated(&fake, "e1000");

    let binding = sysfs.bind_driver(&addr(), "e1000").unwrap();
    assert_eq!(binding.driver(), "e1000");
    assert_eq!(binding.previous_driver(), Some("vfio-pci"));
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
    take(&log);
    binding.release().unwrap();
    assert_eq!(
        take(&log),
        [
            w("bus/pci/drivers/e1000/unbind", ADDR),
            w(&format!("{dev}/driver_override"), "vfio-pci"),
            w("bus/pci/drivers_probe", ADDR),
            w(&format!("{dev}/driver_override"), "vfio-pci"),
        ]
    );
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
    assert_eq!(fake.read(&format!("{dev}/driver_override")), "vfio-pci");
}

#[test]
fn a_vfio_pci_binding_whose_group_is_open_is_not_unbound() {
    // The kernel's unbind of vfio-pci waits for every VFIO fd of the device to close: with
    // the group open, release must refuse without writing `unbind`, not hang.
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");
    let nodes = fake.root.join("dev/vfio");
    fs::create_dir_all(&nodes).unwrap();

    // A group node that opens: nobody holds the group; the restore goes ahead.
    fs::write(nodes.join("7"), "").unwrap();
    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    take(&log);
    binding.release().unwrap();
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));

    // A node that cannot be opened (a directory here; EBUSY on a real, open group):
    // nothing is written, the device stays on vfio-pci, and the error says why.
    fs::remove_file(nodes.join("7")).unwrap();
    fs::create_dir(nodes.join("noiommu-7")).unwrap();
    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    take(&log);
    let e = binding.release().unwrap_err();
    let (op, path, errno) = sysfs_parts(&e);
    assert!(op.starts_with("unbinding"), "{e}");
    assert_eq!((path, errno), (&*nodes.join("noiommu-7"), Errno::EISDIR));
    assert!(take(&log).is_empty(), "nothing written");
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
}

#[test]
fn release_restores_once_and_reports_errors() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");

    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    take(&log);
    binding.release().unwrap();
    assert_eq!(take(&log).len(), 4);
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));

    // A failing step is reported, and the others still run.
    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    take(&log);
    let unbind = fake.root.join("bus/pci/drivers/vfio-pci/unbind");
    fs::remove_file(&unbind).unwrap();
    let e = binding.release().unwrap_err();
    assert_eq!(sysfs_parts(&e), ("writing", &*unbind, Errno::ENOENT));
    let written: Vec<_> = take(&log).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        written,
        [
            "bus/pci/devices/0000:00:03.0/driver_override",
            "bus/pci/drivers_probe",
            "bus/pci/devices/0000:00:03.0/driver_override",
        ]
    );
}

#[test]
fn already_bound_to_vfio_pci_writes_nothing() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("vfio-pci"), ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");
    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    assert!(!binding.restores());
    assert_eq!(binding.previous_driver(), Some("vfio-pci"));
    drop(binding);
    assert_eq!(take(&log), []);
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
}

#[test]
fn a_device_without_a_driver_is_left_without_one() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, None, ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");
    let dev = "bus/pci/devices/0000:00:03.0";
    let binding = sysfs.bind_vfio_pci(&addr()).unwrap();
    assert_eq!(
        take(&log),
        [
            w(&format!("{dev}/driver_override"), "vfio-pci"),
            w("bus/pci/drivers_probe", ADDR),
        ]
    );
    drop(binding);
    assert_eq!(
        take(&log),
        [
            w("bus/pci/drivers/vfio-pci/unbind", ADDR),
            w(&format!("{dev}/driver_override"), "\n"),
        ]
    );
    assert_eq!(sysfs.driver(&addr()).unwrap(), None);
}

#[test]
fn keep_leaves_the_device_on_vfio_pci() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");
    sysfs.bind_vfio_pci(&addr()).unwrap().keep();
    assert_eq!(take(&log).len(), 3);
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("vfio-pci"));
}

/// In a plain fake tree nothing moves the `driver` link, so vfio-pci never "takes" the
/// device: binding must fail on the check, name `drivers_probe`, and undo its writes.
#[test]
fn a_probe_that_does_not_bind_vfio_pci_is_an_error_and_is_undone() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let sysfs = fake.sysfs();
    let e = sysfs.bind_vfio_pci(&addr()).unwrap_err();
    let probe = fake.root.join("bus/pci/drivers_probe");
    assert_eq!(sysfs_parts(&e).1, &*probe);
    assert_eq!(sysfs_parts(&e).2, Errno::ENODEV);
    assert!(
        e.to_string().contains("is the vfio-pci module loaded?"),
        "{e}"
    );
    assert_eq!(fake.read("bus/pci/drivers/e1000/unbind"), ADDR);
    assert_eq!(fake.read("bus/pci/drivers_probe"), ADDR);
    assert_eq!(
        fake.read("bus/pci/devices/0000:00:03.0/driver_override"),
        "\n"
    );
    assert_eq!(fake.read("bus/pci/drivers/vfio-pci/unbind"), "");
}

#[test]
fn a_failed_write_stops_the_binding_and_names_the_file() {
    let fake = FakeSysfs::new();
    fake.add(ADDR, 7, Some("e1000"), ("0x8086", "0x100e"));
    let (sysfs, log) = simulated(&fake, "e1000");
    let ov = fake
        .root
        .join("bus/pci/devices/0000:00:03.0/driver_override");
    fs::remove_file(&ov).unwrap();
    let e = sysfs.bind_vfio_pci(&addr()).unwrap_err();
    assert_eq!(sysfs_parts(&e), ("writing", &*ov, Errno::ENOENT));
    assert!(e.to_string().starts_with("writing "), "{e}");
    assert_eq!(take(&log), []);
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
    assert!(!ov.exists(), "writes must not create attributes");

    // Unbinding fails: the device is re-probed with its driver pinned, then the override is
    // cleared again.
    fs::write(&ov, "(null)\n").unwrap();
    let unbind = fake.root.join("bus/pci/drivers/e1000/unbind");
    fs::remove_file(&unbind).unwrap();
    let e = sysfs.bind_vfio_pci(&addr()).unwrap_err();
    assert_eq!(sysfs_parts(&e), ("writing", &*unbind, Errno::ENOENT));
    let dev = "bus/pci/devices/0000:00:03.0";
    assert_eq!(
        take(&log),
        [
            w(&format!("{dev}/driver_override"), "vfio-pci"),
            w(&format!("{dev}/driver_override"), "e1000"),
            w("bus/pci/drivers_probe", ADDR),
            w(&format!("{dev}/driver_override"), "\n"),
        ]
    );
    assert_eq!(sysfs.driver(&addr()).unwrap().as_deref(), Some("e1000"));
}

#[test]
fn io_errors_keep_their_errno() {
    let path = Path::new("/sys/x");
    let e = sysfs_error("reading", path, &io::Error::from_raw_os_error(libc::EACCES));
    assert_eq!(sysfs_parts(&e), ("reading", path, Errno::EACCES));
    let e = sysfs_error("reading", path, &io::Error::other("no errno"));
    assert_eq!(e.errno(), Errno::EIO);
}
