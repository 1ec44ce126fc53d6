//! Unit tests of the mdev module, against fake sysfs trees.

use super::*;
use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fake `/sys` with the `mtty` parent and its two types, removed on drop.
struct Fake {
    root: PathBuf,
}

const UUID_A: &str = "0f3b29a6-7a1b-4c1e-9e6a-000000000001";

impl Fake {
    fn new() -> Fake {
        let root = std::env::temp_dir().join(format!(
            "uvfio-mdev-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let parent = root.join("devices/virtual/mtty/mtty");
        for (id, name, avail, desc) in [
            ("mtty-1", "Single port serial", "24", None),
            (
                "mtty-2",
                "Dual port serial",
                "10",
                Some("virtual serial ports"),
            ),
        ] {
            let t = parent.join("mdev_supported_types").join(id);
            fs::create_dir_all(t.join("devices")).unwrap();
            fs::write(t.join("name"), format!("{name}\n")).unwrap();
            fs::write(t.join("available_instances"), format!("{avail}\n")).unwrap();
            fs::write(t.join("device_api"), "vfio-pci\n").unwrap();
            fs::write(t.join("create"), "").unwrap();
            if let Some(d) = desc {
                fs::write(t.join("description"), format!("{d}\n")).unwrap();
            }
        }
        fs::create_dir_all(root.join("class/mdev_bus")).unwrap();
        symlink(
            "../../devices/virtual/mtty/mtty",
            root.join("class/mdev_bus/mtty"),
        )
        .unwrap();
        fs::create_dir_all(root.join("bus/mdev/devices")).unwrap();
        Fake { root }
    }

    /// Plays the kernel's part of a create: the instance's directory, its `remove`, its
    /// `mdev_type` link and its entry under the type's `devices/`.
    fn add_instance(&self, uuid: &str, ty: &str) -> PathBuf {
        let dev = self.root.join("devices/virtual/mtty/mtty").join(uuid);
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("remove"), "").unwrap();
        symlink(format!("mdev_supported_types/{ty}"), dev.join("mdev_type")).unwrap();
        symlink(
            format!("../../../devices/virtual/mtty/mtty/{uuid}"),
            self.root.join("bus/mdev/devices").join(uuid),
        )
        .unwrap();
        symlink(
            format!("../../../{uuid}"),
            self.root
                .join("devices/virtual/mtty/mtty/mdev_supported_types")
                .join(ty)
                .join("devices")
                .join(uuid),
        )
        .unwrap();
        dev
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn uuids_parse_and_print() {
    let u: Uuid = UUID_A.parse().unwrap();
    assert_eq!(u.to_string(), UUID_A);
    assert_eq!(u.0[15], 1);
    assert_eq!(
        "0F3B29A6-7A1B-4C1E-9E6A-00000000000A"
            .parse::<Uuid>()
            .unwrap()
            .to_string(),
        "0f3b29a6-7a1b-4c1e-9e6a-00000000000a"
    );
    for bad in [
        "",
        "0f3b29a67a1b4c1e9e6a000000000001",
        "0f3b29a6-7a1b-4c1e-9e6a-00000000000g",
        "0f3b29a6-7a1b-4c1e-9e6a0-00000000001",
        "+f3b29a6-7a1b-4c1e-9e6a-000000000001",
    ] {
        assert!(bad.parse::<Uuid>().is_err(), "{bad:?}");
    }
    let r = Uuid::random().unwrap();
    assert_eq!(r.0[6] >> 4, 4, "version 4");
    assert_eq!(r.0[8] >> 6, 2, "RFC 4122 variant");
    assert_ne!(r, Uuid::random().unwrap());
}

#[test]
fn lists_parents_and_their_types() {
    let fake = Fake::new();
    fake.add_instance(UUID_A, "mtty-2");
    let mdevs = Mdevs::with_root(&fake.root);
    assert_eq!(mdevs.parent_names().unwrap(), ["mtty"]);
    let parents = mdevs.parents().unwrap();
    assert_eq!(parents.len(), 1);
    let types = &parents[0].types;
    assert_eq!(
        types.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["mtty-1", "mtty-2"]
    );
    let two = &types[1];
    assert_eq!(two.parent, "mtty");
    assert_eq!(two.name, "Dual port serial");
    assert_eq!(two.description.as_deref(), Some("virtual serial ports"));
    assert_eq!(two.available_instances, 10);
    assert_eq!(two.device_api, "vfio-pci");
    assert_eq!(two.instances, vec![UUID_A.parse().unwrap()]);
    assert_eq!(types[0].description, None, "description is optional");
    assert!(types[0].instances.is_empty());

    // No mdev support at all: no parents, not an error.
    let empty = Mdevs::with_root(fake.root.join("nowhere"));
    assert!(empty.parents().unwrap().is_empty());
}

#[test]
fn errors_name_the_path_and_errno() {
    let fake = Fake::new();
    let mdevs = Mdevs::with_root(&fake.root);
    let e = mdevs.mdev_type("mtty", "mtty-9").unwrap_err();
    assert!(
        matches!(&e, Error::Sysfs { op: "resolving", path, errno: Errno::ENOENT }
            if path.ends_with("mdev_supported_types/mtty-9")),
        "{e}"
    );
    let e = mdevs.parent("nope").unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");
    assert!(e.to_string().contains("class/mdev_bus/nope"), "{e}");
    assert!(
        e.to_string().contains("no such mdev parent"),
        "the hint: {e}"
    );

    // A garbled attribute is a parse error naming the file.
    fs::write(
        fake.root
            .join("class/mdev_bus/mtty/mdev_supported_types/mtty-1/available_instances"),
        "many\n",
    )
    .unwrap();
    let e = mdevs.mdev_type("mtty", "mtty-1").unwrap_err();
    assert!(
        matches!(&e, Error::Sysfs { op: "parsing", path, errno: Errno::EPROTO }
            if path.ends_with("available_instances")),
        "{e}"
    );
    // Creating an unknown type fails before writing anything.
    let e = mdevs.create("mtty", "mtty-9", None).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
}

#[test]
fn create_writes_the_uuid_and_drop_removes() {
    let fake = Fake::new();
    let mdevs = Mdevs::with_root(&fake.root);
    let uuid: Uuid = UUID_A.parse().unwrap();
    // The kernel makes the directory during the write; the fake makes it beforehand.
    fake.add_instance(UUID_A, "mtty-2");
    let instance = mdevs.create("mtty", "mtty-2", Some(uuid)).unwrap();
    assert_eq!(
        fake.read("class/mdev_bus/mtty/mdev_supported_types/mtty-2/create"),
        UUID_A
    );
    assert_eq!(instance.uuid(), uuid);
    assert_eq!(
        instance.sysfs_dir(),
        fake.root.join("bus/mdev/devices").join(UUID_A)
    );
    assert_eq!(instance.type_id().unwrap(), "mtty-2");
    let remove = format!("bus/mdev/devices/{UUID_A}/remove");
    assert_eq!(fake.read(&remove), "");
    drop(instance);
    assert_eq!(fake.read(&remove), "1", "dropped: removed");
}

#[test]
fn keep_leaves_the_instance_and_remove_reports() {
    let fake = Fake::new();
    let mdevs = Mdevs::with_root(&fake.root);
    let uuid: Uuid = UUID_A.parse().unwrap();
    fake.add_instance(UUID_A, "mtty-2");
    let remove = format!("bus/mdev/devices/{UUID_A}/remove");

    let kept = mdevs.create("mtty", "mtty-2", Some(uuid)).unwrap().keep();
    assert_eq!(kept, uuid);
    assert_eq!(fake.read(&remove), "", "kept: not removed");

    // An existing instance adopted: not removed on drop, removed on request.
    drop(mdevs.instance(uuid).unwrap());
    assert_eq!(fake.read(&remove), "");
    mdevs.instance(uuid).unwrap().remove().unwrap();
    assert_eq!(fake.read(&remove), "1");

    // A create the kernel did not act on (no directory appeared): an error naming it.
    let other: Uuid = "0f3b29a6-7a1b-4c1e-9e6a-000000000002".parse().unwrap();
    let e = mdevs.create("mtty", "mtty-2", Some(other)).unwrap_err();
    assert!(
        matches!(&e, Error::Sysfs { op: "resolving", path, errno: Errno::ENOENT }
            if path.ends_with(other.to_string())),
        "{e}"
    );
    // A remove that fails reports the path.
    let gone = mdevs.instance_dir(other);
    fs::create_dir_all(&gone).unwrap();
    let e = mdevs.instance(other).unwrap().remove().unwrap_err();
    assert!(
        matches!(&e, Error::Sysfs { op: "writing", path, errno: Errno::ENOENT }
            if path.ends_with("remove")),
        "{e}"
    );
}
