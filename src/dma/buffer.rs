//! [`DmaBuffer`]: memory that owns its IOMMU mapping.
//!
//! # Safety
//!
//! A `DmaBuffer` owns three things, acquired in this order: the memory (a [`Memory`] mapping),
//! an IOVA block from the container's allocator, and the IOMMU mapping of the one at the other
//! (`VFIO_IOMMU_MAP_DMA`). The mapping's contract ([`Container::map_dma_raw`]) is kept because:
//!
//! - the memory is private to the buffer and lives at least as long as the mapping: `Drop`
//!   unmaps first, and frees the memory only on the kernel's proof that no device reaches it:
//!   the unmap succeeded, or `VFIO_IOMMU_GET_INFO` shows the container has no IOMMU driver
//!   left (the last group left, and every mapping went with the driver). The crate's own list
//!   of groups is no proof: a group dropped while a `dup` of one of its device fds is open
//!   stays in the container. Without proof the memory and the IOVA block are leaked
//!   ([`DmaStats::leaked_bytes`](super::DmaStats::leaked_bytes)), never freed while a device
//!   might still reach them;
//! - the bytes are only ever accessed through [`DmaMemory`]'s volatile and atomic accessors
//!   (see its module docs); no reference to them exists;
//! - when a step fails, the steps before it are undone in reverse order (IOVA given back,
//!   memory freed), and nothing was mapped.
//!
//! Something else unmapping the range (safe [`Container::unmap_dma`] or
//! [`Container::unmap_all_dma`]) only takes the device's access away early; the buffer's own
//! unmap then finds nothing, which is fine.
//!
//! The buffer remembers the container's mapping epoch (`DmaState::epoch`), read **before**
//! the map ioctl: a drop of every mapping racing with the map can only make the buffer look
//! unmapped when it is not, never the reverse.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::atomic::Ordering;

use super::access::{sealed, DmaMemory};
use super::iova::IovaBlock;
use super::memory::Memory;
use super::{DmaOptions, PageSize};
use crate::container::Container;
use crate::error::{Errno, Error, Object, Result};
use crate::iommu::DmaAccess;
use crate::uapi::vfio;

/// Memory the container's devices can reach by DMA, mapped for as long as the value lives.
///
/// A `DmaBuffer` allocates page-aligned, zero-filled memory (4 KiB pages, or 2 MiB / 1 GiB
/// huge pages, see [`DmaOptions`]), takes an IOVA from the container's allocator (valid,
/// naturally aligned, never 0, within the device's address limit), and maps one onto the
/// other. Dropping it unmaps the IOVA range **before** the memory is freed: a device can never
/// reach freed memory through it. The CPU side is accessed through [`DmaMemory`] (volatile
/// and atomic accesses only); the buffer is `Send` and `Sync`.
///
/// Needs a container with a type1 IOMMU set.
///
/// # When the mapping goes away under the buffer
///
/// The mapping lives in the container's IOMMU context, and the kernel drops that context,
/// with **every** mapping in it, when the container's last group leaves (the last [`Group`]
/// handle and its devices are dropped, or [`Group::unset_container`]). A group joining again
/// and [`Container::set_iommu`] make a new, empty context: the buffer is not mapped again.
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
    container: Container,
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
    pub fn new(container: &Container, size: usize) -> Result<DmaBuffer> {
        Self::with_options(container, size, DmaOptions::new())
    }

    /// At least `size` bytes of DMA memory as `options` say; the length is rounded up to a
    /// whole number of pages.
    ///
    /// # Errors
    ///
    /// - [`Error::NotSupported`] unless the container has a type1 IOMMU;
    /// - [`Error::InvalidArgument`]: `EINVAL` for a zero size or a bad alignment, `ENOSPC`
    ///   when no IOVA block of that size is free within the address limit, `EEXIST` /
    ///   `ERANGE` when a fixed IOVA ([`DmaOptions::iova`]) is taken, outside the valid ranges
    ///   or beyond the address limit;
    /// - [`Error::Syscall`] when `mmap` fails (`ENOMEM`; for huge pages, typically none
    ///   reserved, and the message says how to reserve them);
    /// - [`Error::Ioctl`] from `VFIO_IOMMU_MAP_DMA`: `ENOSPC` when the container's mapping
    ///   budget (`dma_entry_limit`) is used up, `ENOMEM` past `RLIMIT_MEMLOCK`.
    ///
    /// Nothing is left allocated, reserved or mapped after an error.
    pub fn with_options(
        container: &Container,
        size: usize,
        options: DmaOptions,
    ) -> Result<DmaBuffer> {
        const OP: &str = "DmaBuffer::with_options";
        match container.iommu() {
            Some(t) if t.is_type1() => {}
            other => {
                return Err(Error::NotSupported {
                    op: OP,
                    object: Object::Container.into(),
                    reason: format!(
                        "DMA buffers need a type1 IOMMU (Container::set_iommu); the container has \
                         {other:?}"
                    )
                    .into(),
                    errno: Errno::EINVAL,
                })
            }
        }
        if size == 0 {
            return Err(Error::invalid(OP, Object::Container, "the size is 0"));
        }
        if options.align != 0 && !options.align.is_power_of_two() {
            return Err(Error::invalid(
                OP,
                Object::Container,
                format!("the alignment {:#x} is not a power of two", options.align),
            ));
        }
        let state = container.dma_state();
        let iommu_page = state.with_allocator(container, |a| Ok(a.page_size()))?;
        // The length the memory will have: whole pages of both the memory and the IOMMU.
        let granule = options
            .page_size
            .bytes()
            .max(usize::try_from(iommu_page).unwrap_or(usize::MAX));
        let len = size.checked_next_multiple_of(granule).ok_or_else(|| {
            Error::out_of_range(
                OP,
                Object::Container,
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
                        Object::Container,
                        format!(
                            "{len:#x} bytes at the fixed IOVA {iova:#x} go past the device's \
                             address limit {:#x}",
                            options.limit.last()
                        ),
                    ));
                }
                state.with_allocator(container, |a| a.reserve(iova, len))?
            }
            None => state.with_allocator(container, |a| {
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
                    Object::Container,
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
        let mapped =
            unsafe { container.map_dma_raw(mem.as_ptr(), block.start(), len, options.access) };
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
            container: container.clone(),
            mem: Some(mem),
            block: Some(block),
            epoch,
        })
    }

    /// Whether the buffer's IOMMU mapping still exists, as far as the crate can tell: `false`
    /// once the container's last group has left (the kernel drops every mapping with the
    /// IOMMU context) or [`Container::unmap_all_dma`] succeeded, and forever after, even when
    /// a group joins again. See [When the mapping goes away under the
    /// buffer](DmaBuffer#when-the-mapping-goes-away-under-the-buffer).
    ///
    /// A group dropped while a `dup` of one of its device fds is open stays in the container
    /// (the mappings too) until that fd closes; this call asks the kernel whether that has
    /// happened when such a group exists. A single range unmapped with
    /// [`Container::unmap_dma`] is not tracked.
    pub fn is_mapped(&self) -> bool {
        // Lets the container notice stranded groups the kernel has let go of.
        let _ = self.container.iommu();
        self.container.dma_state().is_current(self.epoch)
    }

    /// The page size backing the memory ([`PageSize::Base`] when a huge page request fell
    /// back, see [`DmaOptions::huge_page_fallback`]).
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// The container the buffer is mapped in.
    pub fn container(&self) -> &Container {
        &self.container
    }
}

impl sealed::Sealed for DmaBuffer {
    fn base(&self) -> *mut u8 {
        self.ptr
    }

    #[inline]
    fn check_mapped(&self, op: &'static str) -> Result<()> {
        if self.container.dma_state().is_current(self.epoch) {
            Ok(())
        } else {
            Err(Error::NotMapped {
                op,
                object: Object::Container.into(),
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
        let (Some(mem), Some(block)) = (self.mem.take(), self.block.take()) else {
            return;
        };
        let state = self.container.dma_state();
        let unmap = vfio::vfio_iommu_type1_dma_unmap {
            argsz: 0,
            flags: 0,
            iova: self.iova,
            size: self.len as u64,
        };
        state.unmap_ioctls.fetch_add(1, Ordering::Relaxed);
        // The memory is freed only on the kernel's proof that no device can reach it; the
        // crate's own bookkeeping is no proof (a dup'd device fd keeps a dropped group, and its
        // mappings, in the container).
        let unmapped = match self.container.fd().unmap_dma(&unmap) {
            // Whatever the count, nothing is mapped in the range any more (0: someone unmapped
            // it earlier).
            Ok(_) => true,
            // The kernel says the container has no IOMMU driver any more: the last group left
            // and every mapping went with the driver.
            Err(_) => self.container.iommu_released(),
        };
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
