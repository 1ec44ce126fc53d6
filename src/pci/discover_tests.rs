//! Unit tests of device discovery against a fake sysfs tree.

use super::*;
use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fake `/sys` (with `dev/vfio` beside it, where test builds look for nodes), removed on drop.
struct Fake {
    root: PathBuf,
}

impl Fake {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "uvfio-discover-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
        fs::create_dir_all(root.join("devices/pci0000:00")).unwrap();
        Fake { root }
    }

    /// A function laid out as sysfs does: its directory, ID and class files, the
    /// `bus/pci/devices` link, the `iommu_group` link and the group's link back, the driver.
    fn add(&self, addr: &str, group: Option<u32>, driver: Option<&str>, ids: [&str; 3]) {
        let dev = self.root.join("devices/pci0000:00").join(addr);
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("vendor"), format!("{}\n", ids[0])).unwrap();
        fs::write(dev.join("device"), format!("{}\n", ids[1])).unwrap();
        fs::write(dev.join("class"), format!("{}\n", ids[2])).unwrap();
        fs::write(dev.join("subsystem_vendor"), "0x1af4\n").unwrap();
        fs::write(dev.join("subsystem_device"), "0x1100\n").unwrap();
        symlink(
            format!("../../../devices/pci0000:00/{addr}"),
            self.root.join("bus/pci/devices").join(addr),
        )
        .unwrap();
        if let Some(group) = group {
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
        }
        if let Some(d) = driver {
            fs::create_dir_all(self.root.join("bus/pci/drivers").join(d)).unwrap();
            symlink(format!("../../../bus/pci/drivers/{d}"), dev.join("driver")).unwrap();
        }
    }

    fn dev(&self, addr: &str) -> PathBuf {
        self.root.join("devices/pci0000:00").join(addr)
    }

    fn sysfs(&self) -> Sysfs {
        Sysfs::with_root(&self.root)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn addrs(list: &[PciFunction]) -> Vec<String> {
    list.iter().map(|f| f.address.to_string()).collect()
}

/// The VM's layout in small: a usable NIC, a shared group, a non-viable group, a driverless
/// bridge in a usable group, a device on its host driver, one with no IOMMU group.
fn host() -> Fake {
    let fake = Fake::new();
    fake.add(
        "0000:00:03.0",
        Some(3),
        Some("vfio-pci"),
        ["0x8086", "0x100e", "0x020000"],
    );
    fake.add(
        "0000:00:04.0",
        Some(4),
        Some("e1000"),
        ["0x8086", "0x100e", "0x020000"],
    );
    // Shared group 5: bridge without a driver + two vfio-pci functions.
    fake.add(
        "0000:00:05.0",
        Some(5),
        None,
        ["0x1b36", "0x0001", "0x060400"],
    );
    fake.add(
        "0000:01:00.0",
        Some(5),
        Some("vfio-pci"),
        ["0x1234", "0x11e8", "0x00ff00"],
    );
    fake.add(
        "0000:01:01.0",
        Some(5),
        Some("vfio-pci"),
        ["0x1234", "0x11e8", "0x00ff00"],
    );
    // Non-viable group 6: pci-testdev on vfio-pci, watchdog on its driver.
    fake.add(
        "0000:02:00.0",
        Some(6),
        Some("vfio-pci"),
        ["0x1b36", "0x0005", "0x00ff00"],
    );
    fake.add(
        "0000:02:01.0",
        Some(6),
        Some("i6300esb"),
        ["0x8086", "0x25ab", "0x088000"],
    );
    // vfio-pci but no IOMMU group at all.
    fake.add(
        "0000:00:07.0",
        None,
        Some("vfio-pci"),
        ["0x8086", "0x10d3", "0x020000"],
    );
    fake
}

#[test]
fn describes_a_function_from_its_files() {
    let fake = host();
    // Linux 6.1 to 6.5: a vfio-dev entry but no character device.
    let vfio_dev = fake.dev("0000:00:03.0").join("vfio-dev/vfio2");
    fs::create_dir_all(&vfio_dev).unwrap();
    let f = fake.sysfs().pci_function(&a("0000:00:03.0")).unwrap();
    assert_eq!(f.cdev, None);
    fs::write(vfio_dev.join("dev"), "511:2\n").unwrap();
    let f = fake.sysfs().pci_function(&a("0000:00:03.0")).unwrap();
    assert_eq!(f.address, a("0000:00:03.0"));
    assert_eq!((f.vendor, f.device), (0x8086, 0x100e));
    assert_eq!((f.subsystem_vendor, f.subsystem_device), (0x1af4, 0x1100));
    assert_eq!(f.class, 0x020000);
    assert_eq!(f.driver.as_deref(), Some("vfio-pci"));
    assert_eq!(f.iommu_group, Some(3));
    assert!(!f.noiommu);
    assert!(f.blockers.is_empty());
    assert!(f.on_vfio_pci() && f.group_viable() && f.is_vfio_usable());
    assert_eq!(f.group_node, Some(fake.root.join("dev/vfio/3")));
    assert_eq!(f.cdev, Some(fake.root.join("dev/vfio/devices/vfio2")));
    assert_eq!(
        f.to_string(),
        "0000:00:03.0 [0200] 8086:100e (vfio-pci, group 3)"
    );
}

#[test]
fn lists_every_function_and_only_the_usable_ones() {
    let fake = host();
    let sysfs = fake.sysfs();
    let all = sysfs.pci_functions().unwrap();
    assert_eq!(
        addrs(&all),
        [
            "0000:00:03.0",
            "0000:00:04.0",
            "0000:00:05.0",
            "0000:00:07.0",
            "0000:01:00.0",
            "0000:01:01.0",
            "0000:02:00.0",
            "0000:02:01.0"
        ]
    );
    let usable = sysfs.vfio_devices().unwrap();
    assert_eq!(
        addrs(&usable),
        ["0000:00:03.0", "0000:01:00.0", "0000:01:01.0"]
    );

    let by_addr = |s: &str| all.iter().find(|f| f.address == a(s)).unwrap().clone();
    // On its host driver: has a group, which it keeps from being viable itself; no node.
    let host_nic = by_addr("0000:00:04.0");
    assert_eq!(host_nic.iommu_group, Some(4));
    assert!(!host_nic.group_viable() && !host_nic.is_vfio_usable());
    assert_eq!(host_nic.blockers[0].device, "0000:00:04.0");
    assert_eq!(host_nic.group_node, None);
    // The driverless bridge does not spoil its group.
    let bridge = by_addr("0000:00:05.0");
    assert_eq!(bridge.driver, None);
    assert!(bridge.group_viable());
    // The non-viable group: its vfio-pci member is listed, with the blocker named.
    let testdev = by_addr("0000:02:00.0");
    assert!(testdev.on_vfio_pci() && !testdev.group_viable() && !testdev.is_vfio_usable());
    assert_eq!(
        testdev.blockers,
        [GroupMember {
            device: "0000:02:01.0".into(),
            driver: Some("i6300esb".into())
        }]
    );
    assert_eq!(testdev.group_node, Some(fake.root.join("dev/vfio/6")));
    assert!(
        testdev.to_string().ends_with("group 6, not viable)"),
        "{testdev}"
    );
    // No IOMMU group: on vfio-pci but nothing to open.
    let lone = by_addr("0000:00:07.0");
    assert_eq!((lone.iommu_group, lone.group_node.clone()), (None, None));
    assert!(!lone.is_vfio_usable());
    assert!(lone.to_string().ends_with("no IOMMU group)"), "{lone}");
}

#[test]
fn noiommu_groups_have_noiommu_nodes() {
    let fake = Fake::new();
    fake.add(
        "0000:00:03.0",
        Some(0),
        Some("vfio-pci"),
        ["0x8086", "0x100e", "0x020000"],
    );
    fs::write(
        fake.root.join("kernel/iommu_groups/0/name"),
        "vfio-noiommu\n",
    )
    .unwrap();
    let f = fake.sysfs().pci_function(&a("0000:00:03.0")).unwrap();
    assert!(f.noiommu && f.is_vfio_usable());
    assert_eq!(f.group_node, Some(fake.root.join("dev/vfio/noiommu-0")));
    assert!(f.to_string().contains("no-IOMMU group 0"), "{f}");
}

#[test]
fn filters_by_vendor_device_and_class() {
    let fake = host();
    let sysfs = fake.sysfs();
    let edu = Filter::any().vendor(0x1234).device(0x11e8);
    assert_eq!(
        addrs(&sysfs.find_vfio_devices(&edu).unwrap()),
        ["0000:01:00.0", "0000:01:01.0"]
    );
    let net = Filter::any().base_class(0x02);
    assert_eq!(
        addrs(&sysfs.find_vfio_devices(&net).unwrap()),
        ["0000:00:03.0"]
    );
    let all_net: Vec<_> = sysfs
        .pci_functions()
        .unwrap()
        .into_iter()
        .filter(|f| net.matches(f))
        .collect();
    assert_eq!(
        addrs(&all_net),
        ["0000:00:03.0", "0000:00:04.0", "0000:00:07.0"]
    );
    let none = Filter::any().vendor(0x8086).device(0xffff);
    assert!(sysfs.find_vfio_devices(&none).unwrap().is_empty());
    assert_eq!(sysfs.vfio_devices().unwrap().len(), {
        let any = Filter::any();
        sysfs.find_vfio_devices(&any).unwrap().len()
    });
}

#[test]
fn parses_lspci_style_filters() {
    let p = |s: &str| s.parse::<Filter>();
    assert_eq!(
        p("8086:100e").unwrap(),
        Filter::any().vendor(0x8086).device(0x100e)
    );
    assert_eq!(p("8086:").unwrap(), Filter::any().vendor(0x8086));
    assert_eq!(p(":100e").unwrap(), Filter::any().device(0x100e));
    assert_eq!(p(":").unwrap(), Filter::any());
    assert_eq!(p("::02").unwrap(), Filter::any().base_class(0x02));
    assert_eq!(
        p("::0108").unwrap(),
        Filter::any().class(0x010800, 0xffff00)
    );
    assert_eq!(
        p("::010802").unwrap(),
        Filter::any().class(0x010802, 0xffffff)
    );
    for bad in [
        "", "8086", "12345:1", "g:1", "1:2:3", "1:2:0x02", "1:2:02:4", "1:-2",
    ] {
        let e = p(bad).unwrap_err();
        assert_eq!(e.input(), bad);
        assert!(!e.reason().is_empty());
        assert!(e.to_string().contains("invalid device filter"), "{e}");
    }
}

#[test]
fn bad_files_are_errors_that_name_the_path() {
    let fake = host();
    let class = fake.dev("0000:00:03.0").join("class");
    fs::write(&class, "0x1234567\n").unwrap();
    let e = fake.sysfs().pci_functions().unwrap_err();
    assert!(
        matches!(&e, Error::Sysfs { op: "parsing", path, errno: Errno::EPROTO } if *path == fake.root.join("bus/pci/devices/0000:00:03.0/class")),
        "{e:?}"
    );
    fs::write(&class, "0x020000\n").unwrap();
    // Subsystem IDs are optional; a missing class is not.
    fs::remove_file(fake.dev("0000:00:03.0").join("subsystem_vendor")).unwrap();
    let f = fake.sysfs().pci_function(&a("0000:00:03.0")).unwrap();
    assert_eq!(f.subsystem_vendor, 0);
    fs::remove_file(&class).unwrap();
    let e = fake.sysfs().pci_function(&a("0000:00:03.0")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Sysfs {
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{e:?}"
    );
    // No such function.
    let e = fake.sysfs().pci_function(&a("0000:00:1f.0")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Sysfs {
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{e:?}"
    );
    // A stray entry in bus/pci/devices.
    fs::write(fake.root.join("bus/pci/devices/junk"), "").unwrap();
    let e = fake.sysfs().pci_functions().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Sysfs {
                errno: Errno::EPROTO,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn no_pci_bus_is_an_error() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.root.join("bus")).unwrap();
    let e = fake.sysfs().vfio_devices().unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Sysfs {
                op: "listing",
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{e:?}"
    );
}
