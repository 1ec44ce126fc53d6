//! [`Backing`]: where a region's bytes come from for `mmap`, `pread` and `pwrite`.

use std::os::fd::{AsFd, BorrowedFd};

use crate::device::Device;
use crate::error::Errno;

/// The file a region lives in: a device fd in production, a memfd in the unit tests.
pub(crate) trait Backing {
    /// The descriptor to `mmap`.
    fn fd(&self) -> BorrowedFd<'_>;
    /// `pread` at the file offset.
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno>;
    /// `pwrite` at the file offset.
    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno>;
    /// The device name errors carry.
    fn name(&self) -> &str;
}

impl Backing for Device {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        Device::fd(self).read_at(buf, offset)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        Device::fd(self).write_at(buf, offset)
    }

    fn name(&self) -> &str {
        Device::name(self)
    }
}
