//! Proof that a path is the VFIO node it is opened as, before any VFIO ioctl is issued on it.
//!
//! An ioctl number means something else to another driver, so [`Container::open`] and
//! [`Group::open_path`] check the file first: the container must be the character device
//! `/dev/vfio/vfio` is (misc 10:196, `VFIO_MINOR`); a group must be a character device of the
//! `vfio` major listed in `/proc/devices`, and its sysfs name (`/sys/dev/char/<major>:<minor>`,
//! a link to `.../vfio/<N>` or `.../vfio/noiommu-<N>`) must be the group number the caller gave.
//! `/dev/iommu` must be the character device whose sysfs entry is `misc/iommu`, and a device cdev
//! one whose sysfs `subsystem` is the `vfio-dev` class ([`Iommufd::new`], [`Iommufd::open_cdev`]).
//! The path is checked with `stat` before it is opened (a strange file is never opened) and the
//! open file again with `fstat` (the path may have changed in between).
//!
//! [`Container::open`]: crate::Container::open
//! [`Group::open_path`]: crate::Group::open_path
//! [`Iommufd::new`]: crate::iommufd::Iommufd::new
//! [`Iommufd::open_cdev`]: crate::iommufd::Iommufd::open_cdev

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::{fstat, stat, FileStat, SFlag};

use crate::error::{Errno, Error, Object, Result};

/// The misc major of `/dev/vfio/vfio`.
const MISC_MAJOR: u32 = 10;
/// `VFIO_MINOR` in `include/linux/miscdevice.h`.
const VFIO_MINOR: u32 = 196;

/// What a node is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    /// `/dev/vfio/vfio`.
    Container,
    /// The node of group `N`.
    Group(u32),
    /// `/dev/iommu`.
    Iommufd,
    /// A VFIO device cdev, `/dev/vfio/devices/vfioN`.
    DeviceCdev,
}

impl Node {
    fn object(self, path: &Path) -> Object {
        match self {
            Node::Container => Object::Container,
            Node::Group(id) => Object::Group(id),
            Node::Iommufd => Object::Iommufd,
            Node::DeviceCdev => Object::Device(path.display().to_string()),
        }
    }

    fn op(self) -> &'static str {
        match self {
            Node::Container => "Container::open",
            Node::Group(_) => "Group::open_path",
            Node::Iommufd => "Iommufd::new",
            Node::DeviceCdev => "Iommufd::open_cdev",
        }
    }
}

/// Checks `path` before it is opened. A missing path is [`Error::Open`] (as the open would
/// be); anything but the expected node is [`Error::InvalidArgument`].
pub(crate) fn check_path(path: &Path, node: Node) -> Result<()> {
    let st = stat(path).map_err(|errno| Error::Open {
        path: path.to_path_buf(),
        errno: Errno::from_nix(errno),
    })?;
    check(path, &st, node, &Host::real())
}

/// Checks the open file `fd` of `path`.
pub(crate) fn check_fd(path: &Path, fd: impl AsFd, node: Node) -> Result<()> {
    let st = fstat(fd.as_fd()).map_err(|errno| Error::Syscall {
        op: "fstat",
        object: node.object(path).into(),
        errno: Errno::from_nix(errno),
    })?;
    check(path, &st, node, &Host::real())
}

/// Where the host describes its character devices (a fake root in tests).
pub(crate) struct Host {
    proc_devices: PathBuf,
    sys_dev_char: PathBuf,
}

impl Host {
    fn real() -> Host {
        Host {
            proc_devices: PathBuf::from("/proc/devices"),
            sys_dev_char: PathBuf::from("/sys/dev/char"),
        }
    }
}

fn is_char_device(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
}

/// "a regular file", "character device 1:3", ...
fn describe(st: &FileStat) -> String {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let dev = |what: &str| {
        format!(
            "{what} {}:{}",
            libc::major(st.st_rdev),
            libc::minor(st.st_rdev)
        )
    };
    let names = [
        (SFlag::S_IFREG, "a regular file"),
        (SFlag::S_IFDIR, "a directory"),
        (SFlag::S_IFIFO, "a FIFO"),
        (SFlag::S_IFSOCK, "a socket"),
        (SFlag::S_IFLNK, "a symbolic link"),
    ];
    if kind == SFlag::S_IFCHR {
        dev("character device")
    } else if kind == SFlag::S_IFBLK {
        dev("block device")
    } else {
        let name = names.iter().find(|(k, _)| *k == kind);
        name.map_or("a special file", |(_, n)| n).to_string()
    }
}

fn check(path: &Path, st: &FileStat, node: Node, host: &Host) -> Result<()> {
    let refuse = |reason: String| Err(Error::invalid(node.op(), node.object(path), reason));
    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    match node {
        Node::Container => {
            if is_char_device(st) && (major, minor) == (MISC_MAJOR, VFIO_MINOR) {
                return Ok(());
            }
            refuse(format!(
                "{} is {}, not the VFIO container node (character device \
                 {MISC_MAJOR}:{VFIO_MINOR}, /dev/vfio/vfio); no VFIO request was issued on it",
                path.display(),
                describe(st)
            ))
        }
        Node::Group(id) => {
            // A failed read is that error (ENOMEM under memory pressure, say), not a missing
            // vfio module (the fault-injection sweep, tests/faults, found the confusion).
            let text = std::fs::read_to_string(&host.proc_devices)
                .map_err(|e| crate::pci::sysfs::sysfs_error("reading", &host.proc_devices, &e))?;
            let vfio_major = char_major(&text, "vfio");
            let Some(vfio_major) = vfio_major else {
                return refuse(format!(
                    "cannot tell whether {} is a VFIO group node: {} lists no `vfio` character \
                     device (is the vfio module loaded?)",
                    path.display(),
                    host.proc_devices.display()
                ));
            };
            if !is_char_device(st) || major != vfio_major {
                return refuse(format!(
                    "{} is {}, not a VFIO group node (character device of major {vfio_major}); \
                     no VFIO request was issued on it",
                    path.display(),
                    describe(st)
                ));
            }
            let link = host.sys_dev_char.join(format!("{major}:{minor}"));
            let name = std::fs::read_link(&link).map_err(|e| Error::Sysfs {
                op: "resolving",
                path: link.clone(),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
            let name = name.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match group_number(name) {
                Some(found) if found == id => Ok(()),
                Some(found) => refuse(format!(
                    "{} is the node of VFIO group {found} ({name}), not of group {id}",
                    path.display()
                )),
                None => refuse(format!(
                    "{} ({}) is not a VFIO group node: its sysfs name is {name:?}",
                    path.display(),
                    link.display()
                )),
            }
        }
        Node::Iommufd | Node::DeviceCdev => {
            // /sys/dev/char/M:m links to the device's sysfs directory: .../misc/iommu for the
            // iommufd; for a cdev its `subsystem` link names the vfio-dev class.
            let (entry, want, what) = match node {
                Node::Iommufd => (
                    format!("{major}:{minor}"),
                    "iommu",
                    "the iommufd (/dev/iommu)",
                ),
                _ => (
                    format!("{major}:{minor}/subsystem"),
                    "vfio-dev",
                    "a VFIO device cdev (/dev/vfio/devices/vfioN)",
                ),
            };
            let link = host.sys_dev_char.join(entry);
            // No link: not a device sysfs knows by that number. Any other failure (out of
            // memory, I/O) says nothing about the node: report it as what it is.
            let target = match std::fs::read_link(&link) {
                Ok(target) => Some(target),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound || !is_char_device(st) => None,
                Err(e) => {
                    return Err(Error::Sysfs {
                        op: "resolving",
                        path: link,
                        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    })
                }
            };
            let name = target
                .as_deref()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str());
            if is_char_device(st) && name == Some(want) {
                return Ok(());
            }
            refuse(format!(
                "{} is {} ({} names {:?}), not {what}; no request was issued on it",
                path.display(),
                describe(st),
                link.display(),
                name.unwrap_or("nothing")
            ))
        }
    }
}

/// The major of the character device `name` in the text of `/proc/devices`.
fn char_major(proc_devices: &str, name: &str) -> Option<u32> {
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != "Character devices:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            let major = parts.next()?.parse().ok()?;
            (parts.next()? == name).then_some(major)
        })
}

/// The group number of a VFIO group device's name: `N` or `noiommu-N`.
fn group_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("noiommu-").unwrap_or(name);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n 10 misc\n240 vfio-dev\n\
                                243 vfio\n\nBlock devices:\n  8 sd\n243 vfio\n";

    #[test]
    fn finds_the_vfio_major_among_character_devices_only() {
        assert_eq!(char_major(PROC_DEVICES, "vfio"), Some(243));
        assert_eq!(char_major(PROC_DEVICES, "misc"), Some(10));
        assert_eq!(char_major(PROC_DEVICES, "sd"), None);
        assert_eq!(char_major("Block devices:\n243 vfio\n", "vfio"), None);
    }

    #[test]
    fn group_names_are_numbers_or_noiommu_numbers() {
        assert_eq!(group_number("26"), Some(26));
        assert_eq!(group_number("noiommu-3"), Some(3));
        assert_eq!(group_number("vfio"), None);
        assert_eq!(group_number("noiommu-"), None);
        assert_eq!(group_number("+5"), None);
    }

    fn fake_host(major: u32, minor: u32, name: &str) -> (tempdir::Dir, Host) {
        let dir = tempdir::Dir::new();
        std::fs::write(
            dir.0.join("devices"),
            format!("Character devices:\n  1 mem\n{major} vfio\n"),
        )
        .unwrap();
        std::fs::create_dir_all(dir.0.join("char")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../devices/virtual/vfio/{name}"),
            dir.0.join(format!("char/{major}:{minor}")),
        )
        .unwrap();
        let host = Host {
            proc_devices: dir.0.join("devices"),
            sys_dev_char: dir.0.join("char"),
        };
        (dir, host)
    }

    mod tempdir {
        pub(super) struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "uvfio-node-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// `/dev/null`'s stat with its rdev replaced, as a stand-in for a group node.
    fn char_device(major: u32, minor: u32) -> FileStat {
        let mut st = stat("/dev/null").unwrap();
        st.st_rdev = libc::makedev(major, minor);
        st
    }

    #[test]
    fn a_group_node_must_carry_the_number_it_is_opened_as() {
        let (_dir, host) = fake_host(243, 5, "26");
        let path = Path::new("/dev/vfio/26");
        check(path, &char_device(243, 5), Node::Group(26), &host).unwrap();
        let err = check(path, &char_device(243, 5), Node::Group(27), &host).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
        assert!(err.to_string().contains("group 26"), "{err}");
        assert!(err.to_string().contains("not of group 27"), "{err}");

        let (_dir, host) = fake_host(243, 1, "noiommu-4");
        check(path, &char_device(243, 1), Node::Group(4), &host).unwrap();
    }

    #[test]
    fn other_files_are_not_group_nodes() {
        let (_dir, host) = fake_host(243, 5, "26");
        let path = Path::new("/dev/vfio/26");
        // Another major (a misc device), a regular file, a missing vfio entry.
        let err = check(path, &char_device(10, 196), Node::Group(26), &host).unwrap_err();
        assert!(err.to_string().contains("character device 10:196"), "{err}");
        let file = stat("/proc/self/exe").unwrap();
        let err = check(path, &file, Node::Group(26), &host).unwrap_err();
        assert!(err.to_string().contains("a regular file"), "{err}");
        std::fs::write(&host.proc_devices, "Character devices:\n  1 mem\n").unwrap();
        let err = check(path, &char_device(243, 5), Node::Group(26), &host).unwrap_err();
        assert!(err.to_string().contains("no `vfio`"), "{err}");
    }

    #[test]
    fn iommufd_and_cdev_nodes_are_known_by_their_sysfs_class() {
        // /sys/dev/char/10:257 -> .../misc/iommu; a cdev's .../subsystem -> .../vfio-dev.
        let (dir, host) = fake_host(243, 5, "26");
        let char_dir = dir.0.join("char");
        std::os::unix::fs::symlink("../../devices/virtual/misc/iommu", char_dir.join("10:257"))
            .unwrap();
        let cdev = dir.0.join("sys/devices/virtual/vfio-dev/vfio3");
        std::fs::create_dir_all(&cdev).unwrap();
        std::os::unix::fs::symlink("../../../../class/vfio-dev", cdev.join("subsystem")).unwrap();
        std::os::unix::fs::symlink(&cdev, char_dir.join("237:3")).unwrap();
        let iommu = Path::new("/dev/iommu");
        let vfio3 = Path::new("/dev/vfio/devices/vfio3");
        check(iommu, &char_device(10, 257), Node::Iommufd, &host).unwrap();
        check(vfio3, &char_device(237, 3), Node::DeviceCdev, &host).unwrap();
        // The other way round, another device, a regular file: refused, naming what it is.
        let err = check(iommu, &char_device(237, 3), Node::Iommufd, &host).unwrap_err();
        assert!(err.to_string().contains("not the iommufd"), "{err}");
        let err = check(vfio3, &char_device(10, 257), Node::DeviceCdev, &host).unwrap_err();
        assert!(err.to_string().contains("not a VFIO device cdev"), "{err}");
        let file = stat("/proc/self/exe").unwrap();
        let err = check(vfio3, &file, Node::DeviceCdev, &host).unwrap_err();
        assert!(err.to_string().contains("a regular file"), "{err}");
        assert_eq!(err.errno(), Errno::EINVAL);
    }

    #[test]
    fn a_sysfs_lookup_that_fails_is_reported_not_taken_for_another_device() {
        // sysfs answering with an error other than "no such entry" (the fault-injection
        // sweep saw ENOMEM and EFAULT) says nothing about the node: the caller gets the
        // sysfs error, not "not the iommufd".
        let (dir, mut host) = fake_host(243, 5, "26");
        let not_a_dir = dir.0.join("a-file");
        std::fs::write(&not_a_dir, "").unwrap();
        host.sys_dev_char = not_a_dir;
        let err = check(
            Path::new("/dev/iommu"),
            &char_device(10, 257),
            Node::Iommufd,
            &host,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Sysfs { .. }), "{err:?}");
        assert_eq!(err.errno(), Errno::from_raw(libc::ENOTDIR));
        assert!(err.to_string().contains("resolving"), "{err}");
        // No entry at all is an answer: that device is not the iommufd.
        let (_dir, host) = fake_host(243, 5, "26");
        let err = check(
            Path::new("/dev/iommu"),
            &char_device(10, 257),
            Node::Iommufd,
            &host,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not the iommufd"), "{err}");
    }

    #[test]
    fn only_misc_10_196_is_the_container() {
        let host = Host::real();
        let path = Path::new("/dev/vfio/vfio");
        check(path, &char_device(10, 196), Node::Container, &host).unwrap();
        for (major, minor) in [(10, 195), (1, 3), (243, 0)] {
            let err = check(path, &char_device(major, minor), Node::Container, &host).unwrap_err();
            assert_eq!(err.errno(), Errno::EINVAL);
            assert!(
                err.to_string().contains("not the VFIO container node"),
                "{err}"
            );
        }
    }
}
