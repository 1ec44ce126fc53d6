//! Interrupt ioctls on the device; the Safety section of the parent module applies.
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::AsFd;

use super::{fail, ioctl_ptr, DeviceFd, Res};
use crate::uapi::buf::ArgszBuf;
use crate::uapi::vfio;

impl DeviceFd {
    /// `VFIO_DEVICE_SET_IRQS` with a request built by [`super::buf::irq_set`].
    pub(crate) fn set_irqs(&self, request: &ArgszBuf) -> Res<()> {
        let mut request = request.clone();
        // SAFETY: kind: device fd; argument: a vfio_irq_set whose argsz equals the buffer length
        // (built by `irq_set`), read during the call only. Eventfd numbers in it are only looked
        // up by the kernel; a wrong one is an EBADF/EINVAL, not memory unsafety.
        unsafe {
            ioctl_ptr(
                self.as_fd(),
                vfio::VFIO_DEVICE_SET_IRQS,
                request.as_mut_ptr(),
            )
        }
        .map(drop)
        .map_err(fail("VFIO_DEVICE_SET_IRQS"))
    }

    /// `VFIO_DEVICE_IOEVENTFD`.
    pub(crate) fn ioeventfd(&self, request: &vfio::vfio_device_ioeventfd) -> Res<()> {
        let mut request = *request;
        request.argsz = size_of::<vfio::vfio_device_ioeventfd>() as u32;
        // SAFETY: kind: device fd; argument: a vfio_device_ioeventfd with a matching argsz, read
        // during the call only.
        unsafe {
            ioctl_ptr(
                self.as_fd(),
                vfio::VFIO_DEVICE_IOEVENTFD,
                (&raw mut request).cast(),
            )
        }
        .map(drop)
        .map_err(fail("VFIO_DEVICE_IOEVENTFD"))
    }
}
