//! The DMA state each container carries: its IOVA allocator, re-read when groups come and go,
//! and counters of what the DMA layer did.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::iova::{AddressLimit, IovaAllocator, IovaBlock, IovaStats};
use crate::container::Container;
use crate::error::Result;

/// Per-container DMA state, owned by the container (`ContainerInner::dma`).
#[derive(Default)]
pub(crate) struct DmaState {
    allocator: Mutex<Option<IovaAllocator>>,
    /// Set when a group joined or left: the valid ranges must be read again before the next
    /// allocation.
    stale: AtomicBool,
    pub(crate) map_ioctls: AtomicU64,
    pub(crate) unmap_ioctls: AtomicU64,
    pub(crate) buffers: AtomicU64,
    pub(crate) mapped_bytes: AtomicU64,
    pub(crate) leaked_bytes: AtomicU64,
    pub(crate) range_reads: AtomicU64,
    /// The mapping epoch: bumped each time every mapping of the container is gone at once
    /// (the last group left and the kernel dropped the IOMMU context, or
    /// [`Container::unmap_all_dma`] succeeded). A buffer remembers the epoch it was mapped in;
    /// a different current epoch means its mapping is gone.
    epoch: AtomicU64,
}

impl fmt::Debug for DmaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaState")
            .field("stale", &self.stale.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DmaState {
    /// Marks the valid IOVA ranges as out of date (called when a group joins or leaves).
    pub(crate) fn invalidate_ranges(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Records that every mapping of the container is gone (see `DmaState::epoch`).
    pub(crate) fn mappings_dropped(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// The current mapping epoch: read it **before** mapping, so that a drop of every mapping
    /// racing with the map makes the buffer look unmapped (never mapped when it is not).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether a mapping made in `epoch` can still exist (a relaxed load: the hot-path check).
    #[inline]
    pub(crate) fn is_current(&self, epoch: u64) -> bool {
        self.epoch.load(Ordering::Relaxed) == epoch
    }

    fn lock(&self) -> MutexGuard<'_, Option<IovaAllocator>> {
        // Every allocator operation either completes or leaves the allocator unchanged before
        // it can panic (it does not panic), so a poisoned lock still guards a consistent state.
        self.allocator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the container's allocator, creating it or re-reading the ranges first when
    /// needed.
    pub(crate) fn with_allocator<R>(
        &self,
        container: &Container,
        f: impl FnOnce(&mut IovaAllocator) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock();
        let stale = self.stale.swap(false, Ordering::AcqRel);
        if stale || guard.is_none() {
            self.range_reads.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = refresh(container, &mut guard) {
                if stale {
                    self.stale.store(true, Ordering::Release);
                }
                return Err(e);
            }
        }
        match guard.as_mut() {
            Some(allocator) => f(allocator),
            // `refresh` succeeded, so the allocator exists.
            None => Err(crate::Error::invalid(
                "allocate IOVA",
                crate::Object::Container,
                "the IOVA allocator is missing",
            )),
        }
    }

    /// Gives a block back; errors cannot happen for blocks the DMA layer took from this
    /// allocator and are ignored (the block then stays allocated, which is safe).
    pub(crate) fn free(&self, block: IovaBlock) {
        if let Some(a) = self.lock().as_mut() {
            let _ = a.free(block);
        }
    }
}

/// Reads the IOMMU info and (re)builds the allocator in `slot`, keeping live blocks.
fn refresh(container: &Container, slot: &mut Option<IovaAllocator>) -> Result<()> {
    let info = container.iommu_info()?;
    let fresh = IovaAllocator::from_iommu_info(&info)?;
    match slot {
        // The page size of a container's IOMMU does not change; only the ranges do. Live
        // blocks stay allocated.
        Some(a) => {
            let ranges: Vec<_> = fresh.ranges().collect();
            a.set_ranges(&ranges);
        }
        None => *slot = Some(fresh),
    }
    Ok(())
}

/// What a container's DMA layer has done, for diagnostics and leak tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DmaStats {
    /// `VFIO_IOMMU_MAP_DMA` ioctls issued through this container handle (raw maps included).
    pub map_ioctls: u64,
    /// `VFIO_IOMMU_UNMAP_DMA` ioctls issued (including those of dropped buffers).
    pub unmap_ioctls: u64,
    /// Live [`DmaBuffer`](super::DmaBuffer)s (a [`DmaPool`](super::DmaPool) holds one).
    pub buffers: u64,
    /// Bytes mapped by live buffers.
    pub mapped_bytes: u64,
    /// Bytes of buffers that could not be unmapped when dropped and were therefore leaked
    /// rather than freed while the device might still reach them (should stay 0).
    pub leaked_bytes: u64,
    /// How many times the valid IOVA ranges were read from the kernel (once at the first
    /// allocation, then after each group joined or left).
    pub range_reads: u64,
    /// The IOVA allocator's numbers, once it exists.
    pub iova: Option<IovaStats>,
}

/// A block of the container's IOVA space taken from its allocator, given back on drop.
///
/// For callers that map memory themselves ([`Container::map_dma_raw`]) and want IOVAs that
/// never collide with those of [`DmaBuffer`](super::DmaBuffer)s in the same container. The
/// reservation covers IOVA space only; it maps nothing.
#[derive(Debug)]
pub struct IovaReservation {
    container: Container,
    block: Option<IovaBlock>,
    start: u64,
    size: u64,
}

impl IovaReservation {
    /// The first IOVA.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The size in bytes (a multiple of the IOMMU page size).
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for IovaReservation {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            self.container.dma_state().free(block);
        }
    }
}

impl Container {
    pub(crate) fn dma_state(&self) -> &DmaState {
        &self.0.dma
    }

    /// Counters of the DMA layer: ioctls issued, live buffers and bytes, leaks, and the IOVA
    /// allocator's state.
    pub fn dma_stats(&self) -> DmaStats {
        let s = self.dma_state();
        DmaStats {
            map_ioctls: s.map_ioctls.load(Ordering::Relaxed),
            unmap_ioctls: s.unmap_ioctls.load(Ordering::Relaxed),
            buffers: s.buffers.load(Ordering::Relaxed),
            mapped_bytes: s.mapped_bytes.load(Ordering::Relaxed),
            leaked_bytes: s.leaked_bytes.load(Ordering::Relaxed),
            range_reads: s.range_reads.load(Ordering::Relaxed),
            iova: s.lock().as_ref().map(IovaAllocator::stats),
        }
    }

    /// Takes `size` bytes of IOVA space (naturally aligned, within `limit`) from the
    /// container's allocator, the one [`DmaBuffer`](super::DmaBuffer)s use.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`](crate::Error::NotSupported) unless a type1 IOMMU is set;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) with `ENOSPC` when no block
    /// fits (see [`IovaAllocator::allocate`]).
    pub fn allocate_iova(&self, size: u64, limit: AddressLimit) -> Result<IovaReservation> {
        let block = self
            .dma_state()
            .with_allocator(self, |a| a.allocate(size, limit))?;
        Ok(self.reservation(block))
    }

    /// Takes exactly `size` bytes at `start` from the container's allocator, e.g. to keep
    /// [`DmaBuffer`](super::DmaBuffer)s away from guest memory mapped at fixed IOVAs.
    ///
    /// # Errors
    ///
    /// As [`IovaAllocator::reserve`]: `EEXIST` when taken, `ERANGE` outside the valid ranges.
    pub fn reserve_iova(&self, start: u64, size: u64) -> Result<IovaReservation> {
        let block = self
            .dma_state()
            .with_allocator(self, |a| a.reserve(start, size))?;
        Ok(self.reservation(block))
    }

    /// Re-reads the valid IOVA ranges now (they are re-read automatically before the next
    /// allocation after a group joins or leaves). Returns the ranges in use.
    ///
    /// # Errors
    ///
    /// As [`Container::iommu_info`].
    pub fn refresh_iova_ranges(&self) -> Result<Vec<crate::iommu::IovaRange>> {
        self.dma_state().invalidate_ranges();
        self.dma_state()
            .with_allocator(self, |a| Ok(a.ranges().collect()))
    }

    fn reservation(&self, block: IovaBlock) -> IovaReservation {
        IovaReservation {
            container: self.clone(),
            start: block.start(),
            size: block.size(),
            block: Some(block),
        }
    }
}
