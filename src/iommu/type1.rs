//! Type1 IOMMU DMA: map and unmap process memory, unmap everything, replace the process address
//! of a mapping, and track the pages devices dirty.
//!
//! These are the raw tier: [`Container::map_dma_raw`] is an `unsafe fn` because it lets a
//! device read and write memory behind the compiler's back. Most drivers want the safe tier
//! instead, [`DmaBuffer`](crate::dma::DmaBuffer) and [`DmaPool`](crate::dma::DmaPool), which own
//! their memory and unmap it before freeing it. The raw tier is for callers that own their
//! memory in some other way, such as a VMM mapping guest RAM.
//!
//! Unmapping is safe: taking a device's access away cannot make Rust code unsound (at worst the
//! device faults), even when the mapping belongs to a `DmaBuffer`.
//!
//! # Semantics worth knowing (type1v2)
//!
//! - A mapping can only be unmapped whole: an unmap range that cuts through a mapping fails with
//!   `EINVAL` and changes nothing; a range that covers several mappings removes them all.
//! - Overlapping an existing mapping fails with `EEXIST`; addresses outside the valid IOVA
//!   ranges fail with `EINVAL`; a span past 2^64 fails with `EOVERFLOW` (checked here first).
//! - Each map uses one entry of the container's budget, `vfio_iommu_type1.dma_entry_limit`
//!   (65535 by default, reported as [`IommuInfo::dma_avail`](super::IommuInfo::dma_avail)):
//!   past it, maps fail with `ENOSPC`. Map large contiguous runs ([`Container::map_dma_runs`]
//!   merges adjacent ones) rather than page by page.
//! - Pinned pages count against `RLIMIT_MEMLOCK` (`ENOMEM` past it).
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_IOMMU_MAP_DMA`, `VFIO_IOMMU_UNMAP_DMA`,
//!   `VFIO_IOMMU_DIRTY_PAGES`, `VFIO_UNMAP_ALL`, `VFIO_UPDATE_VADDR`
//! - `drivers/vfio/vfio_iommu_type1.c`
//!
//! # Safety
//!
//! The `unsafe` here is the mapping itself: [`Container::map_dma_raw`],
//! [`Container::map_dma_runs`] and [`Container::update_dma_vaddr`] are `unsafe fn`s whose
//! `# Safety` sections state the memory contract of a DMA mapping (the memory outlives the
//! mapping, and nothing holds references to it that a device could invalidate), and whose
//! bodies only forward that promise to the raw wrapper in `uapi::ioctl`. Everything that takes
//! access away (unmaps, dirty tracking) is safe: it cannot make memory reachable. The one
//! exception is [`Container::invalidate_dma_vaddr`], which takes the process address away but
//! leaves the kernel waiting for a new one: until [`Container::update_dma_vaddr`] gives it,
//! every call that needs it blocks in the kernel, a hang safe code must not be able to cause.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering;

use super::DirtyBitmap;
use crate::container::{Container, Extension};
use crate::error::{Errno, Error, Object, Result};
use crate::uapi::vfio;

/// What a device may do with the memory of a DMA mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DmaAccess {
    /// `VFIO_DMA_MAP_FLAG_READ`: the device may only read the memory (transmit buffers,
    /// descriptors the device consumes).
    ReadOnly,
    /// `VFIO_DMA_MAP_FLAG_WRITE`: the device may write the memory, and should not read it.
    /// Not a protection to rely on: the IOMMU may grant read access too (in the emulated
    /// IOMMU host, QEMU's VT-d with Linux 6.1 lets the device read a write-only mapping).
    /// Use it as a statement of intent (receive buffers); [`DmaAccess::ReadOnly`] is enforced.
    WriteOnly,
    /// `VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE`: the usual case.
    #[default]
    ReadWrite,
}

impl DmaAccess {
    /// The `VFIO_DMA_MAP_FLAG_*` bits.
    pub const fn flags(self) -> u32 {
        match self {
            DmaAccess::ReadOnly => vfio::VFIO_DMA_MAP_FLAG_READ,
            DmaAccess::WriteOnly => vfio::VFIO_DMA_MAP_FLAG_WRITE,
            DmaAccess::ReadWrite => vfio::VFIO_DMA_MAP_FLAG_READ | vfio::VFIO_DMA_MAP_FLAG_WRITE,
        }
    }

    /// Whether the device may read the memory.
    pub const fn device_reads(self) -> bool {
        !matches!(self, DmaAccess::WriteOnly)
    }

    /// Whether the device may write the memory.
    pub const fn device_writes(self) -> bool {
        !matches!(self, DmaAccess::ReadOnly)
    }
}

/// One run of process memory to map at an IOVA: `size` bytes at `vaddr` to `iova`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DmaRun {
    /// The process virtual address of the first byte.
    pub vaddr: usize,
    /// The IOVA the device will use for it.
    pub iova: u64,
    /// The length in bytes.
    pub size: u64,
}

/// Maps `runs` in order with `map`; when one fails, unmaps the ones mapped before it with
/// `unmap` and returns the failure, wrapped in [`Error::RollbackFailed`] with the ranges that
/// stay mapped when some unmap fails too (never claiming "nothing is mapped" falsely).
fn map_all_or_nothing(
    runs: &[DmaRun],
    mut map: impl FnMut(&DmaRun) -> Result<()>,
    mut unmap: impl FnMut(&DmaRun) -> Result<u64>,
) -> Result<usize> {
    for (done, run) in runs.iter().enumerate() {
        let Err(e) = map(run) else { continue };
        let still_mapped: Vec<(u64, u64)> = runs[..done]
            .iter()
            .filter(|undo| unmap(undo).is_err())
            .map(|undo| (undo.iova, undo.size))
            .collect();
        if still_mapped.is_empty() {
            return Err(e);
        }
        return Err(Error::RollbackFailed {
            errno: e.errno(),
            source: Box::new(e),
            still_mapped,
        });
    }
    Ok(runs.len())
}

/// Merges runs that continue each other in both the process and the IOVA space (after sorting
/// by IOVA), so that they can be mapped with one ioctl each: 256 huge pages of one
/// contiguous buffer become one run. Runs that overlap or merely touch in one space are kept
/// apart; the kernel judges overlaps when they are mapped.
///
/// Note the trade-off DPDK documents: type1v2 cannot unmap part of a mapping, so memory that
/// must be released piece by piece later should be mapped piece by piece.
///
/// # Examples
///
/// ```
/// use uvfio::iommu::{coalesce_runs, DmaRun};
///
/// let page = 2 << 20;
/// let runs: Vec<DmaRun> = (0..4)
///     .map(|i| DmaRun { vaddr: 0x7f00_0000_0000 + i * page, iova: 0x4000_0000 + (i * page) as u64, size: page as u64 })
///     .collect();
/// assert_eq!(
///     coalesce_runs(&runs),
///     vec![DmaRun { vaddr: 0x7f00_0000_0000, iova: 0x4000_0000, size: 4 * page as u64 }]
/// );
/// ```
pub fn coalesce_runs(runs: &[DmaRun]) -> Vec<DmaRun> {
    let mut sorted: Vec<DmaRun> = runs.iter().copied().filter(|r| r.size != 0).collect();
    sorted.sort_unstable_by_key(|r| (r.iova, r.vaddr));
    let mut out: Vec<DmaRun> = Vec::with_capacity(sorted.len());
    for run in sorted {
        if let Some(last) = out.last_mut() {
            let iova_next = last.iova.checked_add(last.size);
            let vaddr_next = u64::try_from(last.vaddr)
                .ok()
                .and_then(|v| v.checked_add(last.size));
            let size = last.size.checked_add(run.size);
            if iova_next == Some(run.iova)
                && vaddr_next == u64::try_from(run.vaddr).ok()
                && size.is_some()
            {
                last.size = size.unwrap_or(last.size);
                continue;
            }
        }
        out.push(run);
    }
    out
}

fn check_span(op: &'static str, iova: u64, size: u64) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid(op, Object::Container, "the size is 0"));
    }
    if iova.checked_add(size - 1).is_none() {
        return Err(Error::InvalidArgument {
            op,
            object: Object::Container.into(),
            reason: format!(
                "{size:#x} bytes at IOVA {iova:#x} run past the end of the 64-bit space"
            )
            .into(),
            errno: Errno::EOVERFLOW,
        });
    }
    Ok(())
}

impl Container {
    /// `VFIO_IOMMU_MAP_DMA`—Lets the container's devices reach `size` bytes of this process's
    /// memory at `vaddr` through the IOVAs `iova..iova + size`.
    ///
    /// `vaddr`, `iova` and `size` must be multiples of the IOMMU page size
    /// ([`IommuInfo::min_page_size`](super::IommuInfo::min_page_size)). The kernel pins the
    /// pages (charged to `RLIMIT_MEMLOCK`) and keeps them until the range is unmapped.
    ///
    /// The safe alternative is [`DmaBuffer`](crate::dma::DmaBuffer), which owns its memory.
    ///
    /// # Safety
    ///
    /// From a successful return until the IOVA range is unmapped (by [`Container::unmap_dma`],
    /// [`Container::unmap_all_dma`], the last group leaving the container, or the container
    /// closing):
    ///
    /// - the memory `vaddr..vaddr + size` must stay allocated to the caller and mapped at that
    ///   address: not `munmap`ed, not replaced with `MAP_FIXED` or `mremap`, not given back to
    ///   an allocator that could hand it to other code. The kernel holds the *pages*: after a
    ///   `munmap` the device would keep writing the old pages, invisibly, and a reused address
    ///   would silently stop being what the device sees;
    /// - the device may read (and, unless `access` is [`DmaAccess::ReadOnly`], write) that
    ///   memory at any moment, concurrently with the program. No Rust reference (`&T`,
    ///   `&mut T`, `&[u8]`) to any of it may exist while the device might write it, nor a
    ///   `&mut` while it might read it; access it through raw pointers with volatile or atomic
    ///   operations (or with the device provably idle, e.g. stopped by reset);
    /// - the memory must not be freed or reused until the unmap, even if the device is believed
    ///   to be idle, because a misbehaving device is exactly what the IOMMU defends against.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero size (`EINVAL`) or a span past 2^64
    /// (`EOVERFLOW`); [`Error::Ioctl`] from the kernel: `EEXIST` when the IOVA range overlaps
    /// a mapping, `EINVAL` for unaligned arguments or IOVAs outside the valid ranges (or no
    /// IOMMU type set yet), `ENOMEM` past `RLIMIT_MEMLOCK`, `ENOSPC` when
    /// `dma_entry_limit` mappings exist, `EFAULT` when `vaddr` is not mapped.
    #[doc(alias = "VFIO_IOMMU_MAP_DMA")]
    #[doc(alias = "vfio_iommu_type1_dma_map")]
    pub unsafe fn map_dma_raw(
        &self,
        vaddr: *const u8,
        iova: u64,
        size: u64,
        access: DmaAccess,
    ) -> Result<()> {
        check_span("map_dma_raw", iova, size)?;
        let map = vfio::vfio_iommu_type1_dma_map {
            argsz: 0,
            flags: access.flags(),
            vaddr: vaddr as u64,
            iova,
            size,
        };
        self.dma_state().map_ioctls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds the memory contract of the mapping (see # Safety above,
        // which is the raw wrapper's contract spelled out).
        unsafe { self.fd().map_dma(&map) }.map_err(|f| f.on(Object::Container))
    }

    /// Maps several runs, with one `VFIO_IOMMU_MAP_DMA` per contiguous run after
    /// [`coalesce_runs`]: a buffer of 256 huge pages costs one ioctl and one entry of the
    /// mapping budget instead of 256. Returns the number of mappings made.
    ///
    /// All or nothing: when a run fails, the runs mapped before it are unmapped again. Should
    /// one of those unmaps fail too, the error is [`Error::RollbackFailed`], which lists the
    /// ranges that stay mapped (the memory behind them must then stay alive and untouched, as
    /// for any mapping).
    ///
    /// # Safety
    ///
    /// As [`Container::map_dma_raw`], for every run.
    ///
    /// # Errors
    ///
    /// As [`Container::map_dma_raw`], for the first run that fails; [`Error::RollbackFailed`]
    /// wrapping that error when runs mapped before it could not be unmapped.
    #[doc(alias = "VFIO_IOMMU_MAP_DMA")]
    pub unsafe fn map_dma_runs(&self, runs: &[DmaRun], access: DmaAccess) -> Result<usize> {
        map_all_or_nothing(
            &coalesce_runs(runs),
            |run| {
                // SAFETY: forwarded from the caller, run by run.
                unsafe { self.map_dma_raw(run.vaddr as *const u8, run.iova, run.size, access) }
            },
            |run| self.unmap_dma(run.iova, run.size),
        )
    }

    /// `VFIO_IOMMU_UNMAP_DMA`—Removes every mapping inside `iova..iova + size`; returns the
    /// bytes unmapped.
    ///
    /// Safe: taking access away never makes Rust code unsound. On type1v2 a range that cuts
    /// through a mapping fails and changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`]: `EINVAL` for a zero size, `EOVERFLOW` for a span past
    /// 2^64, `ENOENT` when nothing was mapped there (a double unmap); [`Error::Ioctl`]:
    /// `EINVAL` when the range cuts through a mapping (type1v2) or is not page aligned.
    #[doc(alias = "VFIO_IOMMU_UNMAP_DMA")]
    #[doc(alias = "vfio_iommu_type1_dma_unmap")]
    pub fn unmap_dma(&self, iova: u64, size: u64) -> Result<u64> {
        check_span("unmap_dma", iova, size)?;
        let unmapped = self.unmap_ioctl(0, iova, size)?;
        if unmapped == 0 {
            return Err(Error::InvalidArgument {
                op: "unmap_dma",
                object: Object::Container.into(),
                reason: format!("nothing is mapped in the {size:#x} bytes at IOVA {iova:#x}")
                    .into(),
                errno: Errno::ENOENT,
            });
        }
        Ok(unmapped)
    }

    /// Unmaps everything in the container; returns the bytes unmapped (0 when nothing was).
    ///
    /// Uses `VFIO_DMA_UNMAP_FLAG_ALL` when the kernel reports [`Extension::UnmapAll`]
    /// (Linux 5.12), else two unmaps of 2^63 bytes each (QEMU's fallback). Mappings owned by a
    /// [`DmaBuffer`](crate::dma::DmaBuffer) or [`DmaPool`](crate::dma::DmaPool) go too: their
    /// memory then stays allocated but the device can no longer reach it, and they say so
    /// ([`DmaBuffer::is_mapped`](crate::dma::DmaBuffer::is_mapped) is `false`,
    /// [`DmaMemory::iova_at`](crate::dma::DmaMemory::iova_at) fails with
    /// [`Error::NotMapped`]).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if an ioctl fails (`EINVAL` before an IOMMU type is set).
    #[doc(alias = "VFIO_DMA_UNMAP_FLAG_ALL")]
    #[doc(alias = "VFIO_UNMAP_ALL")]
    pub fn unmap_all_dma(&self) -> Result<u64> {
        if self.check_extension(Extension::UnmapAll)? {
            let all = self.unmap_ioctl(vfio::VFIO_DMA_UNMAP_FLAG_ALL, 0, 0)?;
            self.dma_state().mappings_dropped();
            return Ok(all);
        }
        let low = self.unmap_ioctl(0, 0, 1 << 63)?;
        // Every buffer's IOVA lies below 2^63 (no IOMMU has a wider aperture): they are all
        // unmapped now, whatever the second half does.
        self.dma_state().mappings_dropped();
        let high = self.unmap_ioctl(0, 1 << 63, 1 << 63)?;
        Ok(low.saturating_add(high))
    }

    /// `VFIO_IOMMU_UNMAP_DMA` with `VFIO_DMA_UNMAP_FLAG_VADDR`—Keeps the mappings inside
    /// `iova..iova + size` (the device still reaches the pinned pages) but forgets their
    /// process address, for a process about to `exec` a new version of itself (live update).
    /// [`Container::update_dma_vaddr`] supplies the new address. Returns the bytes affected.
    ///
    /// Until then, anything that needs the address blocks in the kernel, including a group
    /// joining the container. Needs [`Extension::UpdateVaddr`] (Linux 5.12).
    ///
    /// # Safety
    ///
    /// From this call until [`Container::update_dma_vaddr`] has given every invalidated
    /// mapping in the range its new address (or the mappings are unmapped), the kernel makes
    /// every request that needs a process address of this container wait, in any thread:
    /// mapping DMA (a [`DmaBuffer`](crate::dma::DmaBuffer) or [`DmaPool`](crate::dma::DmaPool)
    /// being created), pinning for a device, a group joining. The caller must ensure that no
    /// such request is made meanwhile (or that whatever makes it may wait until the update),
    /// and that the update or unmap does come: otherwise those calls never return.
    ///
    /// ```compile_fail,E0133
    /// fn forget(c: &uvfio::Container) {
    ///     // Not callable without `unsafe`: a later map would hang.
    ///     let _ = c.invalidate_dma_vaddr(0x10_0000, 4096);
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] without the extension; [`Error::InvalidArgument`] for a bad
    /// span; [`Error::Ioctl`] from the kernel.
    #[doc(alias = "VFIO_DMA_UNMAP_FLAG_VADDR")]
    #[doc(alias = "VFIO_UPDATE_VADDR")]
    pub unsafe fn invalidate_dma_vaddr(&self, iova: u64, size: u64) -> Result<u64> {
        check_span("invalidate_dma_vaddr", iova, size)?;
        self.require(Extension::UpdateVaddr, "invalidate_dma_vaddr")?;
        self.unmap_ioctl(vfio::VFIO_DMA_UNMAP_FLAG_VADDR, iova, size)
    }

    /// `VFIO_IOMMU_MAP_DMA` with `VFIO_DMA_MAP_FLAG_VADDR`—Gives the mapping at exactly
    /// `iova..iova + size`, invalidated with [`Container::invalidate_dma_vaddr`], its new
    /// process address `vaddr`.
    ///
    /// # Safety
    ///
    /// As [`Container::map_dma_raw`] for `vaddr..vaddr + size`, which must hold the same data
    /// as the memory originally mapped (in a live update: the same file or shared memory
    /// mapped again).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] without [`Extension::UpdateVaddr`]; [`Error::Ioctl`] from the
    /// kernel (`EINVAL` when no invalidated mapping matches exactly).
    #[doc(alias = "VFIO_DMA_MAP_FLAG_VADDR")]
    pub unsafe fn update_dma_vaddr(&self, vaddr: *const u8, iova: u64, size: u64) -> Result<()> {
        check_span("update_dma_vaddr", iova, size)?;
        self.require(Extension::UpdateVaddr, "update_dma_vaddr")?;
        let map = vfio::vfio_iommu_type1_dma_map {
            argsz: 0,
            flags: vfio::VFIO_DMA_MAP_FLAG_VADDR,
            vaddr: vaddr as u64,
            iova,
            size,
        };
        self.dma_state().map_ioctls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds the memory contract for the new address.
        unsafe { self.fd().map_dma(&map) }.map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_DIRTY_PAGES` with `VFIO_IOMMU_DIRTY_PAGES_FLAG_START`—Starts dirty page
    /// tracking for all mappings of the container (for live migration).
    ///
    /// Without hardware dirty bits, type1 reports every page a device *could* write (every
    /// pinned, writable page) as dirty.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`]: `EACCES` unless the IOMMU type is type1v2, `EINVAL` when a mapping's
    /// pages cannot be tracked.
    #[doc(alias = "VFIO_IOMMU_DIRTY_PAGES")]
    #[doc(alias = "VFIO_IOMMU_DIRTY_PAGES_FLAG_START")]
    pub fn start_dirty_tracking(&self) -> Result<()> {
        self.fd()
            .dirty_pages(vfio::VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_DIRTY_PAGES` with `VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP`—Stops dirty page
    /// tracking.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] if the ioctl fails (`EACCES` unless type1v2).
    #[doc(alias = "VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP")]
    pub fn stop_dirty_tracking(&self) -> Result<()> {
        self.fd()
            .dirty_pages(vfio::VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP)
            .map_err(|f| f.on(Object::Container))
    }

    /// `VFIO_IOMMU_DIRTY_PAGES` with `VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP`—Reads (and
    /// clears) the dirty bits of `size` bytes at `iova`, one bit per `page_size` bytes.
    ///
    /// `page_size` must be the IOMMU's smallest page size; the range must cover whole
    /// mappings (it may span several).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad page size or span; [`Error::Ioctl`]: `EINVAL` when
    /// tracking is off, the page size is not the IOMMU's smallest, or the range cuts through a
    /// mapping.
    #[doc(alias = "VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP")]
    #[doc(alias = "vfio_iommu_type1_dirty_bitmap_get")]
    pub fn dirty_bitmap(&self, iova: u64, size: u64, page_size: u64) -> Result<DirtyBitmap> {
        let mut bitmap =
            DirtyBitmap::new("dirty_bitmap", Object::Container, iova, size, page_size)?;
        self.fd()
            .dirty_pages_bitmap(iova, size, page_size, &mut bitmap.words)
            .map_err(|f| f.on(Object::Container))?;
        Ok(bitmap)
    }

    /// `VFIO_IOMMU_UNMAP_DMA` with `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`—Unmaps `size` bytes
    /// at `iova` and returns the bytes unmapped with the final dirty bits of the range (all
    /// clean when tracking is off).
    ///
    /// # Errors
    ///
    /// As [`Container::dirty_bitmap`] and [`Container::unmap_dma`] (a range with nothing
    /// mapped gives `ENOENT`).
    #[doc(alias = "VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP")]
    pub fn unmap_dma_dirty(
        &self,
        iova: u64,
        size: u64,
        page_size: u64,
    ) -> Result<(u64, DirtyBitmap)> {
        let mut bitmap =
            DirtyBitmap::new("unmap_dma_dirty", Object::Container, iova, size, page_size)?;
        self.dma_state()
            .unmap_ioctls
            .fetch_add(1, Ordering::Relaxed);
        let unmapped = self
            .fd()
            .unmap_dma_dirty(iova, size, page_size, &mut bitmap.words)
            .map_err(|f| f.on(Object::Container))?;
        if unmapped == 0 {
            return Err(Error::InvalidArgument {
                op: "unmap_dma_dirty",
                object: Object::Container.into(),
                reason: format!("nothing is mapped in the {size:#x} bytes at IOVA {iova:#x}")
                    .into(),
                errno: Errno::ENOENT,
            });
        }
        Ok((unmapped, bitmap))
    }

    /// The unmap of a [`DmaBuffer`](crate::dma::DmaBuffer)'s own range (the caller counts
    /// the ioctl): whether the kernel proved nothing is mapped there any more.
    pub(crate) fn unmap_owned(&self, iova: u64, size: u64) -> bool {
        let unmap = vfio::vfio_iommu_type1_dma_unmap {
            argsz: 0,
            flags: 0,
            iova,
            size,
        };
        let mut result = self.fd().unmap_dma(&unmap);
        for _ in 1..crate::errno::TEARDOWN_ATTEMPTS {
            match &result {
                Err(f) if f.errno().is_some_and(Errno::worth_retrying) => {
                    result = self.fd().unmap_dma(&unmap)
                }
                _ => break,
            }
        }
        match result {
            // Whatever the count, nothing is mapped in the range any more (0: someone unmapped
            // it earlier).
            Ok(_) => true,
            // The kernel says the container has no IOMMU driver any more: the last group left
            // and every mapping went with the driver. The crate's own list of groups is no
            // proof (a dup'd device fd keeps a dropped group, and its mappings, in the
            // container).
            Err(_) => self.iommu_released(),
        }
    }

    fn unmap_ioctl(&self, flags: u32, iova: u64, size: u64) -> Result<u64> {
        let unmap = vfio::vfio_iommu_type1_dma_unmap {
            argsz: 0,
            flags,
            iova,
            size,
        };
        self.dma_state()
            .unmap_ioctls
            .fetch_add(1, Ordering::Relaxed);
        self.fd()
            .unmap_dma(&unmap)
            .map_err(|f| f.on(Object::Container))
    }

    fn require(&self, extension: Extension, op: &'static str) -> Result<()> {
        if self.check_extension(extension)? {
            Ok(())
        } else {
            Err(Error::NotSupported {
                op,
                object: Object::Container.into(),
                reason: format!("the kernel does not report {extension} (Linux 5.12 or later)")
                    .into(),
                errno: Errno::ENOTSUP,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rollback_names_what_stays_mapped() {
        let runs: Vec<DmaRun> = (0..4u64)
            .map(|i| DmaRun {
                vaddr: 0x7000_0000 + (i as usize) * 0x10_0000,
                iova: 0x10_0000 * (i + 1),
                size: 0x1000,
            })
            .collect();
        let fail_map = |at: u64| {
            move |run: &DmaRun| {
                if run.iova == at {
                    Err(Error::ioctl(
                        "VFIO_IOMMU_MAP_DMA",
                        Object::Container,
                        Errno::ENOSPC,
                    ))
                } else {
                    Ok(())
                }
            }
        };
        // The third run fails; unmapping the second fails too: it stays mapped, and says so.
        let mut unmapped = Vec::new();
        let err = map_all_or_nothing(&runs, fail_map(0x30_0000), |run| {
            unmapped.push(run.iova);
            if run.iova == 0x20_0000 {
                Err(Error::ioctl(
                    "VFIO_IOMMU_UNMAP_DMA",
                    Object::Container,
                    Errno::EFAULT,
                ))
            } else {
                Ok(run.size)
            }
        })
        .unwrap_err();
        assert_eq!(unmapped, [0x10_0000, 0x20_0000]);
        match &err {
            Error::RollbackFailed {
                source,
                still_mapped,
                errno,
            } => {
                assert_eq!(*still_mapped, [(0x20_0000, 0x1000)]);
                assert_eq!(*errno, Errno::ENOSPC);
                assert_eq!(source.errno(), Errno::ENOSPC);
            }
            other => panic!("not a rollback failure: {other}"),
        }
        assert!(err.to_string().contains("0x200000"), "{err}");

        // A clean rollback reports the map's own error; success maps everything.
        let err = map_all_or_nothing(&runs, fail_map(0x40_0000), |r| Ok(r.size)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Ioctl {
                    errno: Errno::ENOSPC,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            map_all_or_nothing(&runs, |_| Ok(()), |r| Ok(r.size)).unwrap(),
            4
        );
    }

    #[test]
    fn access_flags() {
        assert_eq!(DmaAccess::ReadOnly.flags(), 1);
        assert_eq!(DmaAccess::WriteOnly.flags(), 2);
        assert_eq!(DmaAccess::ReadWrite.flags(), 3);
        assert_eq!(DmaAccess::default(), DmaAccess::ReadWrite);
        assert!(DmaAccess::ReadOnly.device_reads() && !DmaAccess::ReadOnly.device_writes());
        assert!(!DmaAccess::WriteOnly.device_reads() && DmaAccess::WriteOnly.device_writes());
    }

    #[test]
    fn coalescing_merges_only_true_continuations() {
        let run = |vaddr: usize, iova: u64, size: u64| DmaRun { vaddr, iova, size };
        let page = 0x20_0000;
        // Out of order, with a gap in the process space and one in the IOVA space.
        let runs = [
            run(0x1000_0000 + page as usize, 0x4000_0000 + page, page),
            run(0x1000_0000, 0x4000_0000, page),
            run(
                0x1000_0000 + 3 * page as usize,
                0x4000_0000 + 2 * page,
                page,
            ),
            run(
                0x1000_0000 + 4 * page as usize,
                0x4000_0000 + 4 * page,
                page,
            ),
            run(0x1000_0000 + 5 * page as usize, 0x4000_0000 + 5 * page, 0),
        ];
        assert_eq!(
            coalesce_runs(&runs),
            vec![
                run(0x1000_0000, 0x4000_0000, 2 * page),
                run(
                    0x1000_0000 + 3 * page as usize,
                    0x4000_0000 + 2 * page,
                    page
                ),
                run(
                    0x1000_0000 + 4 * page as usize,
                    0x4000_0000 + 4 * page,
                    page
                ),
            ]
        );
        // 256 huge pages of one buffer: one run.
        let many: Vec<DmaRun> = (0..256u64)
            .map(|i| {
                run(
                    0x7f00_0000_0000 + (i * page) as usize,
                    i * page + page,
                    page,
                )
            })
            .collect();
        assert_eq!(
            coalesce_runs(&many),
            vec![run(0x7f00_0000_0000, page, 256 * page)]
        );
        // No overflow at the top of either space.
        let top = [
            run(usize::MAX - 0xfff, u64::MAX - 0xfff, 0x1000),
            run(0, 0, 0x1000),
        ];
        assert_eq!(coalesce_runs(&top).len(), 2);
        assert!(coalesce_runs(&[]).is_empty());
    }

    #[test]
    fn spans_are_checked_before_any_ioctl() {
        assert_eq!(check_span("t", 0, 0).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(
            check_span("t", u64::MAX, 2).unwrap_err().errno(),
            Errno::EOVERFLOW
        );
        assert!(check_span("t", u64::MAX, 1).is_ok());
    }
}
