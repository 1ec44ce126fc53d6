//! Mediated devices (mdev): the parent devices that offer them, their types, and instances
//! created and removed through sysfs.
//!
//! A mediated device is a virtual device that a parent driver (a GPU's, a crypto adapter's,
//! the kernel's samples `mtty`, `mdpy`, `mbochs`) carves out of its hardware and hands to VFIO.
//! It is not a PCI function: it has no PCI address but a UUID, a sysfs directory
//! `/sys/bus/mdev/devices/<uuid>`, an IOMMU group of its own and (with
//! `CONFIG_VFIO_DEVICE_CDEV`) a cdev. Open it through either with
//! [`DmaSpace::open_device_at`] ([`MdevInstance::open`]); the [`Device`] then has regions,
//! IRQs, reset and features like any other.
//!
//! The sysfs layout (`Documentation/driver-api/vfio-mediated-device.rst`):
//!
//! ```text
//! /sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/
//!     create               write a UUID: a new instance
//!     name, description    what the type is ("Dual port serial")
//!     available_instances  how many more can be created
//!     device_api           the VFIO device API the instances speak ("vfio-pci")
//!     devices/             the instances of the type
//! /sys/bus/mdev/devices/<uuid>/
//!     remove               write 1: remove the instance
//!     mdev_type            link to its type
//!     iommu_group, vfio-dev/vfioN
//! ```
//!
//! Writing `create` and `remove` needs root. [`MdevInstance`] removes the instance it created
//! when dropped, unless [`MdevInstance::keep`] is called. Removal waits, in the kernel, until
//! every fd of the device is closed (the kernel signals the device's `REQ` interrupt meanwhile):
//! drop the [`Device`] before the instance.
//!
//! Every failure is an [`Error::Sysfs`] naming what was done (`"reading"`, `"writing"`,
//! `"listing"`, `"resolving"`, `"parsing"`), the path and the errno; creating an instance fails
//! with `EEXIST` when the UUID is taken and `EUSERS` when the type has no instance left.
//!
//! # References
//!
//! - `Documentation/driver-api/vfio-mediated-device.rst`
//! - `drivers/vfio/mdev/mdev_sysfs.c`, `mdev_core.c`

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::device::Device;
use crate::error::{Errno, Error, Result};
use crate::iommu::DmaSpace;
use crate::pci::sysfs::{link_name, read_attr, sysfs_error, unparsable};
use crate::trace::{self, Level};

#[cfg(test)]
mod tests;

/// A UUID, the name of a mediated device (`0f3b29a6-7a1b-4c1e-9e6a-000000000001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// A random (version 4) UUID, from `/dev/urandom`.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] or [`Error::Sysfs`] when `/dev/urandom` cannot be read.
    pub fn random() -> Result<Uuid> {
        let path = Path::new("/dev/urandom");
        let mut b = [0u8; 16];
        fs::File::open(path)
            .map_err(|e| Error::Open {
                path: path.to_path_buf(),
                errno: errno_of(&e),
            })?
            .read_exact(&mut b)
            .map_err(|e| sysfs_error("reading", path, &e))?;
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        Ok(Uuid(b))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A string that is not a UUID of the `8-4-4-4-12` hex form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a UUID like 0f3b29a6-7a1b-4c1e-9e6a-000000000001")]
pub struct ParseUuidError(pub String);

impl FromStr for Uuid {
    type Err = ParseUuidError;

    fn from_str(s: &str) -> std::result::Result<Uuid, ParseUuidError> {
        let bad = || ParseUuidError(s.to_string());
        let groups: Vec<&str> = s.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let hex: String = groups.concat();
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *o = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Uuid(out))
    }
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A device that offers mediated devices (`/sys/class/mdev_bus/<name>`), with its types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevParent {
    /// The parent device's name (`mtty`, `0000:00:02.0`, ...).
    pub name: String,
    /// `<root>/class/mdev_bus/<name>`.
    pub dir: PathBuf,
    /// The types it offers, by id.
    pub types: Vec<MdevType>,
}

/// A type of mediated device a parent offers (`mdev_supported_types/<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    /// The parent device's name.
    pub parent: String,
    /// The type's id, its directory name (`mtty-2`): what [`Mdevs::create`] takes.
    pub id: String,
    /// `name`: what the type is (`Dual port serial`).
    pub name: String,
    /// `description`, when the parent gives one (optional in the kernel).
    pub description: Option<String>,
    /// `available_instances`: how many more can be created, when this was read.
    pub available_instances: u32,
    /// `device_api`: the VFIO device API of its instances (`vfio-pci`).
    pub device_api: String,
    /// The instances of the type (`devices/`), when this was read.
    pub instances: Vec<Uuid>,
    /// The type's directory.
    pub dir: PathBuf,
}

/// The host's mediated devices, read from sysfs under a root: `/sys` ([`Mdevs::new`]) or a
/// directory that stands for it ([`Mdevs::with_root`], for tests against a fake tree).
#[derive(Debug, Clone)]
pub struct Mdevs {
    root: PathBuf,
}

impl Default for Mdevs {
    fn default() -> Self {
        Mdevs::new()
    }
}

impl Mdevs {
    /// The real sysfs, `/sys`.
    pub fn new() -> Mdevs {
        Mdevs::with_root("/sys")
    }

    /// A sysfs tree at `root`, which stands for `/sys`.
    pub fn with_root(root: impl Into<PathBuf>) -> Mdevs {
        Mdevs { root: root.into() }
    }

    /// The root this handle reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn class_dir(&self) -> PathBuf {
        self.root.join("class/mdev_bus")
    }

    /// The names of the parent devices (`/sys/class/mdev_bus/*`), sorted; empty when there
    /// are none (or the kernel has no mdev support).
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] (`listing`) when the directory exists but cannot be read.
    pub fn parent_names(&self) -> Result<Vec<String>> {
        let dir = self.class_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        list_names(&dir)
    }

    /// Every parent device with its types.
    ///
    /// # Errors
    ///
    /// As [`Mdevs::parent_names`] and [`Mdevs::types`].
    pub fn parents(&self) -> Result<Vec<MdevParent>> {
        self.parent_names()?
            .into_iter()
            .map(|name| self.parent(&name))
            .collect()
    }

    /// The parent device `name` with its types.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] (`resolving`, `ENOENT`) when there is no such parent; as
    /// [`Mdevs::types`].
    pub fn parent(&self, name: &str) -> Result<MdevParent> {
        let dir = self.class_dir().join(name);
        fs::metadata(&dir).map_err(|e| sysfs_error("resolving", &dir, &e))?;
        Ok(MdevParent {
            name: name.to_string(),
            types: self.types(name)?,
            dir,
        })
    }

    /// The types parent `parent` offers, sorted by id.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the parent's `mdev_supported_types` cannot be listed or a type's
    /// attribute cannot be read or parsed.
    pub fn types(&self, parent: &str) -> Result<Vec<MdevType>> {
        let dir = self.class_dir().join(parent).join("mdev_supported_types");
        list_names(&dir)?
            .into_iter()
            .map(|id| self.mdev_type(parent, &id))
            .collect()
    }

    /// Type `id` of parent `parent`, read now (its `available_instances` and instances
    /// included).
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`]: `resolving`/`ENOENT` for an unknown parent or type, `reading` or
    /// `parsing` for an attribute.
    pub fn mdev_type(&self, parent: &str, id: &str) -> Result<MdevType> {
        let dir = self.type_dir(parent, id);
        fs::metadata(&dir).map_err(|e| sysfs_error("resolving", &dir, &e))?;
        let available_path = dir.join("available_instances");
        let available_instances = read_attr(&available_path)?
            .trim()
            .parse()
            .map_err(|_| unparsable(&available_path))?;
        let description = match read_attr(&dir.join("description")) {
            Ok(d) => Some(d),
            Err(e) if e.errno() == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        let devices = dir.join("devices");
        let mut instances = Vec::new();
        if devices.exists() {
            for n in list_names(&devices)? {
                instances.push(n.parse().map_err(|_| unparsable(&devices.join(&n)))?);
            }
        }
        Ok(MdevType {
            parent: parent.to_string(),
            id: id.to_string(),
            name: read_attr(&dir.join("name"))?,
            description,
            available_instances,
            device_api: read_attr(&dir.join("device_api"))?,
            instances,
            dir,
        })
    }

    fn type_dir(&self, parent: &str, id: &str) -> PathBuf {
        self.class_dir()
            .join(parent)
            .join("mdev_supported_types")
            .join(id)
    }

    /// The sysfs directory of instance `uuid`: `<root>/bus/mdev/devices/<uuid>`.
    pub fn instance_dir(&self, uuid: Uuid) -> PathBuf {
        self.root.join("bus/mdev/devices").join(uuid.to_string())
    }

    /// Creates an instance of type `id` of `parent`, named `uuid` or a random UUID, by writing
    /// the UUID to the type's `create`. The instance is removed when the returned handle is
    /// dropped, unless [`MdevInstance::keep`] is called.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`]: `resolving`/`ENOENT` for an unknown parent or type; `writing` the
    /// type's `create` with the kernel's errno (`EEXIST`: the UUID is taken; `EUSERS`: no
    /// instance available; `EACCES`: not root); `resolving` the instance's directory when the
    /// kernel did not make it.
    pub fn create(&self, parent: &str, id: &str, uuid: Option<Uuid>) -> Result<MdevInstance> {
        let dir = self.type_dir(parent, id);
        fs::metadata(&dir).map_err(|e| sysfs_error("resolving", &dir, &e))?;
        let uuid = match uuid {
            Some(u) => u,
            None => Uuid::random()?,
        };
        let instance = self.instance_dir(uuid);
        if let Err(e) = write_attr(&dir.join("create"), &uuid.to_string()) {
            // A failure late in the kernel's create (after the device was added) can leave
            // the instance behind: remove it, so that a failed create takes nothing (found by
            // the fault-injection sweep, tests/faults).
            if e.errno() != Errno::EEXIST && fs::metadata(&instance).is_ok() {
                let _ = crate::error::retry_teardown(|| write_attr(&instance.join("remove"), "1"));
            }
            return Err(e);
        }
        // From here on the instance exists in the kernel: the handle removes it on failure too.
        let handle = MdevInstance {
            uuid,
            dir: instance,
            remove_on_drop: true,
        };
        fs::metadata(&handle.dir).map_err(|e| sysfs_error("resolving", &handle.dir, &e))?;
        Ok(handle)
    }

    /// A handle on the existing instance `uuid` that does not remove it on drop (call
    /// [`MdevInstance::remove`] to remove it).
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] (`resolving`, `ENOENT`) when there is no such instance.
    pub fn instance(&self, uuid: Uuid) -> Result<MdevInstance> {
        let dir = self.instance_dir(uuid);
        fs::metadata(&dir).map_err(|e| sysfs_error("resolving", &dir, &e))?;
        Ok(MdevInstance {
            uuid,
            dir,
            remove_on_drop: false,
        })
    }
}

/// The entries of a sysfs directory, by name, sorted.
fn list_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| sysfs_error("listing", dir, &e))? {
        let entry = entry.map_err(|e| sysfs_error("listing", dir, &e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Writes `value` to an existing sysfs attribute (never creating it), in one `write`.
fn write_attr(path: &Path, value: &str) -> Result<()> {
    let args = |f: &mut fmt::Formatter<'_>| write!(f, "{:?}", value.trim_end());
    trace::call(Level::Debug, "write", path.display(), args, || {
        fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(value.as_bytes())
    })
    .map_err(|e| sysfs_error("writing", path, &e))
}

/// A mediated device instance. Made by [`Mdevs::create`] (or [`MdevInstance::create`]), it is
/// removed when dropped; [`MdevInstance::keep`] leaves it in place.
#[derive(Debug)]
pub struct MdevInstance {
    uuid: Uuid,
    dir: PathBuf,
    remove_on_drop: bool,
}

impl MdevInstance {
    /// Creates an instance of type `id` of `parent` in the real sysfs (see
    /// [`Mdevs::create`]).
    ///
    /// # Errors
    ///
    /// As [`Mdevs::create`].
    pub fn create(parent: &str, id: &str, uuid: Option<Uuid>) -> Result<MdevInstance> {
        Mdevs::new().create(parent, id, uuid)
    }

    /// The instance's UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// Its sysfs directory, `/sys/bus/mdev/devices/<uuid>`: what
    /// [`DmaSpace::open_device_at`], [`crate::Container::open_device_at`] and
    /// [`crate::iommufd::Iommufd::open_device_at`] take.
    pub fn sysfs_dir(&self) -> &Path {
        &self.dir
    }

    /// The id of its type (the `mdev_type` link's target, `mtty-2`).
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] (`resolving`) when the link cannot be read.
    pub fn type_id(&self) -> Result<String> {
        link_name(&self.dir.join("mdev_type"))
    }

    /// Opens the instance into `space`, through its group or its cdev as the space's mode
    /// says ([`DmaSpace::open_device_at`]). Drop the device before removing the instance.
    ///
    /// # Errors
    ///
    /// As [`DmaSpace::open_device_at`].
    pub fn open(&self, space: &DmaSpace) -> Result<Device> {
        space.open_device_at(&self.dir)
    }

    /// Leaves the instance in place when the handle goes; returns its UUID.
    pub fn keep(mut self) -> Uuid {
        self.remove_on_drop = false;
        self.uuid
    }

    /// Removes the instance now (writes `1` to its `remove`), reporting failure.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] (`writing`) with the kernel's errno.
    pub fn remove(mut self) -> Result<()> {
        self.remove_on_drop = false;
        self.remove_now()
    }

    /// Writes `1` to `remove`, again while the kernel fails for want of memory (a teardown
    /// that gives up leaves the instance, and one of the type's instances, behind).
    fn remove_now(&self) -> Result<()> {
        crate::error::retry_teardown(|| write_attr(&self.dir.join("remove"), "1"))
    }
}

impl Drop for MdevInstance {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Nothing to report to in drop; `remove` reports.
            let _ = self.remove_now();
        }
    }
}
