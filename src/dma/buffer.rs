//! [`DmaBuffer`]: memory that owns its IOMMU mapping.
//!
//! # Safety
//!
//! A `DmaBuffer` owns three things, acquired in this order: the memory (a [`Memory`] mapping),
//! an IOVA block from its [`DmaSpace`]'s allocator, and the IOMMU mapping of the one at the
//! other (`VFIO_IOMMU_MAP_DMA` on a container, `IOMMU_IOAS_MAP` on an IOAS). The mapping's
//! contract ([`Container::map_dma_raw`], [`Ioas::map_raw`]) is kept because:
//!
//! - the memory is private to the buffer and lives at least as long as the mapping: `Drop`
//!   unmaps first, and frees the memory only on the kernel's proof that no device reaches it:
//!   the unmap succeeded (on an IOAS also `ENOENT`: nothing is mapped in the range), or
//!   `VFIO_IOMMU_GET_INFO` shows a container has no IOMMU driver left (the last group left,
//!   and every mapping went with the driver). The crate's own list
//!   of groups is no proof: a group dropped while a `dup` of one of its device fds is open
//!   stays in the container. Without proof the memory and the IOVA block are leaked
//!   ([`DmaStats::leaked_bytes`](super::DmaStats::leaked_bytes)), never freed while a device
//!   might still reach them;
//! - the bytes are only ever accessed through [`DmaMemory`]'s volatile and atomic accessors
//!   (see its module docs); no reference to them exists;
//! - when a step fails, the steps before it are undone in reverse order (IOVA given back,
//!   memory freed), and nothing was mapped.
//!
//! Something else unmapping the range (safe [`Container::unmap_dma`],
//! [`Container::unmap_all_dma`], [`Ioas::unmap`], [`Ioas::unmap_all`]) only takes the device's access away early; the buffer's own
//! unmap then finds nothing, which is fine.
//!
//! The buffer remembers the space's mapping epoch (`DmaState::epoch`), read **before**
//! the map ioctl: a drop of every mapping racing with the map can only make the buffer look
//! unmapped when it is not, never the reverse.
#![allow(unsafe_code)]

#[cfg(doc)]
use crate::{iommufd::Ioas, Container};

use std::fmt;
use std::sync::atomic::Ordering;

use super::access::{sealed, DmaMemory};
use super::iova::IovaBlock;
use super::memory::Memory;
use super::{DmaOptions, PageSize};
use crate::error::{Errno, Error, Result};
use crate::iommu::{DmaAccess, DmaSpace};

/// Memory the devices of a [`DmaSpace`] (a container or an iommufd IOAS) can reach by DMA,
/// mapped for as long as the value lives.
///
/// A `DmaBuffer` allocates page-aligned, zero-filled memory (4 KiB pages, or 2 MiB / 1 GiB
/// huge pages, see [`DmaOptions`]), takes an IOVA from the space's allocator (valid,
/// naturally aligned, never 0, within the device's address limit), and maps one onto the
/// other. Dropping it unmaps the IOVA range **before** the memory is freed: a device can never
/// reach freed memory through it. The CPU side is accessed through [`DmaMemory`] (volatile
/// and atomic accesses only); the buffer is `Send` and `Sync`.
///
/// Takes `&DmaSpace`, `&Container` (with a type1 IOMMU set) or `&Ioas`; the code is the same
/// on every backend.
///
/// # When the mapping goes away under the buffer
///
/// On an IOAS, only [`Ioas::unmap_all`] (or an unmap of the buffer's range) takes the mapping
/// away: the buffer keeps the IOAS alive. On a container, the mapping lives in the container's
/// IOMMU context, and the kernel drops that context,
/// with **every** mapping in it, when the container's last group leaves (the last [`Group`]
/// handle and its devices are dropped, or [`Group::unset_container`]). A group joining again
/// and [`Container::set_iommu`] make a new, empty context: the buffer is not mapped again.
/// (iommufd's compat container keeps its IOAS, and the buffer's mapping, until it is closed.)
/// [`Container::unmap_all_dma`] has the same effect. The buffer's memory stays valid for the
/// CPU, but a device given its IOVA would fault. The buffer tells:
///
/// - [`DmaBuffer::is_mapped`] is `false` from then on;
/// - [`DmaMemory::iova_at`] (and [`DmaMemory::iova_of_ptr`]) fail with
///   [`Error::NotMapped`] instead of handing out the IOVA; [`DmaMemory::iova`] is unchecked.
///
/// Keep a group in the container for as long as its buffers are used, or drop them and
/// allocate new ones once the container has a group and an IOMMU type again.
///
/// [`Group`]: crate::Group
/// [`Group::unset_container`]: crate::Group::unset_container
///
/// # Examples
///
/// ```no_run
/// use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions, PageSize};
///
/// # let container = uvfio::Container::new()?;
/// // A 64 KiB ring for a device that can only address 32 bits.
/// let mut ring = DmaBuffer::with_options(&container, 64 << 10, DmaOptions::new().address_bits(32))?;
/// assert!(ring.iova() + ring.len() as u64 <= 1 << 32);
/// ring.write::<u64>(0, 0)?;
///
/// // 1 GiB of 2 MiB huge pages, mapped with a single ioctl.
/// let big = DmaBuffer::with_options(&container, 1 << 30, DmaOptions::new().page_size(PageSize::Huge2M))?;
/// # Ok::<(), uvfio::Error>(())
/// ```
pub struct DmaBuffer {
    ptr: *mut u8,
    len: usize,
    iova: u64,
    access: DmaAccess,
    page_size: PageSize,
    space: DmaSpace,
    // Released by hand in `Drop`, in the right order.
    mem: Option<Memory>,
    block: Option<IovaBlock>,
    /// The container's mapping epoch when the buffer was mapped (see `DmaState::epoch`).
    epoch: u64,
}

// SAFETY: the buffer owns its memory and mapping; moving it to another thread moves that
// ownership. `&DmaBuffer` only allows volatile reads of the bytes (no writes), so sharing it
// between threads allows no CPU-side data race; the container handle is Send + Sync.
unsafe impl Send for DmaBuffer {}
// SAFETY: as above.
unsafe impl Sync for DmaBuffer {}

impl fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("iova", &format_args!("{:#x}", self.iova))
            .field("len", &self.len)
            .field("access", &self.access)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl DmaBuffer {
    /// At least `size` bytes of read-write DMA memory on 4 KiB pages, anywhere in the valid
    /// IOVA space: [`DmaBuffer::with_options`] with the default [`DmaOptions`].
    ///
    /// # Errors
    ///
    /// As [`DmaBuffer::with_options`].
    pub fn new(space: impl Into<DmaSpace>, size: usize) -> Result<DmaBuffer> {
        Self::with_options(space, size, DmaOptions::new())
    }

    /// At least `size` bytes of DMA memory as `options` say; the length is rounded up to a
    /// whole number of pages.
    ///
    /// # Errors
    ///
    /// - [`Error::NotSupported`] for a container without a type1 IOMMU;
    /// - [`Error::InvalidArgument`]: `EINVAL` for a zero size or a bad alignment, `ENOSPC`
    ///   when no IOVA block of that size is free within the address limit, `EEXIST` /
    ///   `ERANGE` when a fixed IOVA ([`DmaOptions::iova`]) is taken, outside the valid ranges
    ///   or beyond the address limit;
    /// - [`Error::Syscall`] when `mmap` fails (`ENOMEM`; for huge pages, typically none
    ///   reserved, and the message says how to reserve them);
    /// - [`Error::Ioctl`] from `VFIO_IOMMU_MAP_DMA`: `ENOSPC` when the container's mapping
    ///   budget (`dma_entry_limit`) is used up, `ENOMEM` past `RLIMIT_MEMLOCK`; from
    ///   `IOMMU_IOAS_MAP`: `ENOMEM` past `RLIMIT_MEMLOCK`.
    ///
    /// Nothing is left allocated, reserved or mapped after an error.
    pub fn with_options(
        space: impl Into<DmaSpace>,
        size: usize,
        options: DmaOptions,
    ) -> Result<DmaBuffer> {
        Self::build(space.into(), size, options)
    }

    fn build(space: DmaSpace, size: usize, options: DmaOptions) -> Result<DmaBuffer> {
        const OP: &str = "DmaBuffer::with_options";
        space.check_ready(OP)?;
        let object = space.object();
        if size == 0 {
            return Err(Error::invalid(OP, object.clone(), "the size is 0"));
        }
        if options.align != 0 && !options.align.is_power_of_two() {
            return Err(Error::invalid(
                OP,
                object.clone(),
                format!("the alignment {:#x} is not a power of two", options.align),
            ));
        }
        if space.is_noiommu() {
            return Self::build_noiommu(space, size, options);
        }
        let state = space.state();
        let iommu_page = space.with_allocator(OP, |a| Ok(a.page_size()))?;
        // The length the memory will have: whole pages of both the memory and the IOMMU.
        let granule = options
            .page_size
            .bytes()
            .max(usize::try_from(iommu_page).unwrap_or(usize::MAX));
        let len = size.checked_next_multiple_of(granule).ok_or_else(|| {
            Error::out_of_range(
                OP,
                object.clone(),
                format!("{size} bytes do not fit the address space"),
            )
        })? as u64;
        // The IOVA first: it is cheap and fails fast (no space below the limit, a taken fixed
        // IOVA) before any memory is populated.
        let block = match options.iova {
            Some(iova) => {
                if !options.limit.allows(iova, len) {
                    return Err(Error::out_of_range(
                        OP,
                        object.clone(),
                        format!(
                            "{len:#x} bytes at the fixed IOVA {iova:#x} go past the device's \
                             address limit {:#x}",
                            options.limit.last()
                        ),
                    ));
                }
                space.with_allocator(OP, |a| a.reserve(iova, len))?
            }
            None => space.with_allocator(OP, |a| {
                a.allocate_aligned(len, options.align, options.limit)
            })?,
        };
        let mem = match Memory::allocate(
            size,
            options.page_size,
            usize::try_from(iommu_page).unwrap_or(usize::MAX),
            options.huge_page_fallback,
        ) {
            Ok(mem) if mem.len() as u64 == len => mem,
            Ok(mem) => {
                let got = mem.len();
                drop(mem);
                state.free(block);
                return Err(Error::invalid(
                    OP,
                    object.clone(),
                    format!("the memory came out as {got} bytes instead of {len}"),
                ));
            }
            Err(e) => {
                state.free(block);
                return Err(e);
            }
        };
        // Read before mapping (see the module docs).
        let epoch = state.epoch();
        // SAFETY: `mem` is owned by the buffer being built and outlives the mapping (see the
        // module docs: Drop unmaps before freeing, and the error path below frees only after
        // a failed map); its bytes are only accessed through the volatile/atomic accessors.
        let mapped = unsafe { space.map(mem.as_ptr(), block.start(), len, options.access) };
        if let Err(e) = mapped {
            // Nothing was mapped: give back the IOVA, then free the memory (drop `mem`).
            state.free(block);
            return Err(e);
        }
        state.buffers.fetch_add(1, Ordering::Relaxed);
        state.mapped_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(DmaBuffer {
            ptr: mem.as_ptr(),
            len: mem.len(),
            iova: block.start(),
            access: options.access,
            page_size: mem.page_size(),
            space,
            mem: Some(mem),
            block: Some(block),
            epoch,
        })
    }

    /// A buffer of a no-IOMMU space: locked, physically contiguous memory whose "IOVA" is its
    /// physical address (see `super::phys`); nothing is mapped and no IOVA block is taken.
    fn build_noiommu(space: DmaSpace, size: usize, options: DmaOptions) -> Result<DmaBuffer> {
        let (mem, phys) = super::phys::allocate(size, &options)?;
        let state = space.state();
        state.buffers.fetch_add(1, Ordering::Relaxed);
        state
            .mapped_bytes
            .fetch_add(mem.len() as u64, Ordering::Relaxed);
        Ok(DmaBuffer {
            ptr: mem.as_ptr(),
            len: mem.len(),
            iova: phys,
            access: options.access,
            page_size: mem.page_size(),
            epoch: state.epoch(),
            space,
            mem: Some(mem),
            block: None,
        })
    }

    /// Whether the buffer's IOMMU mapping still exists, as far as the crate can tell: `false`
    /// once the container's last group has left (the kernel drops every mapping with the
    /// IOMMU context) or [`Container::unmap_all_dma`] / [`Ioas::unmap_all`] succeeded, and
    /// forever after, even when
    /// a group joins again. See [When the mapping goes away under the
    /// buffer](DmaBuffer#when-the-mapping-goes-away-under-the-buffer).
    ///
    /// A group dropped while a `dup` of one of its device fds is open stays in the container
    /// (the mappings too) until that fd closes; this call asks the kernel whether that has
    /// happened when such a group exists. A single range unmapped with
    /// [`Container::unmap_dma`] or [`Ioas::unmap`] is not tracked.
    pub fn is_mapped(&self) -> bool {
        // Lets a container notice stranded groups the kernel has let go of.
        if let Some(container) = self.space.container() {
            let _ = container.iommu();
        }
        self.space.state().is_current(self.epoch)
    }

    /// The page size backing the memory ([`PageSize::Base`] when a huge page request fell
    /// back, see [`DmaOptions::huge_page_fallback`]).
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// The container or IOAS the buffer is mapped in.
    pub fn space(&self) -> &DmaSpace {
        &self.space
    }
}

impl sealed::Sealed for DmaBuffer {
    fn base(&self) -> *mut u8 {
        self.ptr
    }

    #[inline]
    fn check_mapped(&self, op: &'static str) -> Result<()> {
        if self.space.state().is_current(self.epoch) {
            Ok(())
        } else {
            Err(Error::NotMapped {
                op,
                object: self.space.object(),
                iova: self.iova,
                len: self.len,
                errno: Errno::ENXIO,
            })
        }
    }
}

impl DmaMemory for DmaBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn iova(&self) -> u64 {
        self.iova
    }

    fn access(&self) -> DmaAccess {
        self.access
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        let Some(mem) = self.mem.take() else {
            return;
        };
        let state = self.space.state();
        let Some(block) = self.block.take() else {
            // A no-IOMMU buffer: nothing mapped, no IOVA taken (see `build_noiommu`).
            state.buffers.fetch_sub(1, Ordering::Relaxed);
            state
                .mapped_bytes
                .fetch_sub(self.len as u64, Ordering::Relaxed);
            drop(mem);
            return;
        };
        // The memory is freed only on the kernel's proof that no device can reach it.
        let unmapped = self.space.unmap_owned(self.iova, self.len as u64);
        state.buffers.fetch_sub(1, Ordering::Relaxed);
        state
            .mapped_bytes
            .fetch_sub(self.len as u64, Ordering::Relaxed);
        if unmapped {
            state.free(block);
            drop(mem);
        } else {
            // A device may still reach the memory: keep it (and its IOVA) forever.
            state
                .leaked_bytes
                .fetch_add(self.len as u64, Ordering::Relaxed);
            std::mem::forget(mem);
            let _still_allocated = block;
        }
    }
}
