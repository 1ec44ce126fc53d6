//! [`Backing`]: where a region's bytes come from for `mmap`, `pread` and `pwrite`.

use std::os::fd::{AsFd, BorrowedFd};

use crate::device::{Device, DeviceFlags, RegionIndex};
use crate::error::{Errno, Object, Result};

/// The file a region lives in: a device fd in production, a memfd in the unit tests.
pub(crate) trait Backing {
    /// The descriptor to `mmap`.
    fn fd(&self) -> BorrowedFd<'_>;
    /// `pread` at the file offset.
    fn pread(&self, buf: &mut [u8], offset: u64) -> std::result::Result<usize, Errno>;
    /// `pwrite` at the file offset.
    fn pwrite(&self, buf: &[u8], offset: u64) -> std::result::Result<usize, Errno>;
    /// The device name errors carry.
    fn name(&self) -> &str;

    /// Runs `write`, a `pwrite` of `buf` at `offset` of region `index`, or refuses it: the
    /// device refuses config writes that would clear memory decoding under mapped BARs
    /// ([`super::decoding`]).
    fn write_guarded(
        &self,
        op: &'static str,
        index: RegionIndex,
        object: &dyn Fn() -> Object,
        offset: u64,
        buf: &[u8],
        write: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let _ = (op, index, object, offset, buf);
        write()
    }
}

impl Backing for Device {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> std::result::Result<usize, Errno> {
        Device::fd(self).read_at(buf, offset)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> std::result::Result<usize, Errno> {
        Device::fd(self).write_at(buf, offset)
    }

    fn name(&self) -> &str {
        Device::name(self)
    }

    fn write_guarded(
        &self,
        op: &'static str,
        index: RegionIndex,
        object: &dyn Fn() -> Object,
        offset: u64,
        buf: &[u8],
        write: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        if index == RegionIndex::CONFIG && self.flags().contains(DeviceFlags::PCI) {
            self.0
                .shared
                .decoding
                .config_write(op, object, offset, buf, write)
        } else {
            write()
        }
    }
}
