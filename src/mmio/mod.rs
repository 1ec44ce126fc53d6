//! Device register access: a region's mappings, with checked volatile accessors and a
//! `pread`/`pwrite` fallback behind one API.
//!
//! [`Device::region`] returns a [`Region`]: the parts of a VFIO region the kernel lets
//! userspace `mmap`, mapped, and everything else reached through `pread`/`pwrite` on the device
//! fd. A driver calls [`Region::read_u32`] and friends and does not care which path serves a
//! given offset.
//!
//! ```no_run
//! use uvfio::device::RegionIndex;
//! # let device: uvfio::Device = unimplemented!();
//! device.pci_config()?.enable_memory_space()?;
//! let bar0 = device.region(RegionIndex::BAR0)?;
//! let status = bar0.read_u32(0x8)?; // e1000e STATUS
//! bar0.write_u32(0xd8, 0xffff_ffff)?; // IMC: mask every interrupt cause
//! # Ok::<(), uvfio::Error>(())
//! ```
//!
//! # What is mapped
//!
//! Exactly what the kernel offers, and nothing it did not:
//! - a region without `VFIO_REGION_INFO_FLAG_MMAP` (config space, the ROM, I/O-port BARs, most
//!   vendor regions) is not mapped at all;
//! - a region with the sparse-mmap capability is mapped only in those areas;
//! - otherwise the whole region is mapped, sub-page BARs included (the kernel reserves the rest
//!   of the page; accesses still stop at the region's size);
//! - the MSI-X table and pending-bit array of a BAR are left out, in whole host pages, unless
//!   [`MapOptions::map_msix`] asks for them *and* the kernel reports
//!   `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`. vfio-pci owns those structures (the interrupt API
//!   programs them); through `pread`/`pwrite` the table reads as all ones and writes to it are
//!   dropped, which is what a driver should see;
//! - the protection follows the region's flags: read-write, read-only or write-only.
//!
//! The kernel's areas are checked (inside the region, page-aligned, not overlapping) or refused
//! as [`Error::Malformed`]; if one of several mmaps fails, those already made are unmapped
//! before the error is returned. Mappings are unmapped when the `Region` is dropped; the
//! `Region` holds a [`Device`] handle, so the device stays open as long as any of its regions.
//!
//! # Accesses
//!
//! The typed accessors read and write little-endian device registers: `read_u32(off)` returns
//! the host-order value of the 4 bytes at `off`. Each is one access of exactly that width,
//! which must be naturally aligned and inside the region, or a typed error comes back and the
//! device is not touched. Through a mapping it is one volatile load or store; through the fd
//! it is one `pread`/`pwrite` of that size (Linux 6.1's vfio-pci splits an 8-byte one into two
//! 4-byte device accesses; later kernels do not).
//!
//! [`Region::read_bytes`]/[`Region::write_bytes`] copy any range, in 4-byte accesses where
//! aligned and 2- or 1-byte ones at the edges, which is also what the kernel does for the
//! `pread` path, so both paths look the same to the device.
//!
//! # Memory decoding, resets and SIGBUS
//!
//! vfio-pci blocks a BAR while the device's memory decoding is off (the command register's
//! [`Command::MEMORY`](crate::pci::config::Command::MEMORY) bit), while the device is in a
//! low-power state, and during a reset: `pread`/`pwrite` then fail with `EIO`, and a mapped
//! access faults. After a reset, or once decoding is back on, the kernel faults the mapping
//! back in transparently, but a mapped access *while* decoding is off raises `SIGBUS`, which
//! ends the process. Turn memory decoding on
//! ([`PciConfig::enable_memory_space`](crate::pci::config::PciConfig::enable_memory_space))
//! before accessing BARs, and do not turn it off while other threads access them.
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_GET_REGION_INFO`,
//!   `VFIO_REGION_INFO_CAP_SPARSE_MMAP`, `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`
//! - Linux `drivers/vfio/pci/vfio_pci_rdwr.c` (`pread`/`pwrite` of BARs) and
//!   `vfio_pci_core.c` (`vfio_pci_core_mmap`)

mod map;
mod plan;

use std::fmt;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};

use crate::device::{Device, RegionFlags, RegionIndex, RegionInfo};
use crate::error::{Errno, Error, Object, Result};
use map::{Mapping, Word};

/// How [`Device::region_with`] maps a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    policy: Policy,
    msix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Auto,
    Never,
    Required,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

impl MapOptions {
    /// The default: map what the kernel offers (minus the MSI-X structures), serve the rest
    /// with `pread`/`pwrite`.
    pub fn new() -> Self {
        MapOptions {
            policy: Policy::Auto,
            msix: false,
        }
    }

    /// Map nothing: every access is a `pread`/`pwrite`.
    pub fn never_map(&mut self) -> &mut Self {
        self.policy = Policy::Never;
        self
    }

    /// Fail with [`Error::NotSupported`] unless the kernel lets at least part of the region be
    /// mapped (the region has `VFIO_REGION_INFO_FLAG_MMAP`).
    pub fn require_map(&mut self) -> &mut Self {
        self.policy = Policy::Required;
        self
    }

    /// Also map the MSI-X table and PBA, where the kernel reports them mappable
    /// (`VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`). Off by default: vfio-pci programs those
    /// structures, and a driver writing them directly breaks its interrupts.
    pub fn map_msix(&mut self, map: bool) -> &mut Self {
        self.msix = map;
        self
    }
}

/// Where a region's bytes come from for `pread`/`pwrite`.
enum Backing {
    Device(Device),
    /// A plain file standing in for a device fd in the unit tests.
    #[cfg(test)]
    File(std::fs::File),
}

impl Backing {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Backing::Device(d) => d.as_fd(),
            #[cfg(test)]
            Backing::File(f) => f.as_fd(),
        }
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> std::result::Result<usize, Errno> {
        match self {
            Backing::Device(d) => d.fd().read_at(buf, offset),
            #[cfg(test)]
            Backing::File(f) => {
                let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
                nix::sys::uio::pread(f, buf, offset)
            }
        }
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> std::result::Result<usize, Errno> {
        match self {
            Backing::Device(d) => d.fd().write_at(buf, offset),
            #[cfg(test)]
            Backing::File(f) => {
                let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
                nix::sys::uio::pwrite(f, buf, offset)
            }
        }
    }

    fn name(&self) -> &str {
        match self {
            Backing::Device(d) => d.name(),
            #[cfg(test)]
            Backing::File(_) => "test-file",
        }
    }
}

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

/// A device region, ready for register access: mapped where the kernel allows it, reached
/// through `pread`/`pwrite` elsewhere (see the [module documentation](self)).
///
/// Obtained from [`Device::region`] or [`Device::region_with`]; holds the device open and
/// unmaps on drop. `Region` is `Send + Sync`: accesses take `&self`, and each is a single
/// device access.
pub struct Region {
    /// The mapped piece starting at offset 0 (an empty mapping when there is none), checked
    /// first: the hot path of a mapped access, with no offset arithmetic at all.
    first: Area,
    /// Further mapped pieces, in ascending order.
    rest: Vec<Area>,
    info: RegionInfo,
    backing: Backing,
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("device", &self.backing.name())
            .field("index", &self.info.index)
            .field("size", &self.info.size)
            .field("flags", &self.info.flags)
            .field("mapped", &self.mapped_ranges())
            .finish()
    }
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
        let info = self.region_info(index)?;
        let exclude = match options.policy {
            Policy::Never => Vec::new(),
            _ if options.msix && info.msix_mappable() => Vec::new(),
            _ if info.mmap_areas().is_empty() => Vec::new(),
            _ => self.msix_ranges(info.index)?,
        };
        Region::new(Backing::Device(self.clone()), info, options, &exclude)
    }
}

impl Region {
    fn new(
        backing: Backing,
        info: RegionInfo,
        options: &MapOptions,
        exclude: &[Range<u64>],
    ) -> Result<Region> {
        let object = Object::Region {
            device: backing.name().to_string(),
            index: info.index.0,
        };
        if info.size == 0 {
            return Err(Error::NotSupported {
                op: "region",
                object,
                reason: format!(
                    "region {} is not implemented (size 0){}",
                    info.index,
                    info.index
                        .pci_name()
                        .map(|n| format!(": the device has no {n}"))
                        .unwrap_or_default()
                ),
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
                        object,
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
                            object: object.clone(),
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
        Ok(Region {
            first,
            rest: mapped,
            info,
            backing,
        })
    }

    /// The device this region belongs to.
    pub fn device(&self) -> &Device {
        match &self.backing {
            Backing::Device(d) => d,
            #[cfg(test)]
            Backing::File(_) => unreachable!("test regions have no device"),
        }
    }

    pub(crate) fn object(&self) -> Object {
        Object::Region {
            device: self.backing.name().to_string(),
            index: self.info.index.0,
        }
    }

    /// The region's index.
    pub fn index(&self) -> RegionIndex {
        self.info.index
    }

    /// The region info it was created from.
    pub fn info(&self) -> &RegionInfo {
        &self.info
    }

    /// The region's size in bytes: every valid offset is below it.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// The region's flags.
    pub fn flags(&self) -> RegionFlags {
        self.info.flags
    }

    /// The mapped parts, as offset ranges within the region, in ascending order.
    pub fn mapped_ranges(&self) -> Vec<Range<u64>> {
        self.areas().map(|a| a.start..a.end()).collect()
    }

    /// Whether the byte at `offset` is served by a mapping (else by `pread`/`pwrite`).
    pub fn is_mapped(&self, offset: u64) -> bool {
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
    pub fn mapped_ptr(&self, offset: u64) -> Option<*mut u8> {
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

    /// Reads the byte at `offset`.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub fn read_u8(&self, offset: u64) -> Result<u8> {
        self.load(offset)
    }

    /// Reads the little-endian `u16` at `offset`, which must be 2-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub fn read_u16(&self, offset: u64) -> Result<u16> {
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
    pub fn read_u32(&self, offset: u64) -> Result<u32> {
        self.load(offset)
    }

    /// Reads the little-endian `u64` at `offset`, which must be 8-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    #[inline]
    pub fn read_u64(&self, offset: u64) -> Result<u64> {
        self.load(offset)
    }

    /// Writes the byte at `offset`.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub fn write_u8(&self, offset: u64, value: u8) -> Result<()> {
        self.store(offset, value)
    }

    /// Writes `value` as a little-endian `u16` at `offset`, which must be 2-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub fn write_u16(&self, offset: u64, value: u16) -> Result<()> {
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
    pub fn write_u32(&self, offset: u64, value: u32) -> Result<()> {
        self.store(offset, value)
    }

    /// Writes `value` as a little-endian `u64` at `offset`, which must be 8-byte aligned.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    #[inline]
    pub fn write_u64(&self, offset: u64, value: u64) -> Result<()> {
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
                object: self.object(),
                reason: format!("the region is not {what} (flags {:?})", self.info.flags),
                errno: Errno::EACCES,
            });
        }
        let Some(end) = offset.checked_add(len) else {
            return Err(Error::InvalidArgument {
                op,
                object: self.object(),
                reason: format!("offset {offset:#x} + {len} overflows"),
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
            object: self.object(),
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

    fn pwrite_all(&self, _op: &'static str, mut buf: &[u8], mut offset: u64) -> Result<()> {
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
    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len() as u64;
        self.check("read_bytes", offset, len, 1, false)?;
        let mut done = 0usize;
        for (start, n, area) in self.runs(offset, len) {
            let n = n as usize;
            let out = &mut buf[done..done + n];
            match area {
                Some(a) => copy_from_mapping(&a.map, (start - a.start) as usize, out),
                None => self.pread_exact("read_bytes", out, start)?,
            }
            done += n;
        }
        Ok(())
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
    pub fn write_bytes(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let len = buf.len() as u64;
        self.check("write_bytes", offset, len, 1, true)?;
        let mut done = 0usize;
        for (start, n, area) in self.runs(offset, len) {
            let n = n as usize;
            let src = &buf[done..done + n];
            match area {
                Some(a) => copy_to_mapping(&a.map, (start - a.start) as usize, src),
                None => self.pwrite_all("write_bytes", src, start)?,
            }
            done += n;
        }
        Ok(())
    }
}

/// The width of the next access at `rel` with `left` bytes to go: 4, 2 or 1, as the kernel's
/// `pread` path does it.
fn width(rel: usize, left: usize) -> usize {
    if left >= 4 && rel % 4 == 0 {
        4
    } else if left >= 2 && rel % 2 == 0 {
        2
    } else {
        1
    }
}

/// Copies out of a mapping; the caller checked the range lies inside it (a failed access, which
/// cannot happen then, leaves the bytes zero rather than panicking).
fn copy_from_mapping(map: &Mapping, mut rel: usize, out: &mut [u8]) {
    let mut i = 0;
    while i < out.len() {
        let w = width(rel, out.len() - i);
        let dst = &mut out[i..i + w];
        match w {
            4 => map
                .read::<u32>(rel)
                .map(|v| dst.copy_from_slice(&v.to_ne_bytes())),
            2 => map
                .read::<u16>(rel)
                .map(|v| dst.copy_from_slice(&v.to_ne_bytes())),
            _ => map.read::<u8>(rel).map(|v| dst[0] = v),
        };
        i += w;
        rel += w;
    }
}

/// Copies into a mapping; the caller checked the range lies inside it.
fn copy_to_mapping(map: &Mapping, mut rel: usize, src: &[u8]) {
    let mut i = 0;
    while i < src.len() {
        let w = width(rel, src.len() - i);
        let s = &src[i..i + w];
        match w {
            4 => map.write::<u32>(rel, u32::from_ne_bytes([s[0], s[1], s[2], s[3]])),
            2 => map.write::<u16>(rel, u16::from_ne_bytes([s[0], s[1]])),
            _ => map.write::<u8>(rel, s[0]),
        };
        i += w;
        rel += w;
    }
}

#[cfg(test)]
mod tests;
