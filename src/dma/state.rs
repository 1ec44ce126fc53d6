//! The DMA state each DMA space (a container or an IOAS) carries: its IOVA allocator, re-read
//! when devices come and go, and counters of what the DMA layer did.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::iova::{IovaAllocator, IovaBlock, IovaStats};
use crate::error::Result;

/// Per-space DMA state, owned by the container (`ContainerInner::dma`) or the IOAS
/// (`IoasInner::dma`).
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
    /// The mapping epoch: bumped each time every mapping of the space is gone at once
    /// (the last group left a container and the kernel dropped the IOMMU context, or
    /// `Container::unmap_all_dma` / `Ioas::unmap_all` succeeded). A buffer remembers the epoch it was mapped in;
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

    /// Runs `f` on the space's allocator, creating it (or re-reading its ranges) with `fresh`
    /// first when needed.
    pub(crate) fn with_allocator<R>(
        &self,
        fresh: impl FnOnce() -> Result<IovaAllocator>,
        f: impl FnOnce(&mut IovaAllocator) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock();
        let stale = self.stale.swap(false, Ordering::AcqRel);
        if stale || guard.is_none() {
            self.range_reads.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = fresh().map(|fresh| refresh(fresh, &mut guard)) {
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
                crate::Object::IovaAllocator,
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

/// Puts the freshly read allocator in `slot`, or its ranges into the allocator there (keeping
/// live blocks).
fn refresh(fresh: IovaAllocator, slot: &mut Option<IovaAllocator>) {
    match slot {
        // The page size of a container's IOMMU does not change; only the ranges do. Live
        // blocks stay allocated.
        Some(a) => {
            let ranges: Vec<_> = fresh.ranges().collect();
            a.set_ranges(&ranges);
        }
        None => *slot = Some(fresh),
    }
}

/// What the DMA layer of a [`DmaSpace`](crate::DmaSpace) (a container or an IOAS) has done,
/// for diagnostics and leak tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DmaStats {
    /// Map ioctls issued (`VFIO_IOMMU_MAP_DMA` or `IOMMU_IOAS_MAP`; raw maps included).
    pub map_ioctls: u64,
    /// Unmap ioctls issued (`VFIO_IOMMU_UNMAP_DMA` or `IOMMU_IOAS_UNMAP`, including those of
    /// dropped buffers).
    pub unmap_ioctls: u64,
    /// Live [`DmaBuffer`](super::DmaBuffer)s (a [`DmaPool`](super::DmaPool) holds one).
    pub buffers: u64,
    /// Bytes mapped by live buffers.
    pub mapped_bytes: u64,
    /// Bytes of buffers that could not be unmapped when dropped and were therefore leaked
    /// rather than freed while the device might still reach them (should stay 0).
    pub leaked_bytes: u64,
    /// How many times the valid IOVA ranges were read from the kernel (once at the first
    /// allocation, then after each group joined or left a container, or a device attached to or
    /// detached from an IOAS).
    pub range_reads: u64,
    /// The IOVA allocator's numbers, once it exists.
    pub iova: Option<IovaStats>,
}

impl DmaState {
    /// The counters and the allocator's numbers.
    pub(crate) fn stats(&self) -> DmaStats {
        DmaStats {
            map_ioctls: self.map_ioctls.load(Ordering::Relaxed),
            unmap_ioctls: self.unmap_ioctls.load(Ordering::Relaxed),
            buffers: self.buffers.load(Ordering::Relaxed),
            mapped_bytes: self.mapped_bytes.load(Ordering::Relaxed),
            leaked_bytes: self.leaked_bytes.load(Ordering::Relaxed),
            range_reads: self.range_reads.load(Ordering::Relaxed),
            iova: self.lock().as_ref().map(IovaAllocator::stats),
        }
    }
}
