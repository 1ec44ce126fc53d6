//! [`Region`]: a device region ready for register access.

use std::fmt;
use std::ops::Range;

use super::decoding::MappedBar;
use super::options::{MapOptions, Policy};
use super::raw::RawRegion;
use crate::device::{Device, RegionFlags, RegionIndex, RegionInfo};
#[cfg(doc)]
use crate::error::Error;
use crate::error::{Object, Result};

/// A device region, ready for register access: mapped where the kernel allows it, reached
/// through `pread`/`pwrite` elsewhere (see the [module documentation](super)).
///
/// Obtained from [`Device::region`] or [`Device::region_with`]; holds the device open and
/// unmaps on drop. `Region` is `Send + Sync`: accesses take `&self`, and each is a single
/// device access.
pub struct Region {
    // Field order is drop order: the mappings go before the registration that keeps memory
    // decoding on for them.
    pub(crate) raw: RawRegion<Device>,
    _mapped: Option<MappedBar>,
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl Device {
    /// Region `index`, mapped with the default [`MapOptions`]: what the kernel offers, minus
    /// the MSI-X table and PBA; the rest through `pread`/`pwrite`.
    ///
    /// # Errors
    ///
    /// - As [`Device::region_info`] (an index the device does not have, such as VGA on most
    ///   devices, is [`Error::Ioctl`] `EINVAL`);
    /// - [`Error::NotSupported`] (`ENXIO`) for a region of size zero (an unimplemented BAR, no
    ///   ROM);
    /// - [`Error::Malformed`] when the kernel's mmap areas are inconsistent;
    /// - [`Error::Syscall`] (`mmap`) when mapping fails; nothing stays mapped then.
    #[doc(alias = "mmap")]
    pub fn region(&self, index: impl Into<RegionIndex>) -> Result<Region> {
        self.region_with(index, &MapOptions::new())
    }

    /// Region `index`, mapped as `options` say.
    ///
    /// # Errors
    ///
    /// As [`Device::region`], and [`Error::NotSupported`] for
    /// [`MapOptions::require_map`] on a region the kernel does not let userspace map.
    pub fn region_with(
        &self,
        index: impl Into<RegionIndex>,
        options: &MapOptions,
    ) -> Result<Region> {
        self.region_from_info(self.region_info(index)?, options)
    }

    /// [`Device::region_with`] for region info already fetched (also past `num_regions`, for
    /// the regions a graphics plane names).
    pub(crate) fn region_from_info(
        &self,
        info: RegionInfo,
        options: &MapOptions,
    ) -> Result<Region> {
        let exclude = match options.policy {
            Policy::Never => Vec::new(),
            _ if options.msix && info.msix_mappable() => Vec::new(),
            _ if info.mmap_areas().is_empty() => Vec::new(),
            _ => self.msix_ranges(info.index)?,
        };
        let raw = RawRegion::new(self.clone(), info, options, &exclude)?;
        let mapped = if raw.mapped_ranges().is_empty() {
            None
        } else {
            // On error `raw` drops, unmapping what was mapped.
            MappedBar::register(self, raw.index(), &|| raw.object())?
        };
        Ok(Region {
            raw,
            _mapped: mapped,
        })
    }
}

impl Region {
    /// The device this region belongs to.
    pub fn device(&self) -> &Device {
        &self.raw.backing
    }

    /// A handle on the same region with nothing mapped (every access through
    /// `pread`/`pwrite`).
    pub(crate) fn unmapped_clone(&self) -> Region {
        Region {
            raw: self.raw.unmapped_clone(),
            _mapped: None,
        }
    }

    pub(crate) fn object(&self) -> Object {
        self.raw.object()
    }

    /// The region's index.
    pub fn index(&self) -> RegionIndex {
        self.raw.index()
    }

    /// The region info it was created from.
    pub fn info(&self) -> &RegionInfo {
        self.raw.info()
    }

    /// The region's size in bytes: every valid offset is below it.
    pub fn size(&self) -> u64 {
        self.raw.size()
    }

    /// The region's flags.
    pub fn flags(&self) -> RegionFlags {
        self.raw.flags()
    }

    /// The mapped parts, as offset ranges within the region, in ascending order.
    pub fn mapped_ranges(&self) -> Vec<Range<u64>> {
        self.raw.mapped_ranges()
    }

    /// Whether the byte at `offset` is served by a mapping (else by `pread`/`pwrite`).
    pub fn is_mapped(&self, offset: u64) -> bool {
        self.raw.is_mapped(offset)
    }

    /// A raw pointer to the mapped byte at `offset`, for code that must do its own volatile
    /// accesses (benchmarks, or handing a doorbell to other code). `None` where the region is
    /// not mapped.
    ///
    /// The pointer is valid while this `Region` lives, up to the end of the mapped range
    /// containing `offset` (see [`Region::mapped_ranges`]). Never create references to the
    /// memory behind it: it is device memory, changes on its own, and reads may have side
    /// effects. Use `read_volatile`/`write_volatile` of naturally aligned integers.
    pub fn mapped_ptr(&self, offset: u64) -> Option<*mut u8> {
        self.raw.mapped_ptr(offset)
    }

    /// Reads the byte at `offset`.
    ///
    /// Cannot fault through a mapping: see [`Region::read_u32`].
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub fn read_u8(&self, offset: u64) -> Result<u8> {
        self.raw.read_u8(offset)
    }

    /// Reads the little-endian `u16` at `offset`, which must be 2-byte aligned.
    ///
    /// Cannot fault through a mapping: see [`Region::read_u32`].
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub fn read_u16(&self, offset: u64) -> Result<u16> {
        self.raw.read_u16(offset)
    }

    /// Reads the little-endian `u32` at `offset`, which must be 4-byte aligned: one 4-byte
    /// device access.
    ///
    /// Through a mapping this cannot fault while the crate keeps memory decoding on (see the
    /// [module documentation](super), "Memory decoding"); a device that disappears (hot-unplug)
    /// or a raw config write outside the crate can still end the process with `SIGBUS`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: `ERANGE` when the access does not lie inside the region,
    ///   `EOVERFLOW` when `offset + 4` overflows, `EINVAL` when `offset` is misaligned;
    /// - [`Error::NotSupported`] (`EACCES`) when the region is not readable;
    /// - [`Error::Syscall`] (`pread`) when the fallback read fails (`EIO` while memory
    ///   decoding is off).
    #[inline]
    pub fn read_u32(&self, offset: u64) -> Result<u32> {
        self.raw.read_u32(offset)
    }

    /// Reads the little-endian `u64` at `offset`, which must be 8-byte aligned.
    ///
    /// Cannot fault through a mapping: see [`Region::read_u32`].
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub fn read_u64(&self, offset: u64) -> Result<u64> {
        self.raw.read_u64(offset)
    }

    /// Writes the byte at `offset`.
    ///
    /// Cannot fault through a mapping: see [`Region::read_u32`].
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub fn write_u8(&self, offset: u64, value: u8) -> Result<()> {
        self.raw.write_u8(offset, value)
    }

    /// Writes `value` as a little-endian `u16` at `offset`, which must be 2-byte aligned.
    ///
    /// Cannot fault through a mapping: see [`Region::read_u32`].
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub fn write_u16(&self, offset: u64, value: u16) -> Result<()> {
        self.raw.write_u16(offset, value)
    }

    /// Writes `value` as a little-endian `u32` at `offset`, which must be 4-byte aligned: one
    /// 4-byte device access.
    ///
    /// Through a mapping this cannot fault while the crate keeps memory decoding on (see the
    /// [module documentation](super), "Memory decoding"); a device that disappears (hot-unplug)
    /// or a raw config write outside the crate can still end the process with `SIGBUS`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: `ERANGE`, `EOVERFLOW` or `EINVAL` as for
    ///   [`Region::read_u32`];
    /// - [`Error::NotSupported`] (`EACCES`) when the region is read-only;
    /// - [`Error::Syscall`] (`pwrite`) when the fallback write fails.
    #[inline]
    pub fn write_u32(&self, offset: u64, value: u32) -> Result<()> {
        self.raw.write_u32(offset, value)
    }

    /// Writes `value` as a little-endian `u64` at `offset`, which must be 8-byte aligned.
    ///
    /// Cannot fault through a mapping: see [`Region::read_u32`].
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub fn write_u64(&self, offset: u64, value: u64) -> Result<()> {
        self.raw.write_u64(offset, value)
    }

    /// Copies `buf.len()` bytes from the region at `offset` into `buf`: 4-byte accesses where
    /// aligned, 2- and 1-byte ones at unaligned edges; `pread` for unmapped parts.
    ///
    /// Through a mapping this cannot fault while the crate keeps memory decoding on (see the
    /// [module documentation](super), "Memory decoding"); a device that disappears (hot-unplug)
    /// or a raw config write outside the crate can still end the process with `SIGBUS`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`ERANGE`/`EOVERFLOW`) when the range is not inside the
    ///   region; nothing is read then;
    /// - [`Error::NotSupported`] (`EACCES`) when the region is not readable;
    /// - [`Error::Syscall`] (`pread`) when a fallback read fails.
    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.raw.read_bytes(offset, buf)
    }

    /// Copies `buf` into the region at `offset`: 4-byte accesses where aligned, 2- and 1-byte
    /// ones at unaligned edges; `pwrite` for unmapped parts.
    ///
    /// Through a mapping this cannot fault while the crate keeps memory decoding on (see the
    /// [module documentation](super), "Memory decoding"); a device that disappears (hot-unplug)
    /// or a raw config write outside the crate can still end the process with `SIGBUS`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`ERANGE`/`EOVERFLOW`) when the range is not inside the
    ///   region; nothing is written then;
    /// - [`Error::NotSupported`] (`EACCES`) when the region is read-only;
    /// - [`Error::Syscall`] (`pwrite`) when a fallback write fails (earlier parts may have been
    ///   written).
    pub fn write_bytes(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.raw.write_bytes(offset, buf)
    }
}
