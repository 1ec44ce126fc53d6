//! [`Device`]: a VFIO device fd, with its info, regions and IRQs.
//!
//! A device is opened either through its IOMMU group ([`Group::open_device`],
//! [`crate::Container::open_pci_device`]) or through its cdev and an iommufd
//! ([`crate::iommufd::Iommufd::open_pci_device`]); everything below works the same for both.
//!
//! - [`region`]: `VFIO_DEVICE_GET_REGION_INFO` and the region capabilities.
//! - [`irq`]: `VFIO_DEVICE_GET_IRQ_INFO` and `VFIO_DEVICE_SET_IRQS`.
//!
//! # References
//!
//! - <https://docs.kernel.org/driver-api/vfio.html> ("VFIO Usage Example")
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_GET_INFO`, `VFIO_DEVICE_RESET`

mod cdev;
pub mod feature;
pub mod gfx;
pub mod irq;
pub mod migration;
pub mod region;
pub mod reset;
pub(crate) mod shared;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

use crate::error::{Errno, Error, Object, Result};
use crate::group::Group;
use crate::uapi::buf::read_pod;
use crate::uapi::caps::{self, Cap};

pub use crate::uapi::caps::DeviceCap;
use crate::uapi::ioctl::DeviceFd;
use crate::uapi::vfio;

pub use feature::{Feature, FeatureAccess, MigState, MigrationFlags};
pub use gfx::{DrmFourcc, DrmPlaneType, GfxDmaBuf, GfxPlane, GfxPlaneKind, GfxPlaneSource};
pub use irq::{IrqFlags, IrqIndex, IrqInfo};
pub use migration::{Migration, MigrationData, PrecopyInfo};
pub use region::{RegionCap, RegionFlags, RegionIndex, RegionInfo};
pub use reset::{HotResetDevice, HotResetInfo, HotResetOwner};

bitflags::bitflags! {
    /// `vfio_device_info.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DeviceFlags: u32 {
        /// `VFIO_DEVICE_FLAGS_RESET`: `VFIO_DEVICE_RESET` is supported.
        const RESET = vfio::VFIO_DEVICE_FLAGS_RESET;
        /// `VFIO_DEVICE_FLAGS_PCI`: a vfio-pci device.
        const PCI = vfio::VFIO_DEVICE_FLAGS_PCI;
        /// `VFIO_DEVICE_FLAGS_PLATFORM`: a vfio-platform device.
        const PLATFORM = vfio::VFIO_DEVICE_FLAGS_PLATFORM;
        /// `VFIO_DEVICE_FLAGS_AMBA`: a vfio-amba device.
        const AMBA = vfio::VFIO_DEVICE_FLAGS_AMBA;
        /// `VFIO_DEVICE_FLAGS_CCW`: a vfio-ccw (s390 channel I/O) device.
        const CCW = vfio::VFIO_DEVICE_FLAGS_CCW;
        /// `VFIO_DEVICE_FLAGS_AP`: a vfio-ap (s390 crypto adapter) device.
        const AP = vfio::VFIO_DEVICE_FLAGS_AP;
        /// `VFIO_DEVICE_FLAGS_FSL_MC`: a vfio-fsl-mc device.
        const FSL_MC = vfio::VFIO_DEVICE_FLAGS_FSL_MC;
        /// `VFIO_DEVICE_FLAGS_CAPS`: the info carries a capability chain.
        const CAPS = vfio::VFIO_DEVICE_FLAGS_CAPS;
        // Flags a newer kernel may add (CDX, ...) are kept, not dropped.
        const _ = !0;
    }
}

/// `VFIO_DEVICE_GET_INFO`: what kind of device this is and how many regions and IRQ indexes it
/// has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's flags.
    pub flags: DeviceFlags,
    /// One more than the highest region index.
    pub num_regions: u32,
    /// One more than the highest IRQ index.
    pub num_irqs: u32,
    /// The device info capabilities.
    pub caps: Vec<DeviceCap>,
}

impl DeviceInfo {
    /// Decodes the answer of `VFIO_DEVICE_GET_INFO`: the bytes of a `struct vfio_device_info`
    /// followed by its capability chain, as the kernel filled them (native byte order). Opening
    /// a device decodes its info with this; it is public so that captured answers can be decoded
    /// without a device. Kernels before 6.4 end the struct after `cap_offset` (20 bytes), so 20
    /// bytes are enough and the chain may start at offset 20. Nothing in `bytes` is trusted:
    /// the chain is walked with [`CapChain`](crate::uapi::caps::CapChain) and every capability decoded with
    /// [`DeviceCap::decode`].
    ///
    /// # Errors
    ///
    /// [`Malformation::Other`](crate::error::Malformation::Other) when `bytes` is shorter than
    /// 20 bytes; [`Malformation::CapChain`](crate::error::Malformation::CapChain) for a broken
    /// chain or capability (only read when the flags have `VFIO_DEVICE_FLAGS_CAPS`).
    #[doc(alias = "vfio_device_info")]
    pub fn decode(bytes: &[u8]) -> std::result::Result<DeviceInfo, crate::error::Malformation> {
        // Kernels before 6.4 end the struct at `cap_offset` (20 bytes, no `pad`) and start the
        // capability chain right there: the chain may begin at offset 20.
        let fixed = std::mem::offset_of!(vfio::vfio_device_info, pad);
        if bytes.len() < fixed {
            return Err(crate::error::Malformation::Other(format!(
                "the answer is {} bytes, shorter than the fixed part",
                bytes.len()
            )));
        }
        let mut head = [0u8; std::mem::size_of::<vfio::vfio_device_info>()];
        let n = bytes.len().min(head.len());
        head[..n].copy_from_slice(&bytes[..n]);
        let Some(raw) = read_pod::<vfio::vfio_device_info>(&head, 0) else {
            return Err(crate::error::Malformation::Other(
                "the fixed part does not read as vfio_device_info".to_string(),
            ));
        };
        let flags = DeviceFlags::from_bits_retain(raw.flags);
        let mut out = DeviceInfo {
            flags,
            num_regions: raw.num_regions,
            num_irqs: raw.num_irqs,
            caps: Vec::new(),
        };
        if flags.contains(DeviceFlags::CAPS) {
            for cap in caps::CapChain::new(bytes, raw.cap_offset, fixed) {
                let cap: Cap<'_> = cap?;
                out.caps.push(DeviceCap::decode(&cap)?);
            }
        }
        Ok(out)
    }
}

/// How the device was opened, and what it keeps alive.
pub(crate) enum Backend {
    /// Through its IOMMU group (legacy container path).
    Group(Group),
    /// Through its cdev, bound to an iommufd.
    Cdev(cdev::Binding),
}

pub(crate) struct DeviceInner {
    // Field order is drop order: the device fd closes before the group (or the iommufd binding)
    // is released. The kernel needs the device closed before its group can leave the container;
    // closing a cdev detaches and unbinds it before the IOAS it was attached to may go.
    pub(crate) fd: DeviceFd,
    name: String,
    info: DeviceInfo,
    /// What every open fd of this device shares: IRQ claims, memory decoding.
    pub(crate) shared: Arc<shared::DeviceShared>,
    backend: Backend,
}

/// An open VFIO device.
///
/// `Device` is a cheap handle (an `Arc`): clones, region mappings and interrupt handles refer to
/// the same open device and keep it (and its group and container) alive.
#[derive(Clone)]
pub struct Device(pub(crate) Arc<DeviceInner>);

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Device");
        d.field("name", &self.0.name)
            .field("fd", &self.0.fd.as_raw_fd());
        match &self.0.backend {
            Backend::Group(g) => d.field("group", &g.id()),
            Backend::Cdev(b) => d.field("iommufd_dev_id", &b.dev_id()),
        };
        d.field("info", &self.0.info).finish()
    }
}

impl Device {
    pub(crate) fn from_parts(fd: DeviceFd, name: String, group: Group) -> Result<Device> {
        Self::with_backend(fd, name, Backend::Group(group))
    }

    fn with_backend(fd: DeviceFd, name: String, backend: Backend) -> Result<Device> {
        let object = Object::Device(name.clone());
        let buf = fd.get_info().map_err(|f| f.on(object.clone()))?;
        let info = DeviceInfo::decode(buf.bytes())
            .map_err(|m| Error::malformed("VFIO_DEVICE_GET_INFO", object, m))?;
        let shared = match &backend {
            Backend::Group(group) => group.0.devices.for_device(&name),
            // A cdev is bound by one open file at a time: its state is its own.
            Backend::Cdev(_) => Arc::new(shared::DeviceShared::default()),
        };
        Ok(Device(Arc::new(DeviceInner {
            fd,
            name,
            info,
            shared,
            backend,
        })))
    }

    /// The name the device was opened with (its PCI address for vfio-pci; the cdev path for a
    /// device opened with [`crate::iommufd::Iommufd::open_cdev`]).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The group the device was opened through, or `None` for a device opened through its cdev
    /// (which is bound to an iommufd instead: [`Device::iommufd`]).
    pub fn group(&self) -> Option<&Group> {
        match &self.0.backend {
            Backend::Group(g) => Some(g),
            Backend::Cdev(_) => None,
        }
    }

    /// `VFIO_DEVICE_GET_INFO`, as read when the device was opened.
    #[doc(alias = "VFIO_DEVICE_GET_INFO")]
    pub fn info(&self) -> &DeviceInfo {
        &self.0.info
    }

    /// The device's flags.
    pub fn flags(&self) -> DeviceFlags {
        self.0.info.flags
    }

    pub(crate) fn object(&self) -> Object {
        Object::Device(self.0.name.clone())
    }

    pub(crate) fn fd(&self) -> &DeviceFd {
        &self.0.fd
    }

    /// `VFIO_DEVICE_RESET`: resets the device (function-level reset or whatever the bus
    /// driver offers).
    ///
    /// The library trusts the device's [`DeviceFlags::RESET`], the kernel's statement that a
    /// reset works (vfio-pci sets it only when the function has a usable reset method), and
    /// does not try the ioctl without it, as QEMU's VFIO code does not. Some drivers answer the
    /// ioctl without advertising it: the kernel's `mdpy` and `mbochs` samples reset their
    /// display state on `VFIO_DEVICE_RESET` but report no `RESET` flag. A driver that knows its
    /// device can issue the ioctl itself on the device's fd ([`Device`] is [`AsFd`]; the
    /// request number is [`uapi::vfio::VFIO_DEVICE_RESET`](crate::uapi::vfio::VFIO_DEVICE_RESET)).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] when the device lacks [`DeviceFlags::RESET`],
    /// [`Error::Ioctl`] when the reset fails.
    #[doc(alias = "VFIO_DEVICE_RESET")]
    pub fn reset(&self) -> Result<()> {
        if !self.flags().contains(DeviceFlags::RESET) {
            return Err(Error::NotSupported {
                op: "reset",
                object: self.object().into(),
                reason: "the device does not report VFIO_DEVICE_FLAGS_RESET".into(),
                errno: Errno::ENOTTY,
            });
        }
        self.0.fd.reset().map_err(|f| f.on(self.object()))
    }

    /// Whether two handles refer to the same open device.
    pub fn same_as(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_bytes(flags: u32, regions: u32, irqs: u32, cap_offset: u32, tail: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let argsz = 20 + tail.len() as u32;
        for w in [argsz, flags, regions, irqs, cap_offset] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn parses_a_pci_device_without_caps() {
        let info = DeviceInfo::decode(&info_bytes(
            vfio::VFIO_DEVICE_FLAGS_PCI | vfio::VFIO_DEVICE_FLAGS_RESET,
            9,
            5,
            0,
            &[],
        ))
        .unwrap();
        assert_eq!(info.flags, DeviceFlags::PCI | DeviceFlags::RESET);
        assert_eq!((info.num_regions, info.num_irqs), (9, 5));
        assert!(info.caps.is_empty());
    }

    #[test]
    fn parses_device_caps_and_rejects_a_broken_chain() {
        // One capability at offset 24 (after 4 bytes of padding): an id no kernel defines,
        // version 1, next 0, payload 4 bytes.
        let mut tail = vec![0u8; 4];
        tail.extend_from_slice(&0x7777u16.to_ne_bytes());
        tail.extend_from_slice(&1u16.to_ne_bytes());
        tail.extend_from_slice(&0u32.to_ne_bytes());
        tail.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        let info =
            DeviceInfo::decode(&info_bytes(vfio::VFIO_DEVICE_FLAGS_CAPS, 1, 1, 24, &tail)).unwrap();
        assert_eq!(info.caps.len(), 1);
        assert_eq!(
            info.caps,
            vec![DeviceCap::Unknown {
                id: 0x7777,
                version: 1
            }]
        );

        // A 6.1 kernel's answer: the 20-byte struct (no `pad`) with the chain right after it.
        let mut tail61 = Vec::new();
        tail61.extend_from_slice(&0x7777u16.to_ne_bytes());
        tail61.extend_from_slice(&1u16.to_ne_bytes());
        tail61.extend_from_slice(&0u32.to_ne_bytes());
        let info61 =
            DeviceInfo::decode(&info_bytes(vfio::VFIO_DEVICE_FLAGS_CAPS, 1, 1, 20, &tail61))
                .unwrap();
        assert_eq!(
            info61.caps.len(),
            1,
            "a chain at offset 20 (6.1's layout) is read"
        );

        // The chain points past the end.
        assert!(
            DeviceInfo::decode(&info_bytes(vfio::VFIO_DEVICE_FLAGS_CAPS, 1, 1, 4096, &tail))
                .is_err()
        );
        // Too short for the fixed part.
        assert!(DeviceInfo::decode(&[0u8; 12]).is_err());
    }
}
