//! [`RawRegion`]: a region's mappings and its `pread`/`pwrite` fallback over any [`Backing`],
//! with the checked accessors. [`Region`](super::Region) is the public face of a
//! `RawRegion<Device>`; the unit tests run the same code over a memfd.

use std::ops::Range;

use super::backing::Backing;
use super::copy::{copy_from_mapping, copy_to_mapping};
use super::map::{self, Mapping, Slot, Word};
use super::options::{MapOptions, Policy};
use super::plan;
use crate::device::{RegionFlags, RegionIndex, RegionInfo};
use crate::error::{Errno, Error, Object, Result};

/// One mapped piece of a region.
#[derive(Debug)]
struct Area {
    /// Offset of the piece in the region.
    start: u64,
    map: Mapping,
}

impl Area {
    fn end(&self) -> u64 {
        self.start + self.map.len() as u64
    }

    fn contains(&self, offset: u64, len: u64) -> bool {
        offset >= self.start && offset.checked_add(len).is_some_and(|e| e <= self.end())
    }
}

/// A region's mappings, info and backing: everything [`Region`](super::Region) does, for any
/// backing.
pub(crate) struct RawRegion<B> {
    /// The mapped piece starting at offset 0 (an empty mapping when there is none), checked
    /// first: the hot path of a mapped access, with no offset arithmetic at all.
    first: Area,
    /// Further mapped pieces, in ascending order.
    rest: Vec<Area>,
    info: RegionInfo,
    pub(crate) backing: B,
}

/// The operation names errors carry, by access width.
fn op<T: Word>(write: bool) -> &'static str {
    match (T::SIZE, write) {
        (1, false) => "read_u8",
        (2, false) => "read_u16",
        (4, false) => "read_u32",
        (8, false) => "read_u64",
        (1, true) => "write_u8",
        (2, true) => "write_u16",
        (4, true) => "write_u32",
        _ => "write_u64",
    }
}

impl<B: Backing> std::fmt::Debug for RawRegion<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("device", &self.backing.name())
            .field("index", &self.info.index)
            .field("size", &self.info.size)
            .field("flags", &self.info.flags)
            .field("mapped", &self.mapped_ranges())
            .finish()
    }
}

impl<B: Backing> RawRegion<B> {
    pub(crate) fn new(
        backing: B,
        info: RegionInfo,
        options: &MapOptions,
        exclude: &[Range<u64>],
    ) -> Result<Self> {
        let object = Object::Region {
            device: backing.name().to_string(),
            index: info.index.0,
        };
        if info.size == 0 {
            return Err(Error::NotSupported {
                op: "region",
                object: object.into(),
                reason: format!(
                    "region {} is not implemented (size 0){}",
                    info.index,
                    info.index
                        .pci_name()
                        .map(|n| format!(": the device has no {n}"))
                        .unwrap_or_default()
                )
                .into(),
                errno: Errno::ENXIO,
            });
        }
        let areas = match options.policy {
            Policy::Never => Vec::new(),
            Policy::Auto => info.mmap_areas(),
            Policy::Required => {
                let areas = info.mmap_areas();
                if areas.is_empty() {
                    return Err(Error::NotSupported {
                        op: "region",
                        object: object.into(),
                        reason: "the kernel does not let userspace mmap this region (no \
                                 VFIO_REGION_INFO_FLAG_MMAP); use pread/pwrite access"
                            .into(),
                        errno: Errno::EINVAL,
                    });
                }
                areas
            }
        };
        let pieces = plan::pieces(info.size, info.offset, &areas, exclude, map::page_size())
            .map_err(|reason| {
                Error::malformed(
                    "VFIO_DEVICE_GET_REGION_INFO",
                    object.clone(),
                    crate::error::Malformation::Other(reason),
                )
            })?;
        let read = info.flags.contains(RegionFlags::READ);
        let write = info.flags.contains(RegionFlags::WRITE);
        let mut mapped = Vec::with_capacity(pieces.len());
        if read || write {
            for piece in pieces {
                let len = usize::try_from(piece.end - piece.start).map_err(|_| {
                    Error::out_of_range("region", object.clone(), "the area does not fit in memory")
                })?;
                // `info.offset + piece.start` cannot overflow: plan::pieces checked the piece is
                // inside the region, and the region is inside the fd's 64-bit offset space.
                let file_offset = info.offset.saturating_add(piece.start);
                // On error, `mapped` is dropped on return, unmapping what was mapped.
                let map =
                    Mapping::new(backing.fd(), file_offset, len, read, write).map_err(|e| {
                        Error::Syscall {
                            op: "mmap",
                            object: object.clone().into(),
                            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                        }
                    })?;
                mapped.push(Area {
                    start: piece.start,
                    map,
                });
            }
        }
        let first = if mapped.first().is_some_and(|a| a.start == 0) {
            mapped.remove(0)
        } else {
            Area {
                start: 0,
                map: Mapping::none(),
            }
        };
        Ok(RawRegion {
            first,
            rest: mapped,
            info,
            backing,
        })
    }

    pub(crate) fn object(&self) -> Object {
        Object::Region {
            device: self.backing.name().to_string(),
            index: self.info.index.0,
        }
    }

    /// The region's index.
    pub(crate) fn index(&self) -> RegionIndex {
        self.info.index
    }

    /// The region info it was created from.
    pub(crate) fn info(&self) -> &RegionInfo {
        &self.info
    }

    /// The region's size in bytes: every valid offset is below it.
    pub(crate) fn size(&self) -> u64 {
        self.info.size
    }

    /// The region's flags.
    pub(crate) fn flags(&self) -> RegionFlags {
        self.info.flags
    }

    /// The mapped parts, as offset ranges within the region, in ascending order.
    /// A copy of this region with nothing mapped: every access goes through `pread`/`pwrite`.
    pub(crate) fn unmapped_clone(&self) -> Self
    where
        B: Clone,
    {
        RawRegion {
            first: Area {
                start: 0,
                map: Mapping::none(),
            },
            rest: Vec::new(),
            info: self.info.clone(),
            backing: self.backing.clone(),
        }
    }

    pub(crate) fn mapped_ranges(&self) -> Vec<Range<u64>> {
        self.areas().map(|a| a.start..a.end()).collect()
    }

    /// Whether the byte at `offset` is served by a mapping (else by `pread`/`pwrite`).
    pub(crate) fn is_mapped(&self, offset: u64) -> bool {
        self.area(offset, 1).is_some()
    }

    /// A raw pointer to the mapped byte at `offset`, for code that must do its own volatile
    /// accesses (benchmarks, or handing a doorbell to other code). `None` where the region is
    /// not mapped.
    ///
    /// The pointer is valid while this `Region` lives, up to the end of the mapped range
    /// containing `offset` (see [`Region::mapped_ranges`]). Never create references to the
    /// memory behind it: it is device memory, changes on its own, and reads may have side
    /// effects. Use `read_volatile`/`write_volatile` of naturally aligned integers.
    pub(crate) fn mapped_ptr(&self, offset: u64) -> Option<*mut u8> {
        let a = self.area(offset, 1)?;
        let rel = usize::try_from(offset - a.start).ok()?;
        Some(a.map.as_ptr().wrapping_add(rel))
    }

    fn areas(&self) -> impl Iterator<Item = &Area> {
        std::iter::once(&self.first)
            .chain(self.rest.iter())
            .filter(|a| a.map.len() > 0)
    }

    fn area(&self, offset: u64, len: u64) -> Option<&Area> {
        self.areas().find(|a| a.contains(offset, len))
    }

    /// The `T` at `offset` as a [`Slot`], checked once: readable and writable region, inside
    /// it, aligned, and inside one read-write mapping.
    ///
    /// # Errors
    ///
    /// As the accessors for range, alignment and permissions, and [`Error::NotSupported`]
    /// (`ENXIO`) when `offset` is served by `pread`/`pwrite`, not by a mapping.
    pub(crate) fn slot<T: Word>(&self, offset: u64) -> Result<Slot<'_, T>> {
        let op = "register";
        let size = T::SIZE as u64;
        self.check(op, offset, size, size, false)?;
        self.check(op, offset, size, size, true)?;
        self.area(offset, size)
            .and_then(|a| {
                usize::try_from(offset - a.start)
                    .ok()
                    .and_then(|rel| a.map.slot::<T>(rel))
            })
            .ok_or_else(|| Error::NotSupported {
                op,
                object: self.object().into(),
                reason: format!(
                    "offset {offset:#x} is not mapped read-write (the kernel does not let \
                     userspace map it, or it is the MSI-X table, or the region was made with \
                     MapOptions::never_map): use the accessors, which fall back to pread/pwrite"
                )
                .into(),
                errno: Errno::ENXIO,
            })
    }

    /// Reads the byte at `offset`.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub(crate) fn read_u8(&self, offset: u64) -> Result<u8> {
        self.load(offset)
    }

    /// Reads the little-endian `u16` at `offset`, which must be 2-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub(crate) fn read_u16(&self, offset: u64) -> Result<u16> {
        self.load(offset)
    }

    /// Reads the little-endian `u32` at `offset`, which must be 4-byte aligned: one 4-byte
    /// device access.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: `ERANGE` when the access does not lie inside the region,
    ///   `EOVERFLOW` when `offset + 4` overflows, `EINVAL` when `offset` is misaligned;
    /// - [`Error::NotSupported`] (`EACCES`) when the region is not readable;
    /// - [`Error::Syscall`] (`pread`) when the fallback read fails (`EIO` while memory
    ///   decoding is off).
    #[inline]
    pub(crate) fn read_u32(&self, offset: u64) -> Result<u32> {
        self.load(offset)
    }

    /// Reads the little-endian `u64` at `offset`, which must be 8-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub(crate) fn read_u64(&self, offset: u64) -> Result<u64> {
        self.load(offset)
    }

    /// Writes the byte at `offset`.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub(crate) fn write_u8(&self, offset: u64, value: u8) -> Result<()> {
        self.store(offset, value)
    }

    /// Writes `value` as a little-endian `u16` at `offset`, which must be 2-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub(crate) fn write_u16(&self, offset: u64, value: u16) -> Result<()> {
        self.store(offset, value)
    }

    /// Writes `value` as a little-endian `u32` at `offset`, which must be 4-byte aligned: one
    /// 4-byte device access.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: `ERANGE`, `EOVERFLOW` or `EINVAL` as for
    ///   [`Region::read_u32`];
    /// - [`Error::NotSupported`] (`EACCES`) when the region is read-only;
    /// - [`Error::Syscall`] (`pwrite`) when the fallback write fails.
    #[inline]
    pub(crate) fn write_u32(&self, offset: u64, value: u32) -> Result<()> {
        self.store(offset, value)
    }

    /// Writes `value` as a little-endian `u64` at `offset`, which must be 8-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub(crate) fn write_u64(&self, offset: u64, value: u64) -> Result<()> {
        self.store(offset, value)
    }

    /// The hot path: one range-and-alignment check against the mapping at offset 0, then the
    /// volatile load.
    #[inline(always)]
    fn load<T: Word>(&self, offset: u64) -> Result<T> {
        // `first` starts at offset 0, so the region offset is the mapping offset.
        if let Ok(rel) = usize::try_from(offset) {
            if let Some(v) = self.first.map.read::<T>(rel) {
                return Ok(v.le_to_host());
            }
        }
        self.load_slow(offset)
    }

    #[inline(always)]
    fn store<T: Word>(&self, offset: u64, value: T) -> Result<()> {
        if let Ok(rel) = usize::try_from(offset) {
            if self.first.map.write::<T>(rel, value.host_to_le()) {
                return Ok(());
            }
        }
        self.store_slow(offset, value)
    }

    /// Checks an access of `len` bytes at `offset`: permission, range, overflow, alignment.
    fn check(
        &self,
        op: &'static str,
        offset: u64,
        len: u64,
        align: u64,
        write: bool,
    ) -> Result<()> {
        let (flag, what) = if write {
            (RegionFlags::WRITE, "writable")
        } else {
            (RegionFlags::READ, "readable")
        };
        if !self.info.flags.contains(flag) {
            return Err(Error::NotSupported {
                op,
                object: self.object().into(),
                reason: format!("the region is not {what} (flags {:?})", self.info.flags).into(),
                errno: Errno::EACCES,
            });
        }
        let Some(end) = offset.checked_add(len) else {
            return Err(Error::InvalidArgument {
                op,
                object: self.object().into(),
                reason: format!("offset {offset:#x} + {len} overflows").into(),
                errno: Errno::EOVERFLOW,
            });
        };
        if end > self.info.size {
            return Err(Error::out_of_range(
                op,
                self.object(),
                format!(
                    "{len} bytes at {offset:#x} are outside the region's {:#x} bytes",
                    self.info.size
                ),
            ));
        }
        if offset % align != 0 {
            return Err(Error::invalid(
                op,
                self.object(),
                format!("offset {offset:#x} is not {align}-byte aligned"),
            ));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn load_slow<T: Word>(&self, offset: u64) -> Result<T> {
        let op = op::<T>(false);
        let size = T::SIZE as u64;
        self.check(op, offset, size, size, false)?;
        if let Some(a) = self.area(offset, size) {
            if let Some(v) = usize::try_from(offset - a.start)
                .ok()
                .and_then(|rel| a.map.read::<T>(rel))
            {
                return Ok(v.le_to_host());
            }
        }
        let mut buf = [0u8; 8];
        let buf = &mut buf[..T::SIZE];
        self.pread_exact(op, buf, offset)?;
        Ok(T::from_le_slice(buf))
    }

    #[cold]
    #[inline(never)]
    fn store_slow<T: Word>(&self, offset: u64, value: T) -> Result<()> {
        let op = op::<T>(true);
        let size = T::SIZE as u64;
        self.check(op, offset, size, size, true)?;
        if let Some(a) = self.area(offset, size) {
            if usize::try_from(offset - a.start)
                .ok()
                .is_some_and(|rel| a.map.write::<T>(rel, value.host_to_le()))
            {
                return Ok(());
            }
        }
        let mut buf = [0u8; 8];
        let buf = &mut buf[..T::SIZE];
        value.to_le_bytes_vec(buf);
        self.pwrite_all(op, buf, offset)
    }

    fn syscall_error(&self, op: &'static str, errno: Errno) -> Error {
        Error::Syscall {
            op,
            object: self.object().into(),
            errno,
        }
    }

    fn pread_exact(&self, _op: &'static str, mut buf: &mut [u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            let file_offset = self
                .info
                .offset
                .checked_add(offset)
                .ok_or_else(|| self.syscall_error("pread", Errno::EOVERFLOW))?;
            match self.backing.pread(buf, file_offset) {
                Ok(0) => return Err(self.syscall_error("pread", Errno::EIO)),
                Ok(n) => {
                    let n = n.min(buf.len());
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.syscall_error("pread", e)),
            }
        }
        Ok(())
    }

    fn pwrite_all(&self, op: &'static str, buf: &[u8], offset: u64) -> Result<()> {
        let index = self.info.index;
        self.backing
            .write_guarded(op, index, &|| self.object(), offset, buf, &mut || {
                self.pwrite_unguarded(buf, offset)
            })
    }

    fn pwrite_unguarded(&self, mut buf: &[u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            let file_offset = self
                .info
                .offset
                .checked_add(offset)
                .ok_or_else(|| self.syscall_error("pwrite", Errno::EOVERFLOW))?;
            match self.backing.pwrite(buf, file_offset) {
                Ok(0) => return Err(self.syscall_error("pwrite", Errno::EIO)),
                Ok(n) => {
                    let n = n.min(buf.len());
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.syscall_error("pwrite", e)),
            }
        }
        Ok(())
    }

    /// Splits `[offset, offset + len)` into runs that are either inside one mapped area or
    /// wholly unmapped: `(start, len, area)`.
    fn runs(&self, offset: u64, len: u64) -> Vec<(u64, u64, Option<&Area>)> {
        let mut out = Vec::new();
        let end = offset + len;
        let mut pos = offset;
        while pos < end {
            if let Some(a) = self.areas().find(|a| a.start <= pos && pos < a.end()) {
                let stop = a.end().min(end);
                out.push((pos, stop - pos, Some(a)));
                pos = stop;
            } else {
                let next = self
                    .areas()
                    .map(|a| a.start)
                    .filter(|&s| s > pos)
                    .min()
                    .unwrap_or(end)
                    .min(end);
                out.push((pos, next - pos, None));
                pos = next;
            }
        }
        out
    }

    /// Copies `buf.len()` bytes from the region at `offset` into `buf`: 4-byte accesses where
    /// aligned, 2- and 1-byte ones at unaligned edges; `pread` for unmapped parts.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`ERANGE`/`EOVERFLOW`) when the range is not inside the
    ///   region; nothing is read then;
    /// - [`Error::NotSupported`] (`EACCES`) when the region is not readable;
    /// - [`Error::Syscall`] (`pread`) when a fallback read fails.
    pub(crate) fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len() as u64;
        self.check("read_bytes", offset, len, 1, false)?;
        let mut done = 0usize;
        for (start, n, area) in self.runs(offset, len) {
            let n = self.as_usize("read_bytes", n)?;
            let out = &mut buf[done..done + n];
            match area {
                Some(a) => {
                    copy_from_mapping(&a.map, self.as_usize("read_bytes", start - a.start)?, out)
                }
                None => self.pread_exact("read_bytes", out, start)?,
            }
            done += n;
        }
        Ok(())
    }

    /// A length or offset of a run (inside `buf` and a mapping, both in memory) as `usize`.
    fn as_usize(&self, op: &'static str, v: u64) -> Result<usize> {
        usize::try_from(v).map_err(|_| {
            Error::out_of_range(op, self.object(), format!("{v:#x} does not fit in memory"))
        })
    }

    /// Copies `buf` into the region at `offset`: 4-byte accesses where aligned, 2- and 1-byte
    /// ones at unaligned edges; `pwrite` for unmapped parts.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`] (`ERANGE`/`EOVERFLOW`) when the range is not inside the
    ///   region; nothing is written then;
    /// - [`Error::NotSupported`] (`EACCES`) when the region is read-only;
    /// - [`Error::Syscall`] (`pwrite`) when a fallback write fails (earlier parts may have been
    ///   written).
    pub(crate) fn write_bytes(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let len = buf.len() as u64;
        self.check("write_bytes", offset, len, 1, true)?;
        let mut done = 0usize;
        for (start, n, area) in self.runs(offset, len) {
            let n = self.as_usize("write_bytes", n)?;
            let src = &buf[done..done + n];
            match area {
                Some(a) => {
                    copy_to_mapping(&a.map, self.as_usize("write_bytes", start - a.start)?, src)
                }
                None => self.pwrite_all("write_bytes", src, start)?,
            }
            done += n;
        }
        Ok(())
    }
}
