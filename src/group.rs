//! [`Group`]: `/dev/vfio/N`, the unit of ownership.
//!
//! The IOMMU isolates groups, not devices, so the kernel hands out a group only when every
//! device in it is bound to a VFIO driver (the group is *viable*). A group joins a
//! [`Container`], and its devices are then opened by name.
//!
//! # References
//!
//! - <https://docs.kernel.org/driver-api/vfio.html> ("Groups, Devices, and IOMMUs")
//! - `include/uapi/linux/vfio.h`: `VFIO_GROUP_GET_STATUS`, `VFIO_GROUP_SET_CONTAINER`,
//!   `VFIO_GROUP_UNSET_CONTAINER`, `VFIO_GROUP_GET_DEVICE_FD`

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::container::Container;
use crate::device::Device;
use crate::error::{Errno, Error, Object, Result};
use crate::pci::sysfs::Sysfs;
use crate::pci::PciAddress;
use crate::uapi::ioctl::GroupFd;
use crate::uapi::node::{self, Node};
use crate::uapi::vfio;

bitflags::bitflags! {
    /// `vfio_group_status.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct GroupFlags: u32 {
        /// `VFIO_GROUP_FLAGS_VIABLE`: every device of the group is bound to a VFIO driver.
        const VIABLE = vfio::VFIO_GROUP_FLAGS_VIABLE;
        /// `VFIO_GROUP_FLAGS_CONTAINER_SET`: the group is in a container.
        const CONTAINER_SET = vfio::VFIO_GROUP_FLAGS_CONTAINER_SET;
        // Flags a newer kernel may add are kept, not dropped.
        const _ = !0;
    }
}

pub(crate) struct GroupInner {
    pub(crate) fd: GroupFd,
    id: u32,
    container: Mutex<Option<Container>>,
    /// The state each open device of the group shares between its fds.
    pub(crate) devices: crate::device::shared::SharedRegistry,
}

impl Drop for GroupInner {
    fn drop(&mut self) {
        // Devices hold a `Group`, so none of this crate's device handles is open any more. The
        // group leaves its container here, explicitly, rather than by the close of `fd` that
        // follows (fields drop after this function): the result then says whether it left.
        // The container handle taken here is released at the end of this function, before
        // `fd` closes; the kernel's own reference keeps the container alive as long as the
        // group is still in it.
        let container = self
            .container
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(container) = container {
            match self.fd.unset_container() {
                Ok(()) => {
                    container.forget_group(self.id);
                    container.dma_state().invalidate_ranges();
                }
                // EBUSY: a device fd of the group is still open outside the crate's handles
                // (a `dup`, one passed to another process). The kernel keeps the group in the
                // container, with the IOMMU type and every mapping, until that fd closes; the
                // container must go on counting it rather than claim it left.
                Err(_) => container.strand_group(self.id),
            }
        }
    }
}

/// `/dev/vfio/N`: a VFIO group.
///
/// `Group` is a cheap handle (an `Arc`): clones refer to the same open group, and devices
/// opened from it keep it alive. When the last handle goes, the group leaves its container and
/// its fd is closed.
#[derive(Clone)]
pub struct Group(pub(crate) Arc<GroupInner>);

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.0.id)
            .field("fd", &self.0.fd.as_raw_fd())
            .field("in_container", &self.container_slot().is_some())
            .finish()
    }
}

impl Group {
    /// Opens `/dev/vfio/<id>`, or the no-IOMMU group `/dev/vfio/noiommu-<id>` when only that
    /// exists (`vfio.enable_unsafe_noiommu_mode=1`). Opening a no-IOMMU group is harmless by
    /// itself: its devices can do DMA only once the container's model is set to no-IOMMU, which
    /// only the `unsafe` [`Container::set_iommu_unchecked`] and [`DmaSpace::open_noiommu`] do.
    ///
    /// [`DmaSpace::open_noiommu`]: crate::DmaSpace::open_noiommu
    ///
    /// # Errors
    ///
    /// [`Error::Open`]: `ENOENT` when no such group exists (no device of it is bound to
    /// vfio-pci), `EBUSY` when it is already open (in this process or another), `EACCES`
    /// without permission (a no-IOMMU group also needs `CAP_SYS_RAWIO`).
    pub fn open(id: u32) -> Result<Group> {
        let node = format!("/dev/vfio/{id}");
        let noiommu = format!("/dev/vfio/noiommu-{id}");
        if !Path::new(&node).exists() && Path::new(&noiommu).exists() {
            return Self::open_path(id, noiommu);
        }
        Self::open_path(id, node)
    }

    /// Opens the group node at `path` (for a non-standard `/dev` layout, or a no-IOMMU group's
    /// `/dev/vfio/noiommu-N`), as group `id`.
    ///
    /// The file must be a character device of the `vfio` major (`/proc/devices`) whose sysfs
    /// name (`/sys/dev/char/<major>:<minor>`) is `id` or `noiommu-<id>`, checked with `stat`
    /// before the open and `fstat` after it: no VFIO request is ever issued on another file, and
    /// the group is never known under a number that is not its own.
    ///
    /// # Errors
    ///
    /// As [`Group::open`]; [`Error::InvalidArgument`] when `path` is not a VFIO group node or is
    /// the node of another group; [`Error::Sysfs`] when its sysfs name cannot be read.
    pub fn open_path(id: u32, path: impl AsRef<Path>) -> Result<Group> {
        let path = path.as_ref();
        node::check_path(path, Node::Group(id))?;
        let fd = GroupFd::open(path).map_err(|errno| Error::Open {
            path: path.to_path_buf(),
            errno,
        })?;
        node::check_fd(path, &fd, Node::Group(id))?;
        let group = Group(Arc::new(GroupInner {
            fd,
            id,
            container: Mutex::new(None),
            devices: Default::default(),
        }));
        // Proves the node really is a VFIO group before anyone relies on it.
        group.status()?;
        Ok(group)
    }

    /// Opens the group of the PCI device at `address`, found through sysfs.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the device does not exist or has no IOMMU group, else as
    /// [`Group::open`].
    pub fn open_pci(address: &PciAddress) -> Result<Group> {
        Self::open(Sysfs::new().iommu_group(address)?)
    }

    /// Opens the group of the device whose sysfs directory is `device_path` (for example
    /// `/sys/bus/pci/devices/0000:00:03.0` or a platform device's directory).
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when `device_path` has no `iommu_group` link, else as [`Group::open`].
    pub fn open_sysfs(device_path: impl AsRef<Path>) -> Result<Group> {
        let link = device_path.as_ref().join("iommu_group");
        let target = std::fs::read_link(&link).map_err(|e| Error::Sysfs {
            op: "resolving",
            path: link.clone(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        let id = target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or(Error::Sysfs {
                op: "resolving",
                path: link,
                errno: Errno::EINVAL,
            })?;
        Self::open(id)
    }

    /// The group's number (the `N` of `/dev/vfio/N`).
    pub fn id(&self) -> u32 {
        self.0.id
    }

    fn container_slot(&self) -> MutexGuard<'_, Option<Container>> {
        // Updates are single assignments: a poisoned lock still holds a consistent value.
        self.0.container.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `VFIO_GROUP_GET_STATUS`.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if the ioctl fails.
    #[doc(alias = "VFIO_GROUP_GET_STATUS")]
    pub fn status(&self) -> Result<GroupFlags> {
        self.0
            .fd
            .get_status()
            .map(GroupFlags::from_bits_retain)
            .map_err(|f| f.on(Object::Group(self.0.id)))
    }

    /// Whether every device of the group is bound to a VFIO driver.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if the ioctl fails.
    pub fn is_viable(&self) -> Result<bool> {
        Ok(self.status()?.contains(GroupFlags::VIABLE))
    }

    /// `VFIO_GROUP_SET_CONTAINER`: joins `container`.
    ///
    /// Joining the container the group is already in is a no-op.
    ///
    /// # Errors
    ///
    /// [`Error::GroupNotViable`] naming the devices not bound to vfio-pci,
    /// [`Error::InvalidArgument`] when the group is already in another container,
    /// [`Error::Ioctl`] when the kernel refuses (`EINVAL`: the container's IOMMU type cannot
    /// take this group).
    #[doc(alias = "VFIO_GROUP_SET_CONTAINER")]
    pub fn set_container(&self, container: &Container) -> Result<()> {
        let mut slot = self.container_slot();
        if let Some(current) = slot.as_ref() {
            if current.same_as(container) {
                return Ok(());
            }
            return Err(Error::invalid(
                "set_container",
                Object::Group(self.0.id),
                "the group is already in another container; unset it first",
            ));
        }
        if !self.is_viable()? {
            return Err(self.not_viable_error());
        }
        self.0
            .fd
            .set_container(container.fd())
            .map_err(|f| f.on(Object::Group(self.0.id)))?;
        container.register_group(self.0.id, &self.0);
        // The group's reserved regions may have shrunk the valid IOVA ranges.
        container.dma_state().invalidate_ranges();
        *slot = Some(container.clone());
        Ok(())
    }

    fn not_viable_error(&self) -> Error {
        // Best effort: the listing helps the user, but its own failure must not hide the
        // actual problem.
        let members = Sysfs::new().non_vfio_members(self.0.id).unwrap_or_default();
        Error::GroupNotViable {
            group: self.0.id,
            members,
            errno: Errno::EPERM,
        }
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`: leaves the container.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the group is in no container, [`Error::Ioctl`] with
    /// `EBUSY` while devices of the group are open.
    #[doc(alias = "VFIO_GROUP_UNSET_CONTAINER")]
    pub fn unset_container(&self) -> Result<()> {
        let mut slot = self.container_slot();
        let Some(container) = slot.as_ref() else {
            return Err(Error::invalid(
                "unset_container",
                Object::Group(self.0.id),
                "the group is not in a container",
            ));
        };
        self.0
            .fd
            .unset_container()
            .map_err(|f| f.on(Object::Group(self.0.id)))?;
        container.forget_group(self.0.id);
        container.dma_state().invalidate_ranges();
        *slot = None;
        Ok(())
    }

    /// The container the group is in, if any.
    pub fn container(&self) -> Option<Container> {
        self.container_slot().clone()
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`: opens the device `name` of this group (a PCI address such as
    /// `0000:06:0d.0` for vfio-pci).
    ///
    /// The group must be in a container whose IOMMU type is set.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a name with a NUL byte or when the group is in no
    /// container, [`Error::Ioctl`]: `EINVAL` when the IOMMU type is not set yet, `ENODEV` when
    /// the name is not a device of this group, `EBUSY` when it is already open elsewhere.
    #[doc(alias = "VFIO_GROUP_GET_DEVICE_FD")]
    pub fn open_device(&self, name: &str) -> Result<Device> {
        let object = || Object::Device(name.to_string());
        let cname = CString::new(name).map_err(|_| {
            Error::invalid(
                "open_device",
                object(),
                "the device name contains a NUL byte",
            )
        })?;
        if self.container().is_none() {
            return Err(Error::invalid(
                "open_device",
                Object::Group(self.0.id),
                "the group must join a container (Group::set_container) and the container's \
                 IOMMU type must be set (Container::set_iommu) before a device can be opened",
            ));
        }
        let fd = self
            .0
            .fd
            .get_device_fd(&cname)
            .map_err(|f| f.on(object()))?;
        Device::from_parts(fd, name.to_string(), self.clone())
    }

    /// The sysfs names of the devices in this group, as listed by
    /// `/sys/kernel/iommu_groups/N/devices`.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the listing fails.
    pub fn devices(&self) -> Result<Vec<String>> {
        Sysfs::new().group_devices(self.0.id)
    }

    /// The path of the group node (`/dev/vfio/N`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/vfio/{}", self.0.id))
    }
}

impl AsFd for Group {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl AsRawFd for Group {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_group_is_a_typed_open_error() {
        let err = Group::open(999_999).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Open {
                    errno: Errno::ENOENT,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("/dev/vfio/999999"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_group_is_rejected_before_any_ioctl() {
        // Before the node check, VFIO_GROUP_GET_STATUS was issued on /dev/null (ENOTTY).
        for path in ["/dev/null", "/proc/self/exe"] {
            let err = Group::open_path(1, path).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidArgument {
                        errno: Errno::EINVAL,
                        ..
                    }
                ),
                "{err}"
            );
            assert!(!err.to_string().contains("VFIO_GROUP_GET_STATUS"), "{err}");
        }
    }

    #[test]
    fn flags_keep_unknown_bits() {
        let f = GroupFlags::from_bits_retain(0x8000_0001);
        assert!(f.contains(GroupFlags::VIABLE));
        assert_eq!(f.bits(), 0x8000_0001);
    }
}
