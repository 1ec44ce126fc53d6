//! Region I/O, reset and feature ioctls on the device; the Safety section of the parent module
//! applies.
#![allow(unsafe_code)]
#![allow(dead_code)] // Raw wrappers the safe layers above are being built on.

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::{fail, ioctl_ptr, Cause, DeviceFd, Failed, Res};
use crate::error::Malformation;
use crate::uapi::buf::{ArgszBuf, MAX_ARGSZ};
use crate::uapi::vfio;

impl DeviceFd {
    /// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`: the header and the dependent devices.
    pub(crate) fn get_pci_hot_reset_info(&self) -> Res<Vec<vfio::vfio_pci_dependent_device>> {
        const IOCTL: &str = "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO";
        let header = size_of::<vfio::vfio_pci_hot_reset_info>();
        let entry = size_of::<vfio::vfio_pci_dependent_device>();
        let mut count = 8usize;
        for _ in 0..4 {
            let len = header + count * entry;
            let mut buf = ArgszBuf::with(
                &vfio::vfio_pci_hot_reset_info {
                    argsz: len as u32,
                    ..Default::default()
                },
                len,
            );
            // SAFETY: kind: device fd; argument: a vfio_pci_hot_reset_info header followed by room
            // for `count` entries, argsz = buffer length; written during the call only.
            let ret = unsafe {
                ioctl_ptr(
                    self.as_fd(),
                    vfio::VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
                    buf.as_mut_ptr(),
                )
            };
            let info: vfio::vfio_pci_hot_reset_info = buf.read(0).unwrap_or_default();
            match ret {
                Ok(_) => {
                    let n = info.count as usize;
                    if n > count {
                        return Err(Failed {
                            ioctl: IOCTL,
                            cause: Cause::Malformed(Malformation::Other(format!(
                                "count {n} is larger than the {count} entries the buffer holds"
                            ))),
                        });
                    }
                    return Ok((0..n)
                        .filter_map(|i| buf.read(header + i * entry))
                        .collect());
                }
                // The kernel reports the count it needs with ENOSPC.
                Err(Errno::ENOSPC)
                    if (info.count as usize) > count
                        && (info.count as usize) * entry <= MAX_ARGSZ =>
                {
                    count = info.count as usize;
                }
                Err(e) => return Err(fail(IOCTL)(e)),
            }
        }
        Err(fail(IOCTL)(Errno::ENOSPC))
    }

    /// `VFIO_DEVICE_PCI_HOT_RESET` with the group fds the kernel wants as proof of ownership.
    pub(crate) fn pci_hot_reset(&self, group_fds: &[BorrowedFd<'_>]) -> Res<()> {
        let fds: Vec<i32> = group_fds.iter().map(AsRawFd::as_raw_fd).collect();
        let mut buf = crate::uapi::buf::pci_hot_reset(&fds);
        // SAFETY: kind: device fd; argument: a vfio_pci_hot_reset with argsz = buffer length,
        // read during the call only; the fds are borrowed, so open for the call.
        unsafe {
            ioctl_ptr(
                self.as_fd(),
                vfio::VFIO_DEVICE_PCI_HOT_RESET,
                buf.as_mut_ptr(),
            )
        }
        .map(drop)
        .map_err(fail("VFIO_DEVICE_PCI_HOT_RESET"))
    }

    /// `VFIO_DEVICE_FEATURE` with `data` following the header; the kernel may write `data` back
    /// (GET).
    pub(crate) fn feature(&self, flags: u32, data: &mut [u8]) -> Res<()> {
        let header = size_of::<vfio::vfio_device_feature>();
        let len = header + data.len();
        let mut buf = ArgszBuf::with(
            &vfio::vfio_device_feature {
                argsz: len as u32,
                flags,
            },
            len,
        );
        buf.bytes_mut()[header..].copy_from_slice(data);
        // SAFETY: kind: device fd; argument: a vfio_device_feature header followed by
        // `data.len()` bytes, argsz = buffer length; read/written during the call only.
        unsafe { ioctl_ptr(self.as_fd(), vfio::VFIO_DEVICE_FEATURE, buf.as_mut_ptr()) }
            .map_err(fail("VFIO_DEVICE_FEATURE"))?;
        data.copy_from_slice(&buf.bytes()[header..]);
        Ok(())
    }

    /// `pread(2)` on the device fd (region access at `offset` = region offset + position).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        nix::sys::uio::pread(self, buf, offset)
    }

    /// `pwrite(2)` on the device fd.
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        nix::sys::uio::pwrite(self, buf, offset)
    }
}
