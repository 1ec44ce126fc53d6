//! `VFIO_DEVICE_IOEVENTFD`: an eventfd that makes the kernel write a fixed value to a device
//! register, with RAII unregistration.

use std::fmt;
use std::os::fd::AsRawFd;

use vmm_sys_util::eventfd::EventFd;

use super::fd::{borrow_eventfd, check_eventfd, io_errno, new_eventfd, NotAnEventfd};
use crate::device::RegionIndex;
use crate::error::{Error, Object, Result};
use crate::uapi::vfio;
use crate::Device;

/// The value an [`IoEventFd`] writes, and so the width of the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoValue {
    /// A 1-byte write (`VFIO_DEVICE_IOEVENTFD_8`).
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD_8")]
    U8(u8),
    /// A 2-byte write (`VFIO_DEVICE_IOEVENTFD_16`).
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD_16")]
    U16(u16),
    /// A 4-byte write (`VFIO_DEVICE_IOEVENTFD_32`).
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD_32")]
    U32(u32),
    /// An 8-byte write (`VFIO_DEVICE_IOEVENTFD_64`; the kernel refuses it on hosts without
    /// 64-bit MMIO writes).
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD_64")]
    U64(u64),
}

impl IoValue {
    /// The width of the write in bytes.
    pub fn width(self) -> u64 {
        match self {
            IoValue::U8(_) => 1,
            IoValue::U16(_) => 2,
            IoValue::U32(_) => 4,
            IoValue::U64(_) => 8,
        }
    }

    /// The value, zero-extended.
    pub fn data(self) -> u64 {
        match self {
            IoValue::U8(v) => v.into(),
            IoValue::U16(v) => v.into(),
            IoValue::U32(v) => v.into(),
            IoValue::U64(v) => v,
        }
    }

    fn flag(self) -> u32 {
        match self {
            IoValue::U8(_) => vfio::VFIO_DEVICE_IOEVENTFD_8,
            IoValue::U16(_) => vfio::VFIO_DEVICE_IOEVENTFD_16,
            IoValue::U32(_) => vfio::VFIO_DEVICE_IOEVENTFD_32,
            IoValue::U64(_) => vfio::VFIO_DEVICE_IOEVENTFD_64,
        }
    }
}

/// The `vfio_device_ioeventfd` for a registration (`fd >= 0`) or its removal (`fd = -1`, with
/// the same offset, width and value: that is how the kernel finds it).
pub(crate) fn request(offset: u64, value: IoValue, fd: i32) -> vfio::vfio_device_ioeventfd {
    vfio::vfio_device_ioeventfd {
        argsz: crate::uapi::buf::argsz_of::<vfio::vfio_device_ioeventfd>(),
        flags: value.flag(),
        offset,
        data: value.data(),
        fd,
        reserved: 0,
    }
}

/// An eventfd registered with `VFIO_DEVICE_IOEVENTFD`: each time it is signalled, the kernel
/// writes [`IoEventFd::value`] at [`IoEventFd::offset`] of [`IoEventFd::region`], without a
/// system call from the writer's side beyond the eventfd write (or none at all, when the eventfd
/// is also a KVM ioeventfd or another kernel component signals it).
///
/// Dropping it unregisters it from the kernel and *then* closes the eventfd; errors at that
/// point are ignored (use [`IoEventFd::unregister`] to see them), and nothing panics.
///
/// # Examples
///
/// ```no_run
/// use uvfio::device::RegionIndex;
/// use uvfio::irq::IoValue;
/// # let device: uvfio::Device = unimplemented!();
/// // A doorbell: each signal writes 1 to BAR0 + 0x1000.
/// let doorbell = device.ioeventfd(RegionIndex::BAR0, 0x1000, IoValue::U32(1))?;
/// doorbell.signal()?;
/// # Ok::<(), uvfio::Error>(())
/// ```
pub struct IoEventFd {
    // Field order: the eventfd closes after Drop has unregistered it.
    eventfd: EventFd,
    device: Device,
    region: RegionIndex,
    offset: u64,
    value: IoValue,
    /// The device fd offset of the write (region offset + `offset`), as registered.
    raw_offset: u64,
    registered: bool,
}

impl fmt::Debug for IoEventFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoEventFd")
            .field("device", &self.device.name())
            .field("region", &self.region)
            .field("offset", &self.offset)
            .field("value", &self.value)
            .field("eventfd", &self.eventfd.as_raw_fd())
            .finish()
    }
}

impl IoEventFd {
    /// The eventfd that triggers the write.
    pub fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// The region written to.
    pub fn region(&self) -> RegionIndex {
        self.region
    }

    /// The offset of the write within the region.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The value written, and so the width of the write.
    pub fn value(&self) -> IoValue {
        self.value
    }

    /// Signals the eventfd once, so the kernel performs the write once (asynchronously: the
    /// write happens in the kernel's eventfd wake-up, usually before this returns, at the latest
    /// shortly after in a kernel worker).
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] if writing the eventfd fails.
    pub fn signal(&self) -> Result<()> {
        self.eventfd.write(1).map_err(|e| Error::Syscall {
            op: "write",
            object: self.object().into(),
            errno: io_errno(&e),
        })
    }

    fn object(&self) -> Object {
        Object::Region {
            device: self.device.name().to_string(),
            index: self.region.0,
        }
    }

    /// Unregisters now and reports the kernel's answer (dropping does the same but ignores
    /// errors); the eventfd is closed afterwards either way.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD")]
    pub fn unregister(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        if !self.registered {
            return Ok(());
        }
        self.registered = false;
        // A registration left behind would refuse the same one later (EEXIST) until the device
        // closes: retried like every teardown (the fault-injection sweep found it).
        crate::error::retry_teardown(|| {
            self.device
                .fd()
                .ioeventfd(&request(self.raw_offset, self.value, -1))
                .map_err(|f| f.on(self.object()))
        })
    }
}

impl Drop for IoEventFd {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `unregister` reports them.
        let _ = self.teardown();
    }
}

impl Device {
    /// `VFIO_DEVICE_IOEVENTFD`: registers a new eventfd that makes the kernel write `value` at
    /// `offset` of `region` each time it is signalled.
    ///
    /// # Errors
    ///
    /// As [`Device::ioeventfd_with`], and [`Error::Syscall`] when the eventfd cannot be created.
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD")]
    pub fn ioeventfd(
        &self,
        region: impl Into<RegionIndex>,
        offset: u64,
        value: IoValue,
    ) -> Result<IoEventFd> {
        let region = region.into();
        let eventfd = new_eventfd().map_err(|errno| Error::Syscall {
            op: "eventfd",
            object: self.region_object_for_io(region).into(),
            errno,
        })?;
        self.ioeventfd_with(region, offset, value, eventfd)
    }

    fn region_object_for_io(&self, region: RegionIndex) -> Object {
        Object::Region {
            device: self.name().to_string(),
            index: region.0,
        }
    }

    /// `VFIO_DEVICE_IOEVENTFD` with your eventfd (for example one that is also registered as a
    /// KVM ioeventfd, so a guest's doorbell write reaches the device without leaving the
    /// kernel). The returned handle owns it.
    ///
    /// vfio-pci accepts BARs only (not config space or the ROM), not over the MSI-X table, at
    /// most 1000 registrations per device, and each (offset, width, value) once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for a region the device does not have or a write
    /// past the region's end, (`EBADF`, `EINVAL`) for a descriptor that is not an open eventfd;
    /// [`Error::Ioctl`] when the kernel refuses: `EINVAL` for a region it does not support,
    /// `EEXIST` for a duplicate, `ENOSPC` past its limit, `ENOTTY` for a bus driver without
    /// ioeventfds.
    #[doc(alias = "VFIO_DEVICE_IOEVENTFD")]
    pub fn ioeventfd_with(
        &self,
        region: impl Into<RegionIndex>,
        offset: u64,
        value: IoValue,
        eventfd: EventFd,
    ) -> Result<IoEventFd> {
        let region = region.into();
        let object = || self.region_object_for_io(region);
        let info = self.region_info(region)?;
        let end = offset.checked_add(value.width());
        if end.is_none_or(|end| end > info.size) {
            return Err(Error::out_of_range(
                "ioeventfd",
                object(),
                format!(
                    "a {}-byte write at offset {offset:#x} does not fit in the region's {:#x} bytes",
                    value.width(),
                    info.size
                ),
            ));
        }
        let Some(raw_offset) = info.offset.checked_add(offset) else {
            return Err(Error::out_of_range(
                "ioeventfd",
                object(),
                format!("offset {offset:#x} overflows the region's file offset"),
            ));
        };
        check_eventfd(borrow_eventfd(&eventfd)).map_err(|why| Error::InvalidArgument {
            op: "ioeventfd",
            object: object().into(),
            reason: match why {
                NotAnEventfd::Closed => format!("fd {} is not open", eventfd.as_raw_fd()).into(),
                NotAnEventfd::OtherFile | NotAnEventfd::Blocking => {
                    format!("fd {} is not an eventfd", eventfd.as_raw_fd()).into()
                }
            },
            errno: why.errno(),
        })?;
        self.fd()
            .ioeventfd(&request(raw_offset, value, eventfd.as_raw_fd()))
            .map_err(|f| f.on(object()))?;
        Ok(IoEventFd {
            eventfd,
            device: self.clone(),
            region,
            offset,
            value,
            raw_offset,
            registered: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_width() {
        assert_eq!(IoValue::U8(0xfa).width(), 1);
        assert_eq!(IoValue::U16(2).width(), 2);
        assert_eq!(IoValue::U32(3).width(), 4);
        assert_eq!(IoValue::U64(u64::MAX).width(), 8);
        assert_eq!(IoValue::U8(0xfa).data(), 0xfa);
        assert_eq!(IoValue::U64(u64::MAX).data(), u64::MAX);
    }

    #[test]
    fn registration_and_removal_requests() {
        let add = request(0x1_0000_0000_0083, IoValue::U8(0xfa), 7);
        assert_eq!(add.argsz, 32);
        assert_eq!(add.flags, vfio::VFIO_DEVICE_IOEVENTFD_8);
        assert_eq!(add.offset, 0x1_0000_0000_0083);
        assert_eq!(add.data, 0xfa);
        assert_eq!(add.fd, 7);
        // The kernel finds the registration to remove by offset, width and value.
        let remove = request(0x1_0000_0000_0083, IoValue::U8(0xfa), -1);
        assert_eq!(remove.fd, -1);
        assert_eq!(
            (remove.flags, remove.offset, remove.data),
            (add.flags, add.offset, add.data)
        );
        for (v, flag) in [
            (IoValue::U16(1), vfio::VFIO_DEVICE_IOEVENTFD_16),
            (IoValue::U32(1), vfio::VFIO_DEVICE_IOEVENTFD_32),
            (IoValue::U64(1), vfio::VFIO_DEVICE_IOEVENTFD_64),
        ] {
            let r = request(0, v, 3);
            assert_eq!(r.flags, flag);
            assert_eq!(r.flags & !vfio::VFIO_DEVICE_IOEVENTFD_SIZE_MASK, 0);
        }
    }
}
