//! [`Iommufd`]: the modern front door of VFIO, `/dev/iommu`, and the objects it owns.
//!
//! An iommufd owns I/O address spaces ([`Ioas`]) and the devices bound to it. A device is
//! opened from its cdev (`/dev/vfio/devices/vfioN`, [`Iommufd::open_pci_device`] finds it from
//! a PCI address), bound to the iommufd when opened, and attached to an IOAS with
//! [`Device::attach`]; from then on it is the same [`Device`] as one opened through a group:
//! regions, IRQs, reset and features work unchanged.
//!
//! ```no_run
//! use uvfio::iommufd::Iommufd;
//!
//! let iommufd = Iommufd::new()?;
//! let ioas = iommufd.alloc_ioas()?;
//! let device = iommufd.open_pci_device(&"0000:00:03.0".parse()?)?;
//! device.attach(&ioas)?;
//! println!("IOVA ranges: {:?}", ioas.iova_ranges()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Dropping a device closes its cdev (the kernel detaches and unbinds it); dropping the last
//! handle of an IOAS destroys it (devices attached to it keep it alive); the iommufd closes when
//! its last handle, IOAS and device are gone.
//!
//! # References
//!
//! - <https://docs.kernel.org/userspace-api/iommufd.html>
//! - `include/uapi/linux/iommufd.h`, `include/uapi/linux/vfio.h` (`VFIO_DEVICE_BIND_IOMMUFD`)
//! - Needs Linux 6.6+ with `CONFIG_IOMMUFD` and `CONFIG_VFIO_DEVICE_CDEV` (the emulated host's
//!   `full` flavour has both; Debian's kernels have neither).

mod hwpt;
mod ioas;

pub use hwpt::{Hwpt, HwptFlags};
pub use ioas::{Ioas, IoasRanges};

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::device::Device;
use crate::error::{Errno, Error, Object, Result};
use crate::pci::sysfs::Sysfs;
use crate::pci::PciAddress;
use crate::uapi::ioctl::{DeviceFd, IommufdFd};
use crate::uapi::iommufd as uapi;
use crate::uapi::node::{self, Node};

/// The path of the iommufd character device.
pub const IOMMUFD_PATH: &str = "/dev/iommu";

pub(crate) struct IommufdInner {
    pub(crate) fd: IommufdFd,
}

/// An open `/dev/iommu`.
///
/// A cheap handle (an `Arc`): IOASes and devices hold one, so the iommufd lives as long as any
/// of them.
#[derive(Clone)]
pub struct Iommufd(pub(crate) Arc<IommufdInner>);

impl fmt::Debug for Iommufd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iommufd")
            .field("fd", &self.0.fd.as_raw_fd())
            .finish()
    }
}

/// What the IOMMU behind a device reports (`IOMMU_GET_HW_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HwInfo {
    /// An Intel VT-d unit, with its capability and extended capability registers.
    IntelVtd {
        /// The capability register (`CAP_REG`).
        cap: u64,
        /// The extended capability register (`ECAP_REG`).
        ecap: u64,
        /// `IOMMU_HW_INFO_VTD_*` flags (errata).
        flags: u32,
        /// `IOMMU_HW_CAP_*` bits (dirty tracking, PASID).
        capabilities: u64,
    },
    /// Another kind of IOMMU (`IOMMU_HW_INFO_TYPE_*` value), or one that reports nothing.
    Other {
        /// The kernel's data type number.
        data_type: u32,
        /// `IOMMU_HW_CAP_*` bits.
        capabilities: u64,
    },
}

impl HwInfo {
    /// `IOMMU_HW_CAP_*` bits: what the IOMMU can do for this device.
    pub fn capabilities(&self) -> u64 {
        match *self {
            HwInfo::IntelVtd { capabilities, .. } | HwInfo::Other { capabilities, .. } => {
                capabilities
            }
        }
    }

    /// Whether the IOMMU can track dirty pages for this device (`IOMMU_HW_CAP_DIRTY_TRACKING`).
    pub fn dirty_tracking(&self) -> bool {
        self.capabilities() & uapi::IOMMU_HW_CAP_DIRTY_TRACKING != 0
    }
}

impl Iommufd {
    /// Opens `/dev/iommu`.
    ///
    /// # Errors
    ///
    /// [`Error::Open`]: `ENOENT` when the kernel has no iommufd (`CONFIG_IOMMUFD`, Linux 6.2+),
    /// `EACCES` without permission on the node; [`Error::InvalidArgument`] when the node is not
    /// the iommufd device.
    pub fn new() -> Result<Iommufd> {
        Ok(Iommufd(Arc::new(IommufdInner {
            fd: open_iommufd()?,
        })))
    }

    /// `IOMMU_IOAS_ALLOC`: a new, empty I/O address space, destroyed when its last handle (and
    /// the last device attached to it) is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses (`ENOMEM`).
    #[doc(alias = "IOMMU_IOAS_ALLOC")]
    pub fn alloc_ioas(&self) -> Result<Ioas> {
        let id = self.0.fd.ioas_alloc().map_err(|f| f.on(Object::Iommufd))?;
        Ok(Ioas::adopt(self.clone(), id))
    }

    /// Opens a device from its cdev (`/dev/vfio/devices/vfioN`) and binds it to this iommufd
    /// (`VFIO_DEVICE_BIND_IOMMUFD`). Attach it to an IOAS ([`Device::attach`]) before using DMA.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the cdev cannot be opened (`ENOENT`: no such device, or the kernel
    /// has no cdev support), [`Error::InvalidArgument`] when the path is not a VFIO device
    /// cdev (nothing is issued on it), [`Error::Ioctl`]
    /// when the bind fails (`EINVAL`: the device is open already, through another cdev fd or its
    /// group; `EPERM`: a no-IOMMU device).
    pub fn open_cdev(&self, path: impl AsRef<Path>) -> Result<Device> {
        let path = path.as_ref();
        Device::from_cdev(open_cdev(path)?, path.display().to_string(), self.clone())
    }

    /// Opens the PCI device at `address` through its cdev (found in sysfs as
    /// `/sys/bus/pci/devices/<address>/vfio-dev/vfioN`) and binds it to this iommufd. The
    /// device is named by its address, as one opened through its group.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the device has no `vfio-dev` entry (not bound to vfio-pci, or a
    /// kernel without `CONFIG_VFIO_DEVICE_CDEV`), else as [`Iommufd::open_cdev`].
    pub fn open_pci_device(&self, address: &PciAddress) -> Result<Device> {
        let cdev = cdev_of(&Sysfs::new().device_dir(address))?;
        Device::from_cdev(open_cdev(&cdev)?, address.to_string(), self.clone())
    }

    /// Opens the VFIO device whose sysfs directory is `sysfs_dir` (any bus: a PCI function, a
    /// mediated device `/sys/bus/mdev/devices/<uuid>`) through its cdev, found in the
    /// directory's `vfio-dev/`, and binds it to this iommufd. The device is named after the
    /// directory.
    ///
    /// # Errors
    ///
    /// [`Error::Sysfs`] when the directory has no `vfio-dev/vfioN` (no VFIO driver bound, or a
    /// kernel without `CONFIG_VFIO_DEVICE_CDEV`), otherwise as [`Iommufd::open_cdev`].
    pub fn open_device_at(&self, sysfs_dir: impl AsRef<Path>) -> Result<Device> {
        let dir = sysfs_dir.as_ref();
        let cdev = cdev_of(dir)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| cdev.display().to_string());
        Device::from_cdev(open_cdev(&cdev)?, name, self.clone())
    }

    /// `IOMMU_GET_HW_INFO`: what the IOMMU behind a device bound to this iommufd can do.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a device not bound to this iommufd, [`Error::Ioctl`]
    /// when the kernel refuses (`EOPNOTSUPP` for an IOMMU that reports nothing, `ENOENT` for a
    /// mediated device, which has no IOMMU of its own).
    #[doc(alias = "IOMMU_GET_HW_INFO")]
    pub fn hw_info(&self, device: &Device) -> Result<HwInfo> {
        let dev_id = self.dev_id_of(device, "hw_info")?;
        let (info, vtd) = self
            .0
            .fd
            .get_hw_info(dev_id)
            .map_err(|f| f.on(device.object()))?;
        Ok(match info.out_data_type {
            uapi::IOMMU_HW_INFO_TYPE_INTEL_VTD => HwInfo::IntelVtd {
                cap: vtd.cap_reg,
                ecap: vtd.ecap_reg,
                flags: vtd.flags,
                capabilities: info.out_capabilities,
            },
            data_type => HwInfo::Other {
                data_type,
                capabilities: info.out_capabilities,
            },
        })
    }

    /// `IOMMU_OPTION_RLIMIT_MODE`: whether the pages this iommufd pins are charged to the
    /// process's `RLIMIT_MEMLOCK` (`true`) or to the user's (`false`, the default).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses.
    pub fn rlimit_per_process(&self) -> Result<bool> {
        self.0
            .fd
            .option(
                uapi::IOMMU_OPTION_RLIMIT_MODE,
                uapi::IOMMU_OPTION_OP_GET,
                0,
                0,
            )
            .map(|v| v != 0)
            .map_err(|f| f.on(Object::Iommufd))
    }

    /// Sets `IOMMU_OPTION_RLIMIT_MODE` (see [`Iommufd::rlimit_per_process`]); a global option
    /// that needs privilege (`CAP_SYS_RESOURCE`).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`]: `EPERM` without the privilege, else when the kernel refuses.
    pub fn set_rlimit_per_process(&self, per_process: bool) -> Result<()> {
        self.0
            .fd
            .option(
                uapi::IOMMU_OPTION_RLIMIT_MODE,
                uapi::IOMMU_OPTION_OP_SET,
                0,
                u64::from(per_process),
            )
            .map(drop)
            .map_err(|f| f.on(Object::Iommufd))
    }

    /// Whether two handles refer to the same open iommufd.
    pub fn same_as(&self, other: &Iommufd) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The device's id in this iommufd, or an error naming `op`.
    fn dev_id_of(&self, device: &Device, op: &'static str) -> Result<u32> {
        match device.iommufd() {
            Some((iommufd, id)) if iommufd.same_as(self) => Ok(id),
            _ => Err(Error::invalid(
                op,
                device.object(),
                "the device is not bound to this iommufd (open it with Iommufd::open_cdev or \
                 Iommufd::open_pci_device)",
            )),
        }
    }
}

/// Opens `/dev/iommu`, checked before and after the open to be the iommufd device
/// ([`Node::Iommufd`]), so that no request reaches another file.
pub(crate) fn open_iommufd() -> Result<IommufdFd> {
    let path = Path::new(IOMMUFD_PATH);
    node::check_path(path, Node::Iommufd)?;
    let fd = IommufdFd::open(path).map_err(|errno| Error::Open {
        path: path.to_path_buf(),
        errno,
    })?;
    node::check_fd(path, &fd, Node::Iommufd)?;
    Ok(fd)
}

/// Opens a device cdev, checked before and after the open to be one ([`Node::DeviceCdev`]).
fn open_cdev(path: &Path) -> Result<DeviceFd> {
    node::check_path(path, Node::DeviceCdev)?;
    let fd = DeviceFd::open_cdev(path).map_err(|errno| Error::Open {
        path: path.to_path_buf(),
        errno,
    })?;
    node::check_fd(path, &fd, Node::DeviceCdev)?;
    Ok(fd)
}

/// `/dev/vfio/devices/vfioN` of the device whose sysfs directory is `dir`.
fn cdev_of(dir: &Path) -> Result<PathBuf> {
    let vfio_dev = dir.join("vfio-dev");
    let entries = std::fs::read_dir(&vfio_dev).map_err(|e| Error::Sysfs {
        op: "listing",
        path: vfio_dev.clone(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("vfio") {
            return Ok(Path::new("/dev/vfio/devices").join(name));
        }
    }
    Err(Error::Sysfs {
        op: "listing",
        path: vfio_dev,
        errno: Errno::ENOENT,
    })
}

impl AsFd for Iommufd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl AsRawFd for Iommufd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}
