//! Interrupt ioctls on the device; the Safety section of the parent module applies.
#![allow(unsafe_code)]

use std::fmt;
use std::mem::size_of;

use super::{ioctl_ptr, DeviceFd, Res};
use crate::uapi::buf::argsz_of;
use crate::uapi::buf::ArgszBuf;
use crate::uapi::vfio;

/// The most `DATA_BOOL` entries [`DeviceFd::set_irqs_small`] carries on the stack.
pub(crate) const SMALL_IRQ_SET: usize = 64;

/// A `vfio_irq_set` with room for a short data array, built on the stack.
#[repr(C)]
struct SmallIrqSet {
    set: vfio::vfio_irq_set,
    data: [u8; SMALL_IRQ_SET],
}

// The data array starts right after the header, as in the kernel's struct.
const _: () = assert!(std::mem::offset_of!(SmallIrqSet, data) == size_of::<vfio::vfio_irq_set>());

/// A `VFIO_DEVICE_SET_IRQS` request in a trace record.
fn irq_set_args(f: &mut fmt::Formatter<'_>, set: &vfio::vfio_irq_set) -> fmt::Result {
    write!(
        f,
        "index={} start={} count={} flags={:#x}",
        set.index, set.start, set.count, set.flags
    )
}

impl DeviceFd {
    /// `VFIO_DEVICE_SET_IRQS` without a heap buffer, for the hot requests: `DATA_NONE`
    /// (`bools` is `None`, `count` vectors) or `DATA_BOOL` with at most [`SMALL_IRQ_SET`]
    /// entries. `flags` is the action bit; the data bit is added here. `None` when `bools` is
    /// too long for the stack form.
    pub(crate) fn set_irqs_small(
        &self,
        index: u32,
        action: u32,
        start: u32,
        count: u32,
        bools: Option<&[bool]>,
    ) -> Option<Res<()>> {
        let header = size_of::<vfio::vfio_irq_set>();
        let mut request = SmallIrqSet {
            set: vfio::vfio_irq_set {
                argsz: argsz_of::<vfio::vfio_irq_set>(),
                flags: action | vfio::VFIO_IRQ_SET_DATA_NONE,
                index,
                start,
                count,
            },
            data: [0; SMALL_IRQ_SET],
        };
        if let Some(bools) = bools {
            if bools.len() > SMALL_IRQ_SET {
                return None;
            }
            for (d, &b) in request.data.iter_mut().zip(bools) {
                *d = u8::from(b);
            }
            // At most SMALL_IRQ_SET (checked above): the conversions cannot fail.
            let count = u32::try_from(bools.len()).ok()?;
            request.set.argsz = u32::try_from(header + bools.len()).ok()?;
            request.set.flags = action | vfio::VFIO_IRQ_SET_DATA_BOOL;
            request.set.count = count;
        }
        let set = request.set;
        // SAFETY: kind: device fd; argument: a vfio_irq_set followed by its data array in one
        // #[repr(C)] struct (the data starts right after the 20-byte header, where the kernel
        // reads it), with argsz covering exactly the header and the entries used; read during
        // the call only.
        let result = unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_SET_IRQS,
                "VFIO_DEVICE_SET_IRQS",
                (&raw mut request).cast(),
                |f| irq_set_args(f, &set),
            )
        };
        Some(result.map(drop))
    }

    /// `VFIO_DEVICE_SET_IRQS` with a request built by [`super::buf::irq_set`].
    pub(crate) fn set_irqs(&self, request: &ArgszBuf) -> Res<()> {
        let mut request = request.clone();
        let set: vfio::vfio_irq_set = request.read(0).unwrap_or_default();
        // SAFETY: kind: device fd; argument: a vfio_irq_set whose argsz equals the buffer length
        // (built by `irq_set`), read during the call only. Eventfd numbers in it are only looked
        // up by the kernel; a wrong one is an EBADF/EINVAL, not memory unsafety.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_SET_IRQS,
                "VFIO_DEVICE_SET_IRQS",
                request.as_mut_ptr(),
                |f| irq_set_args(f, &set),
            )
        }
        .map(drop)
    }

    /// `VFIO_DEVICE_IOEVENTFD`.
    pub(crate) fn ioeventfd(&self, request: &vfio::vfio_device_ioeventfd) -> Res<()> {
        let mut request = *request;
        request.argsz = argsz_of::<vfio::vfio_device_ioeventfd>();
        // The record's arguments are copies: nothing borrows the struct the kernel is handed.
        let (offset, flags, data, fd) = (request.offset, request.flags, request.data, request.fd);
        // SAFETY: kind: device fd; argument: a vfio_device_ioeventfd with a matching argsz, read
        // during the call only.
        unsafe {
            ioctl_ptr(
                self.on(),
                vfio::VFIO_DEVICE_IOEVENTFD,
                "VFIO_DEVICE_IOEVENTFD",
                (&raw mut request).cast(),
                move |f| {
                    write!(
                        f,
                        "offset={offset:#x} flags={flags:#x} data={data:#x} fd={fd}",
                    )
                },
            )
        }
        .map(drop)
    }
}
