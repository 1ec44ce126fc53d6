//! The device cdev and iommufd (Linux 6.6+; `/dev/vfio/devices/vfioN`).

use super::*;

/// Argument of [`VFIO_DEVICE_BIND_IOMMUFD`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_bind_iommufd {
    /// Size of this struct.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The `/dev/iommu` fd to bind to.
    pub iommufd: i32,
    /// Output: the device's id in that iommufd.
    pub out_devid: u32,
}
/// Binds a device cdev to an iommufd (required before any other device ioctl on the cdev).
pub const VFIO_DEVICE_BIND_IOMMUFD: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 18);

/// Argument of [`VFIO_DEVICE_ATTACH_IOMMUFD_PT`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_attach_iommufd_pt {
    /// Size of this struct.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// In: an IOAS or HWPT id; out: the HWPT the device is attached to.
    pub pt_id: u32,
}
/// Attaches a bound device to an IOAS or HWPT (or replaces its attachment).
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 19);

/// Argument of [`VFIO_DEVICE_DETACH_IOMMUFD_PT`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_detach_iommufd_pt {
    /// Size of this struct.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
}
/// Detaches a bound device from its IOAS or HWPT.
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 20);
