//! Hardware tests of device discovery (`uvfio::pci::discover`) against the real sysfs of the
//! emulated IOMMU host: the usable devices are exactly the ones the VM bound to vfio-pci in
//! viable groups, the non-viable group's vfio-pci member is listed but not usable, and the IDs
//! are sysfs's.

use std::collections::BTreeSet;

use uvfio::pci::discover::{Filter, PciFunction};
use uvfio::pci::sysfs::Sysfs;

use crate::common::{
    device, devices, driver, flavor, iommu_group, needs_full_in_mode, sysfs_path, vm_iommu,
};

fn sysfs_hex(addr: &str, file: &str) -> u32 {
    let s = std::fs::read_to_string(sysfs_path(addr).join(file)).unwrap();
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap()
}

fn shared_group() -> Vec<String> {
    let list = std::env::var("UVFIO_TEST_SHARED_GROUP").expect("UVFIO_TEST_SHARED_GROUP");
    list.split_whitespace().map(str::to_owned).collect()
}

fn find<'a>(all: &'a [PciFunction], addr: &str) -> &'a PciFunction {
    all.iter()
        .find(|f| f.address.to_string() == addr)
        .unwrap_or_else(|| panic!("{addr} is not listed"))
}

#[test]
#[ignore = "needs the emulated IOMMU host (tests/vm/cargo-vm)"]
fn the_usable_devices_are_the_vms_vfio_devices() {
    let sysfs = Sysfs::new();
    let usable: BTreeSet<String> = sysfs
        .vfio_devices()
        .unwrap()
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    let mut expected: BTreeSet<String> = devices().into_iter().collect();
    expected.extend(shared_group());
    if vm_iommu() == "none" {
        // Without an IOMMU each vfio-pci device has a no-IOMMU group of its own: the testdev
        // of the (otherwise) non-viable group is alone in it, and usable.
        expected.insert(device("UVFIO_TEST_NONVIABLE"));
    }
    assert_eq!(usable, expected);
}

#[test]
#[ignore = "needs the emulated IOMMU host (tests/vm/cargo-vm)"]
fn ids_class_driver_group_and_nodes_match_sysfs() {
    let all = Sysfs::new().pci_functions().unwrap();
    // Every function of the host is listed, once, in order.
    let mut on_disk: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let listed: Vec<String> = all.iter().map(|f| f.address.to_string()).collect();
    assert_eq!(listed, on_disk);
    for f in &all {
        let a = f.address.to_string();
        assert_eq!(u32::from(f.vendor), sysfs_hex(&a, "vendor"), "{a}");
        assert_eq!(u32::from(f.device), sysfs_hex(&a, "device"), "{a}");
        assert_eq!(
            u32::from(f.subsystem_vendor),
            sysfs_hex(&a, "subsystem_vendor"),
            "{a}"
        );
        assert_eq!(
            u32::from(f.subsystem_device),
            sysfs_hex(&a, "subsystem_device"),
            "{a}"
        );
        assert_eq!(f.class, sysfs_hex(&a, "class"), "{a}");
        assert_eq!(f.driver, driver(&a), "{a}");
        let has_group = sysfs_path(&a).join("iommu_group").exists();
        assert_eq!(f.iommu_group.is_some(), has_group, "{a}");
        if has_group {
            assert_eq!(f.iommu_group, Some(iommu_group(&a)), "{a}");
        }
        assert_eq!(f.noiommu, vm_iommu() == "none" && has_group, "{a}");
        // Only vfio-pci devices have a cdev, and never on Debian's 6.1, whose vfio-dev entries
        // are no character devices (the full flavour's in IOMMU mode: see the cdev test).
        assert!(f.cdev.is_none() || f.on_vfio_pci(), "{a}: {:?}", f.cdev);
        if flavor() == "debian" {
            assert_eq!(f.cdev, None, "{a}");
        }
        if let Some(cdev) = &f.cdev {
            assert!(cdev.exists(), "{a}: {} does not exist", cdev.display());
        }
        if f.on_vfio_pci() {
            let node = f
                .group_node
                .as_ref()
                .unwrap_or_else(|| panic!("{a}: no node"));
            assert!(node.exists(), "{a}: {} does not exist", node.display());
        } else {
            assert_eq!(f.group_node, None, "{a}");
        }
    }
    for a in devices() {
        let f = find(&all, &a);
        assert!(f.is_vfio_usable(), "{f}");
        assert!(f.to_string().starts_with(&a), "{f}");
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host (tests/vm/cargo-vm)"]
fn the_non_viable_group_is_listed_but_not_usable() {
    if vm_iommu() != "vtd" {
        crate::common::say("SKIPPED discover::the_non_viable_group_is_listed_but_not_usable: no shared groups without an IOMMU");
        return;
    }
    let vfio = device("UVFIO_TEST_NONVIABLE");
    let host = device("UVFIO_TEST_NONVIABLE_HOST");
    let sysfs = Sysfs::new();
    let all = sysfs.pci_functions().unwrap();
    let testdev = find(&all, &vfio);
    assert!(testdev.on_vfio_pci(), "{testdev}");
    assert!(
        !testdev.group_viable() && !testdev.is_vfio_usable(),
        "{testdev}"
    );
    assert_eq!(testdev.iommu_group, Some(iommu_group(&vfio)));
    let blockers: Vec<&str> = testdev.blockers.iter().map(|m| m.device.as_str()).collect();
    assert_eq!(blockers, [host.as_str()]);
    // The watchdog's driver calls itself "i6300ESB timer" in sysfs.
    assert_eq!(testdev.blockers[0].driver, driver(&host));
    assert!(driver(&host).is_some_and(|d| d != "vfio-pci"));
    let watchdog = find(&all, &host);
    assert_eq!((watchdog.vendor, watchdog.device), (0x8086, 0x25ab));
    assert!(
        !watchdog.on_vfio_pci() && !watchdog.is_vfio_usable(),
        "{watchdog}"
    );
    assert_eq!(watchdog.group_node, None);
    let usable = sysfs.vfio_devices().unwrap();
    assert!(usable
        .iter()
        .all(|f| f.address != testdev.address && f.address != watchdog.address));
    // The shared group's two devices are usable, behind their driverless bridge.
    for a in shared_group() {
        assert!(find(&all, &a).is_vfio_usable(), "{a}");
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host (tests/vm/cargo-vm)"]
fn filters_pick_devices_by_id_and_class() {
    let sysfs = Sysfs::new();
    let e1000: Vec<String> = sysfs
        .find_vfio_devices(&"8086:100e".parse().unwrap())
        .unwrap()
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    let mut want = vec![device("UVFIO_TEST_E1000_A"), device("UVFIO_TEST_E1000_B")];
    want.sort();
    assert_eq!(e1000, want);
    // NVMe by class (mass storage, NVM, NVMe interface).
    let nvme = sysfs
        .find_vfio_devices(&Filter::any().class(0x010802, 0xffffff))
        .unwrap();
    assert_eq!(nvme.len(), 1);
    assert_eq!(nvme[0].address.to_string(), device("UVFIO_TEST_NVME"));
    // Network controllers: the four NICs.
    let nics = sysfs.find_vfio_devices(&"::02".parse().unwrap()).unwrap();
    assert_eq!(nics.len(), 4, "{nics:?}");
    assert!(sysfs
        .find_vfio_devices(&"dead:beef".parse().unwrap())
        .unwrap()
        .is_empty());
}

#[test]
#[ignore = "needs the emulated IOMMU host (tests/vm/cargo-vm)"]
fn usable_devices_have_their_cdev_on_full() {
    let present = std::path::Path::new("/dev/vfio/devices").exists();
    // No-IOMMU devices get no cdev unless iommufd provides no-IOMMU too.
    if !needs_full_in_mode(
        "discover::usable_devices_have_their_cdev_on_full",
        "the VFIO device cdev",
        present,
        "vtd",
    ) {
        return;
    }
    let usable = Sysfs::new().vfio_devices().unwrap();
    assert!(!usable.is_empty());
    for f in &usable {
        let cdev = f.cdev.as_ref().unwrap_or_else(|| panic!("{f}: no cdev"));
        assert!(cdev.exists(), "{f}: {} does not exist", cdev.display());
        let name = cdev.file_name().unwrap().to_str().unwrap();
        assert!(
            sysfs_path(&f.address.to_string())
                .join("vfio-dev")
                .join(name)
                .exists(),
            "{f}: {name} is not in its vfio-dev directory"
        );
    }
}
