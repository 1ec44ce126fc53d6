//! Mediated devices on the full flavour: the kernel's sample parents (`mtty`, `mdpy`,
//! `mbochs`) listed with their types, and an extra `mtty-2` instance created, opened through
//! its group and through its cdev, and removed on drop.

use std::path::PathBuf;

use uvfio::device::{DeviceFlags, MigState, RegionIndex};
use uvfio::mdev::{MdevInstance, Mdevs, Uuid};
use uvfio::{DmaSpace, Errno, IommuMode};

use crate::common;

/// The sysfs directory of the mdev in `var` (`UVFIO_TEST_MTTY_A`, ...), or `None` (skipped
/// visibly) off the full flavour with the vIOMMU.
pub fn mdev_dir(test: &str, var: &str) -> Option<PathBuf> {
    let present = std::env::var(var).is_ok();
    if !common::needs_full_in_mode(test, "the mdev sample drivers", present, "vtd") {
        return None;
    }
    Some(PathBuf::from(std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set on the full flavour")
    })))
}

/// The parent offering type `id`.
fn parent_of(mdevs: &Mdevs, id: &str) -> String {
    mdevs
        .parents()
        .expect("parents")
        .into_iter()
        .find(|p| p.types.iter().any(|t| t.id == id))
        .unwrap_or_else(|| panic!("no parent offers {id}"))
        .name
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mdev_parents_and_types_are_listed() {
    let Some(a) = mdev_dir("mdev_parents_and_types_are_listed", "UVFIO_TEST_MTTY_A") else {
        return;
    };
    let mdevs = Mdevs::new();
    let parents = mdevs.parents().expect("parents");
    let ids: Vec<&str> = parents
        .iter()
        .flat_map(|p| p.types.iter().map(|t| t.id.as_str()))
        .collect();
    for want in [
        "mtty-1",
        "mtty-2",
        "mdpy-vga",
        "mdpy-xga",
        "mdpy-hd",
        "mbochs-small",
        "mbochs-medium",
        "mbochs-large",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    let parent = parent_of(&mdevs, "mtty-2");
    let two = mdevs.mdev_type(&parent, "mtty-2").expect("mtty-2");
    assert_eq!(two.name, "Dual port serial");
    assert_eq!(two.device_api, "vfio-pci");
    let uuid_a: Uuid = a
        .file_name()
        .unwrap()
        .to_string_lossy()
        .parse()
        .expect("UUID");
    assert!(two.instances.contains(&uuid_a), "{:?}", two.instances);
    common::say(&format!(
        "mdev parents: {}",
        parents
            .iter()
            .map(|p| format!(
                "{} [{}]",
                p.name,
                p.types
                    .iter()
                    .map(|t| format!("{}: {} ({} left)", t.id, t.name, t.available_instances))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mdev_instance_is_created_opened_and_removed_in_both_paths() {
    if mdev_dir(
        "mdev_instance_is_created_opened_and_removed_in_both_paths",
        "UVFIO_TEST_MTTY_A",
    )
    .is_none()
    {
        return;
    }
    let mdevs = Mdevs::new();
    let parent = parent_of(&mdevs, "mtty-2");
    let available = || {
        mdevs
            .mdev_type(&parent, "mtty-2")
            .expect("mtty-2")
            .available_instances
    };
    let before = available();
    assert!(before > 0, "no mtty-2 instance left to create");
    for mode in [IommuMode::VfioType1v2, IommuMode::Iommufd] {
        let instance = MdevInstance::create(&parent, "mtty-2", None)
            .unwrap_or_else(|e| panic!("create in {mode}: {e}"));
        let dir = instance.sysfs_dir().to_path_buf();
        assert!(dir.exists(), "{}", dir.display());
        assert_eq!(instance.type_id().unwrap(), "mtty-2");
        assert_eq!(available(), before - 1, "one instance fewer left");
        assert!(mdevs
            .mdev_type(&parent, "mtty-2")
            .unwrap()
            .instances
            .contains(&instance.uuid()));
        {
            let space = DmaSpace::open(mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
            let device = instance
                .open(&space)
                .unwrap_or_else(|e| panic!("open in {mode}: {e}"));
            assert_eq!(device.name(), instance.uuid().to_string());
            match mode {
                IommuMode::Iommufd => {
                    assert!(device.group().is_none() && device.iommufd().is_some())
                }
                _ => assert!(device.group().is_some()),
            }
            assert!(device.flags().contains(DeviceFlags::PCI));
            // A fresh mtty: RUNNING, and its scratch register holds what is written.
            assert_eq!(
                device.migration().unwrap().state().unwrap(),
                MigState::RUNNING
            );
            let bar0 = device.region(RegionIndex::BAR0).expect("BAR0");
            bar0.write_u8(7, 0xa5).unwrap();
            assert_eq!(bar0.read_u8(7).unwrap(), 0xa5);
        }
        drop(instance);
        assert!(!dir.exists(), "{} is still there after drop", dir.display());
        assert_eq!(available(), before, "the instance came back");
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mdev_create_errors_are_typed_and_keep_keeps() {
    let Some(a) = mdev_dir(
        "mdev_create_errors_are_typed_and_keep_keeps",
        "UVFIO_TEST_MTTY_A",
    ) else {
        return;
    };
    let mdevs = Mdevs::new();
    let parent = parent_of(&mdevs, "mtty-2");
    // A's UUID is taken.
    let uuid_a: Uuid = a.file_name().unwrap().to_string_lossy().parse().unwrap();
    let e = mdevs
        .create(&parent, "mtty-2", Some(uuid_a))
        .expect_err("a taken UUID");
    assert_eq!(e.errno(), Errno::EEXIST, "{e}");
    assert!(e.to_string().contains("mtty-2/create"), "{e}");
    // An unknown type.
    let e = mdevs.create(&parent, "mtty-9", None).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");

    // keep(): the instance outlives the handle; remove() through an adopted handle.
    let uuid = Uuid::random().unwrap();
    let kept = mdevs.create(&parent, "mtty-1", Some(uuid)).unwrap().keep();
    assert_eq!(kept, uuid);
    assert!(mdevs.instance_dir(uuid).exists());
    mdevs.instance(uuid).unwrap().remove().expect("remove");
    assert!(!mdevs.instance_dir(uuid).exists());
}
