//! [`DmaPool`]: many small DMA buffers (packet buffers, descriptor rings) carved out of one
//! mapping, so that taking and returning one makes no system call at all.
//!
//! The pool is one [`DmaBuffer`] cut into equal chunks, plus a [`SlotAllocator`] (a lock-free
//! LIFO stack of free chunk numbers: the most recently freed chunk, still warm in the cache,
//! is handed out next). A [`PoolBuffer`] owns one chunk and gives it back when dropped;
//! it keeps the pool (and thus the mapping) alive. Chunks are disjoint and each is owned by at
//! most one `PoolBuffer`, so the [`DmaMemory`] rules hold per chunk exactly as for a whole
//! buffer. The pool itself offers no access to chunk memory.

use std::fmt;
use std::sync::Arc;

use super::access::{sealed, DmaMemory};
use super::buffer::DmaBuffer;
use super::slots::SlotAllocator;
use super::DmaOptions;
use crate::error::{Error, Result};
use crate::iommu::DmaAccess;
use crate::iommu::DmaSpace;

struct PoolInner {
    buffer: DmaBuffer,
    chunk: usize,
    stride: usize,
    slots: SlotAllocator,
}

/// A pool of equal DMA buffers carved out of one mapping, so that taking and returning one
/// makes no system call.
///
/// The pool is one [`DmaBuffer`] cut into equal chunks plus a [`SlotAllocator`]: a lock-free
/// LIFO stack of free chunk numbers (the most recently freed chunk, still warm in the cache, is
/// handed out next; taking and returning one never blocks). Chunks are disjoint and each is owned by at most one [`PoolBuffer`], so
/// the [`DmaMemory`] rules hold per chunk as for a whole buffer; the pool itself gives no
/// access to chunk memory.
///
/// Creating the pool maps its memory with one ioctl; after that, [`DmaPool::alloc`] and
/// dropping a [`PoolBuffer`] make no system call. The pool is a cheap handle (an `Arc`):
/// clones share the chunks, and the memory is unmapped and freed when the pool handles and
/// every `PoolBuffer` are gone.
///
/// Like a [`DmaBuffer`], the pool loses its mapping when a container's last group leaves
/// (the kernel drops every mapping with the IOMMU context) or on
/// [`Container::unmap_all_dma`](crate::Container::unmap_all_dma) or
/// [`Ioas::unmap_all`](crate::iommufd::Ioas::unmap_all), and a group joining again does not bring it back:
/// [`DmaPool::is_mapped`] is then `false`, and [`DmaMemory::iova_at`] on its buffers fails
/// with [`Error::NotMapped`] (see [`DmaBuffer`'s
/// docs](DmaBuffer#when-the-mapping-goes-away-under-the-buffer)).
///
/// # Examples
///
/// ```no_run
/// use uvfio::dma::{DmaMemory, DmaOptions, DmaPool};
///
/// # let container = uvfio::Container::new()?;
/// // 4096 packet buffers of 2 KiB, for a NIC that can only reach 32-bit addresses.
/// let pool = DmaPool::new(&container, 2048, 4096, DmaOptions::new().address_bits(32))?;
/// let mut packet = pool.alloc().expect("a free buffer");
/// packet.write_slice(0, &[0xffu8; 6])?; // broadcast destination
/// let iova = packet.iova(); // into the TX descriptor
/// assert_eq!(pool.index_of_iova(iova + 100), Some(packet.index()));
/// drop(packet); // back to the pool, no ioctl
/// # Ok::<(), uvfio::Error>(())
/// ```
#[derive(Clone)]
pub struct DmaPool(Arc<PoolInner>);

impl fmt::Debug for DmaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaPool")
            .field("iova", &format_args!("{:#x}", self.0.buffer.iova()))
            .field("chunk", &self.0.chunk)
            .field("stride", &self.0.stride)
            .field("slots", &self.0.slots)
            .finish()
    }
}

impl DmaPool {
    /// `count` buffers of `chunk_size` bytes in one mapping made as `options` say.
    ///
    /// Chunks start at multiples of `options`' alignment when one is set, else of
    /// `chunk_size` rounded up to a power of two (at least 64 bytes, at most 4 KiB), so each
    /// chunk's IOVA is aligned the same way: 2 KiB packet buffers sit on 2 KiB boundaries.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero chunk size or count, more than 2^32 chunks, or a
    /// total size past the address space; otherwise as [`DmaBuffer::with_options`].
    pub fn new(
        space: impl Into<DmaSpace>,
        chunk_size: usize,
        count: usize,
        options: DmaOptions,
    ) -> Result<DmaPool> {
        const OP: &str = "DmaPool::new";
        let space = space.into();
        let bad = |reason: String| Error::invalid(OP, space.object(), reason);
        if chunk_size == 0 || count == 0 {
            return Err(bad(format!(
                "{count} chunks of {chunk_size} bytes: both must be non-zero"
            )));
        }
        let slots = u32::try_from(count)
            .map_err(|_| bad(format!("{count} chunks: at most 2^32 - 1 are supported")))?;
        let align = match options.align {
            0 => chunk_size.next_power_of_two().clamp(64, 4096),
            a => usize::try_from(a)
                .ok()
                .filter(|a| a.is_power_of_two())
                .ok_or_else(|| bad(format!("the alignment {a:#x} is not a power of two")))?
                .max(64),
        };
        let stride = chunk_size
            .checked_next_multiple_of(align)
            .ok_or_else(|| bad(format!("chunks of {chunk_size} bytes are too large")))?;
        let total = stride
            .checked_mul(count)
            .ok_or_else(|| bad(format!("{count} chunks of {stride} bytes overflow")))?;
        let buffer = DmaBuffer::with_options(&space, total, options)?;
        Ok(DmaPool(Arc::new(PoolInner {
            buffer,
            chunk: chunk_size,
            stride,
            slots: SlotAllocator::new(slots),
        })))
    }

    /// Takes a free buffer, or `None` when all are in use. No system call. The contents are
    /// whatever the previous user (or device) left; see [`DmaPool::alloc_zeroed`].
    #[inline]
    pub fn alloc(&self) -> Option<PoolBuffer> {
        let slot = self.0.slots.acquire()?;
        Some(PoolBuffer {
            pool: self.0.clone(),
            index: slot.index,
        })
    }

    /// As [`DmaPool::alloc`], with the buffer's bytes set to zero.
    pub fn alloc_zeroed(&self) -> Option<PoolBuffer> {
        let mut buf = self.alloc()?;
        let len = buf.len();
        // Cannot fail: the whole chunk is in bounds.
        let _ = buf.fill(0, len, 0);
        Some(buf)
    }

    /// The size of each buffer, as asked for.
    pub fn chunk_size(&self) -> usize {
        self.0.chunk
    }

    /// The distance between two buffers (the chunk size rounded up to the alignment).
    pub fn stride(&self) -> usize {
        self.0.stride
    }

    /// The number of buffers.
    pub fn capacity(&self) -> usize {
        self.0.slots.capacity()
    }

    /// The number of free buffers.
    pub fn available(&self) -> usize {
        self.0.slots.available()
    }

    /// The IOVA of the pool's mapping (buffer 0).
    pub fn iova(&self) -> u64 {
        self.0.buffer.iova()
    }

    /// The number of the buffer whose bytes include `iova` (e.g. an address a device reported
    /// in a completion), if any.
    pub fn index_of_iova(&self, iova: u64) -> Option<usize> {
        let offset = usize::try_from(iova.checked_sub(self.iova())?).ok()?;
        let index = offset / self.0.stride;
        (index < self.capacity() && offset % self.0.stride < self.0.chunk).then_some(index)
    }

    /// The container or IOAS the pool is mapped in.
    pub fn space(&self) -> &DmaSpace {
        self.0.buffer.space()
    }

    /// Whether the pool's IOMMU mapping still exists: as [`DmaBuffer::is_mapped`].
    pub fn is_mapped(&self) -> bool {
        self.0.buffer.is_mapped()
    }
}

/// One buffer of a [`DmaPool`], returned to the pool when dropped (no system call).
///
/// Access its bytes through [`DmaMemory`]. It keeps the pool's mapping alive.
pub struct PoolBuffer {
    pool: Arc<PoolInner>,
    index: u32,
}

impl fmt::Debug for PoolBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuffer")
            .field("index", &self.index)
            .field("iova", &format_args!("{:#x}", self.iova()))
            .field("len", &self.pool.chunk)
            .finish()
    }
}

impl PoolBuffer {
    /// The buffer's number in its pool.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// The pool the buffer belongs to.
    pub fn pool(&self) -> DmaPool {
        DmaPool(self.pool.clone())
    }
}

impl sealed::Sealed for PoolBuffer {
    #[inline]
    fn base(&self) -> *mut u8 {
        // In bounds: index < capacity, so the chunk lies inside the pool's buffer; aligned to
        // 64 bytes because the buffer is page aligned and the stride a multiple of 64.
        self.pool
            .buffer
            .base()
            .wrapping_add(self.index as usize * self.pool.stride)
    }

    #[inline]
    fn check_mapped(&self, op: &'static str) -> Result<()> {
        self.pool.buffer.check_mapped(op).map_err(|e| match e {
            Error::NotMapped {
                op, object, errno, ..
            } => Error::NotMapped {
                op,
                object,
                iova: self.iova(),
                len: self.len(),
                errno,
            },
            other => other,
        })
    }
}

impl DmaMemory for PoolBuffer {
    #[inline]
    fn len(&self) -> usize {
        self.pool.chunk
    }

    #[inline]
    fn iova(&self) -> u64 {
        self.pool.buffer.iova() + (self.index as usize * self.pool.stride) as u64
    }

    fn access(&self) -> DmaAccess {
        self.pool.buffer.access()
    }
}

impl Drop for PoolBuffer {
    #[inline]
    fn drop(&mut self) {
        self.pool.slots.release_index(self.index);
    }
}
