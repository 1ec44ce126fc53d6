//! A pure IOVA allocator: which I/O virtual addresses are free, and which to hand out next.
//!
//! [`IovaAllocator`] knows nothing about the kernel: it is given the valid IOVA ranges (from
//! [`IommuInfo::iova_ranges`](crate::iommu::IommuInfo::iova_ranges)) and the IOMMU page size,
//! and answers requests for blocks of IOVA space. The DMA layer ([`DmaBuffer`](super::DmaBuffer),
//! [`DmaPool`](super::DmaPool))
//! keeps one per container and re-reads the ranges whenever a group joins; it can also be used
//! on its own, e.g. by a VMM that maps guest memory with
//! [`Container::map_dma_raw`](crate::Container::map_dma_raw) and needs room for its own
//! buffers.
//!
//! # Guarantees
//!
//! - **Only valid addresses.** Every block lies inside one valid range, and never in the first
//!   IOMMU page: IOVA 0 is never handed out (a zero IOVA is too often a bug's signature).
//! - **Natural alignment.** A block of `n` bytes starts at a multiple of `n` rounded up to a
//!   power of two (and of any larger alignment asked for), so the IOMMU can back it with
//!   2 MiB or 1 GiB page-table entries when the memory allows.
//! - **Device limits.** [`AddressLimit`] caps the last address of a block: a 32-bit device, or
//!   QEMU's `edu` whose DMA addresses are 28 bits wide, the same idea as Xen's `address_bits`.
//!   The valid ranges describe the IOMMU; they know nothing of what each device can address.
//! - **Low addresses first.** The lowest suitable block is always chosen, so the space in use
//!   stays compact and far below the IOMMU's aperture (39-bit IOMMUs are common).
//! - **O(log n).** Allocation, free and reservation cost a bounded number of B-tree operations
//!   (at most 64 per call), whatever the number of live blocks.
//! - **No leaks.** A block is an owned [`IovaBlock`] that must be given back with
//!   [`IovaAllocator::free`]; the allocator refuses blocks it did not hand out, so a stale or
//!   foreign block can never free space that is in use.
//!
//! # How
//!
//! A binary buddy system over the page-aligned valid ranges: free space is kept as maximal
//! naturally aligned power-of-two blocks, one B-tree set of start addresses per block size
//! (so the lowest block of a size is the first element of its set), plus a bit mask of the
//! sizes that have any free block. A request of `n` bytes takes the lowest free block of at
//! least the next power of two, keeps the first `n` bytes (rounded to pages) and gives the
//! rest back as smaller blocks; a free splits the block into aligned pieces and merges each
//! with its free buddy. Live blocks are kept in a B-tree map by start address, which checks
//! frees and answers [`IovaAllocator::lookup`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Errno, Error, Object, Result};
use crate::iommu::{IommuInfo, IovaRange};

/// Blocks are at most 2^63 bytes (a block of 2^64 would need address 0, which is never free).
const MAX_ORDER: u32 = 63;

/// A device's DMA address limit: the highest bus address it can emit.
///
/// Many devices cannot address the whole 64-bit space: 32-bit PCI devices, devices with a
/// 36/40/48-bit DMA mask, QEMU's `edu` (28 bits by default). The IOMMU's valid ranges do not
/// know this, so allocations for such a device must say it.
///
/// # Examples
///
/// ```
/// use uvfio::dma::AddressLimit;
///
/// assert_eq!(AddressLimit::bits(28).last(), 0x0fff_ffff);
/// assert_eq!(AddressLimit::bits(0), AddressLimit::NONE); // 0 means "no limit", as in Xen
/// assert!(AddressLimit::bits(32).allows(0xffff_f000, 0x1000));
/// assert!(!AddressLimit::bits(32).allows(0xffff_f000, 0x2000));
/// ```
#[doc(alias = "address_bits")]
#[doc(alias = "dma_mask")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressLimit {
    last: u64,
}

impl AddressLimit {
    /// No limit: the device can address all 64 bits.
    pub const NONE: AddressLimit = AddressLimit { last: u64::MAX };

    /// A device that drives `bits` address lines: addresses below `2^bits`. `0` and anything
    /// from 64 up mean no limit (Xen's `address_bits` convention).
    pub const fn bits(bits: u32) -> AddressLimit {
        if bits == 0 || bits >= 64 {
            AddressLimit::NONE
        } else {
            AddressLimit {
                last: (1u64 << bits) - 1,
            }
        }
    }

    /// The limit of a DMA mask such as Linux's `dma_mask` (`0xffff_ffff` for 32 bits): the
    /// mask is the last address the device can reach.
    pub const fn from_mask(mask: u64) -> AddressLimit {
        AddressLimit { last: mask }
    }

    /// The last address the device can reach (inclusive).
    pub const fn last(self) -> u64 {
        self.last
    }

    /// Whether `len` bytes at `start` are all reachable; `false` for `len == 0` and for a span
    /// past 2^64.
    pub const fn allows(self, start: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        match start.checked_add(len - 1) {
            Some(last) => last <= self.last,
            None => false,
        }
    }

    /// The tighter of two limits.
    pub const fn min(self, other: AddressLimit) -> AddressLimit {
        if self.last <= other.last {
            self
        } else {
            other
        }
    }
}

impl Default for AddressLimit {
    fn default() -> Self {
        AddressLimit::NONE
    }
}

/// A block of IOVA space handed out by an [`IovaAllocator`].
///
/// It is owned: give it back with [`IovaAllocator::free`]. Dropping it instead leaks the
/// space (the allocator keeps it reserved), which is safe but wasteful.
#[must_use = "an IovaBlock that is dropped stays allocated; give it back with IovaAllocator::free"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IovaBlock {
    start: u64,
    size: u64,
    owner: u64,
}

impl IovaBlock {
    /// The first IOVA of the block.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The block's size in bytes (the request rounded up to the IOMMU page size).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The last IOVA of the block (inclusive).
    pub fn last(&self) -> u64 {
        // size >= 1 and start + size <= 2^64 by construction.
        self.start + (self.size - 1)
    }

    /// Whether `len` bytes at `iova` all lie in the block (`false` for `len == 0`).
    pub fn contains(&self, iova: u64, len: u64) -> bool {
        len != 0
            && iova >= self.start
            && iova
                .checked_add(len - 1)
                .is_some_and(|last| last <= self.last())
    }
}

/// The allocator's bookkeeping, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IovaStats {
    /// Bytes of valid IOVA space that are free.
    pub free_bytes: u128,
    /// Bytes handed out (live blocks).
    pub allocated_bytes: u128,
    /// Number of live blocks.
    pub allocations: usize,
    /// Number of free buddy blocks (a measure of fragmentation).
    pub free_blocks: usize,
}

/// A buddy allocator of IOVA space; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use uvfio::dma::{AddressLimit, IovaAllocator};
/// use uvfio::iommu::IovaRange;
///
/// // x86: everything below the MSI window, and above it up to 39 bits.
/// let ranges = [
///     IovaRange { start: 0, end: 0xfedf_ffff },
///     IovaRange { start: 0xfef0_0000, end: (1 << 39) - 1 },
/// ];
/// let mut iova = IovaAllocator::new(&ranges, 4096)?;
/// let a = iova.allocate(4096, AddressLimit::NONE)?;
/// assert_eq!(a.start(), 0x1000); // never 0
/// let b = iova.allocate(2 << 20, AddressLimit::bits(28))?;
/// assert_eq!(b.start() % (2 << 20), 0); // naturally aligned
/// assert_eq!(iova.lookup(b.start() + 5), Some((b.start(), b.size())));
/// iova.free(a)?;
/// iova.free(b)?;
/// assert_eq!(iova.stats().allocations, 0);
/// # Ok::<(), uvfio::Error>(())
/// ```
pub struct IovaAllocator {
    id: u64,
    page_shift: u32,
    /// The valid ranges, page-trimmed, sorted, disjoint, as `[start, end)` in u128.
    ranges: Vec<(u128, u128)>,
    /// `free[order]`: start addresses of the free blocks of 2^order bytes.
    free: Vec<BTreeSet<u64>>,
    /// Bit `order` is set when `free[order]` is not empty.
    nonempty: u64,
    /// Live blocks: start -> size.
    live: BTreeMap<u64, u64>,
    free_bytes: u128,
    live_bytes: u128,
}

impl fmt::Debug for IovaAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IovaAllocator")
            .field("page_size", &(1u64 << self.page_shift))
            .field("ranges", &self.ranges().collect::<Vec<_>>())
            .field("stats", &self.stats())
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn err(op: &'static str, errno: Errno, reason: String) -> Error {
    Error::InvalidArgument {
        op,
        object: Object::IovaAllocator.into(),
        reason: reason.into(),
        errno,
    }
}

/// The smallest order `o` with `2^o >= x` (x >= 1).
fn ceil_log2(x: u64) -> u32 {
    64 - (x - 1).leading_zeros()
}

/// Splits `[a, e)` (page aligned) into maximal naturally aligned power-of-two blocks.
fn for_each_block(mut a: u128, e: u128, mut f: impl FnMut(u64, u32)) {
    while a < e {
        let align = if a == 0 {
            MAX_ORDER
        } else {
            a.trailing_zeros().min(MAX_ORDER)
        };
        let fit = 127 - (e - a).leading_zeros();
        let order = align.min(fit);
        // a < e <= 2^64, so a fits in u64.
        #[allow(clippy::cast_possible_truncation)]
        f(a as u64, order);
        a += 1u128 << order;
    }
}

impl IovaAllocator {
    /// An allocator over `ranges` (inclusive ends, as the kernel reports them) with IOMMU pages
    /// of `page_size` bytes. The ranges are trimmed to whole pages, the first page is removed,
    /// and overlapping or adjacent ranges are merged.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EINVAL`) when `page_size` is not a power of two.
    pub fn new(ranges: &[IovaRange], page_size: u64) -> Result<IovaAllocator> {
        if !page_size.is_power_of_two() {
            return Err(err(
                "IovaAllocator::new",
                Errno::EINVAL,
                format!("the page size {page_size:#x} is not a power of two"),
            ));
        }
        let mut alloc = IovaAllocator {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            page_shift: page_size.trailing_zeros(),
            ranges: Vec::new(),
            free: (0..=MAX_ORDER).map(|_| BTreeSet::new()).collect(),
            nonempty: 0,
            live: BTreeMap::new(),
            free_bytes: 0,
            live_bytes: 0,
        };
        alloc.set_ranges(ranges);
        Ok(alloc)
    }

    /// An allocator for a type1 IOMMU as described by `VFIO_IOMMU_GET_INFO`: its valid ranges
    /// (the whole 64-bit space on kernels older than 5.4, which do not report them) and its
    /// smallest page size (4 KiB when not reported).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the reported page sizes make no sense.
    pub fn from_iommu_info(info: &IommuInfo) -> Result<IovaAllocator> {
        let page = info.min_page_size().unwrap_or(4096);
        match info.iova_ranges() {
            Some(ranges) => Self::new(ranges, page),
            None => Self::new(
                &[IovaRange {
                    start: 0,
                    end: u64::MAX,
                }],
                page,
            ),
        }
    }

    /// The IOMMU page size: every block is a multiple of it.
    pub fn page_size(&self) -> u64 {
        1u64 << self.page_shift
    }

    /// The valid ranges in use, page-trimmed and merged, without the first page (inclusive ends).
    pub fn ranges(&self) -> impl Iterator<Item = IovaRange> + '_ {
        // Range bounds are at most 2^64 (ends exclusive), so start and end - 1 fit in u64.
        #[allow(clippy::cast_possible_truncation)]
        self.ranges.iter().map(|&(s, e)| IovaRange {
            start: s as u64,
            end: (e - 1) as u64,
        })
    }

    /// Free and allocated bytes and block counts.
    pub fn stats(&self) -> IovaStats {
        IovaStats {
            free_bytes: self.free_bytes,
            allocated_bytes: self.live_bytes,
            allocations: self.live.len(),
            free_blocks: self.free.iter().map(BTreeSet::len).sum(),
        }
    }

    /// Replaces the valid ranges (after a group joined the container, the kernel may report
    /// fewer). Live blocks stay allocated even where they fall outside the new ranges (the
    /// kernel refuses a group whose reserved regions collide with existing mappings); when
    /// freed, only their parts inside the ranges become free again.
    pub fn set_ranges(&mut self, ranges: &[IovaRange]) {
        let page = 1u128 << self.page_shift;
        let mut trimmed: Vec<(u128, u128)> = ranges
            .iter()
            .filter_map(|r| {
                let start = u128::from(r.start).max(page).div_ceil(page) * page;
                let end = (u128::from(r.end) + 1) / page * page;
                (start < end).then_some((start, end))
            })
            .collect();
        trimmed.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(trimmed.len());
        for (s, e) in trimmed {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.ranges = merged;

        for set in &mut self.free {
            set.clear();
        }
        self.nonempty = 0;
        self.free_bytes = 0;
        let ranges = std::mem::take(&mut self.ranges);
        let live: Vec<(u128, u128)> = self
            .live
            .iter()
            .map(|(&a, &n)| (u128::from(a), u128::from(a) + u128::from(n)))
            .collect();
        let mut first = 0;
        for &(s, e) in &ranges {
            while first < live.len() && live[first].1 <= s {
                first += 1;
            }
            let mut cursor = s;
            for &(ls, le) in live[first..].iter().take_while(|&&(ls, _)| ls < e) {
                if ls > cursor {
                    self.insert_span(cursor, ls);
                }
                cursor = cursor.max(le);
            }
            if cursor < e {
                self.insert_span(cursor, e);
            }
        }
        self.ranges = ranges;
    }

    /// Takes `size` bytes (rounded up to pages) aligned to their size rounded up to a power of
    /// two, with every address within `limit`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`]: `EINVAL` for a zero size, `ENOSPC` when no suitable block
    /// is free (the message says whether the limit was the reason).
    pub fn allocate(&mut self, size: u64, limit: AddressLimit) -> Result<IovaBlock> {
        self.allocate_aligned(size, 0, limit)
    }

    /// As [`IovaAllocator::allocate`], aligned to at least `align` bytes (a power of two, or 0
    /// for the natural alignment alone).
    ///
    /// # Errors
    ///
    /// As [`IovaAllocator::allocate`]; `EINVAL` when `align` is not a power of two.
    pub fn allocate_aligned(
        &mut self,
        size: u64,
        align: u64,
        limit: AddressLimit,
    ) -> Result<IovaBlock> {
        const OP: &str = "allocate IOVA";
        if size == 0 {
            return Err(err(OP, Errno::EINVAL, "the size is 0".into()));
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(err(
                OP,
                Errno::EINVAL,
                format!("the alignment {align:#x} is not a power of two"),
            ));
        }
        let page = 1u64 << self.page_shift;
        let Some(size) = size.checked_next_multiple_of(page) else {
            return Err(self.no_space(OP, size, limit, false));
        };
        let order = ceil_log2(size).max(self.page_shift).max(if align == 0 {
            0
        } else {
            align.trailing_zeros()
        });
        if order > MAX_ORDER {
            return Err(self.no_space(OP, size, limit, false));
        }
        let mut best: Option<(u64, u32)> = None;
        let mut mask = self.nonempty & (u64::MAX << order);
        while mask != 0 {
            let o = mask.trailing_zeros();
            mask &= mask - 1;
            if let Some(&a) = self.free[o as usize].first() {
                if best.is_none_or(|(b, _)| a < b) {
                    best = Some((a, o));
                }
            }
        }
        let Some((start, o)) = best else {
            return Err(self.no_space(OP, size, limit, false));
        };
        if !limit.allows(start, size) {
            return Err(self.no_space(OP, size, limit, true));
        }
        self.take(o, start);
        self.free_bytes -= 1u128 << o;
        let end = u128::from(start) + (1u128 << o);
        self.insert_span(u128::from(start) + u128::from(size), end);
        Ok(self.record(start, size))
    }

    /// Takes exactly `size` bytes at `start` (both multiples of the page size), for mappings at
    /// a fixed IOVA.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`]: `EINVAL` for a zero or unaligned size or start, `EOVERFLOW`
    /// for a span past 2^64, `EEXIST` when part of it is allocated, `ERANGE` when part of it
    /// is outside the valid ranges (or in the first page).
    pub fn reserve(&mut self, start: u64, size: u64) -> Result<IovaBlock> {
        const OP: &str = "reserve IOVA";
        let page = 1u64 << self.page_shift;
        if size == 0 || start % page != 0 || size % page != 0 {
            return Err(err(
                OP,
                Errno::EINVAL,
                format!(
                    "{size:#x} bytes at {start:#x}: start and size must be non-zero multiples \
                     of the IOMMU page size {page:#x}"
                ),
            ));
        }
        let end = u128::from(start) + u128::from(size);
        if end > 1u128 << 64 {
            return Err(err(
                OP,
                Errno::EOVERFLOW,
                format!("{size:#x} bytes at {start:#x} run past the end of the address space"),
            ));
        }
        let mut pieces = Vec::new();
        for_each_block(u128::from(start), end, |a, q| pieces.push((a, q)));
        for &(a, q) in &pieces {
            if self.containing_free_block(a, q).is_none() {
                let last = start + (size - 1);
                if let Some((ls, lsize)) = self.first_live_overlap(start, last) {
                    return Err(err(
                        OP,
                        Errno::EEXIST,
                        format!(
                            "{size:#x} bytes at {start:#x} overlap the allocated block of \
                             {lsize:#x} bytes at {ls:#x}"
                        ),
                    ));
                }
                return Err(err(
                    OP,
                    Errno::ERANGE,
                    format!(
                        "{size:#x} bytes at {start:#x} are not all inside the valid IOVA ranges \
                         {:x?} (the first page is never used)",
                        self.ranges().collect::<Vec<_>>()
                    ),
                ));
            }
        }
        for (a, q) in pieces {
            // Checked above; the carving of earlier pieces leaves later ones inside free blocks.
            if let Some((b, o)) = self.containing_free_block(a, q) {
                self.take(o, b);
                self.free_bytes -= 1u128 << o;
                let (b, a) = (u128::from(b), u128::from(a));
                self.insert_span(b, a);
                self.insert_span(a + (1u128 << q), b + (1u128 << o));
            }
        }
        Ok(self.record(start, size))
    }

    /// Gives a block back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EINVAL`) when the block comes from another allocator; the
    /// block is then dropped and nothing changes here.
    pub fn free(&mut self, block: IovaBlock) -> Result<()> {
        if block.owner != self.id || self.live.get(&block.start) != Some(&block.size) {
            return Err(err(
                "free IOVA",
                Errno::EINVAL,
                format!(
                    "the block of {:#x} bytes at {:#x} was not handed out by this allocator",
                    block.size, block.start
                ),
            ));
        }
        self.live.remove(&block.start);
        self.live_bytes -= u128::from(block.size);
        let (s, e) = (
            u128::from(block.start),
            u128::from(block.start) + u128::from(block.size),
        );
        // Only what is inside the current ranges becomes free.
        let first = self.ranges.partition_point(|&(_, re)| re <= s);
        for i in first..self.ranges.len() {
            let (rs, re) = self.ranges[i];
            if rs >= e {
                break;
            }
            self.insert_span(rs.max(s), re.min(e));
        }
        Ok(())
    }

    /// The live block containing `iova`, as `(start, size)`.
    pub fn lookup(&self, iova: u64) -> Option<(u64, u64)> {
        self.live
            .range(..=iova)
            .next_back()
            .filter(|&(&s, &n)| iova - s < n)
            .map(|(&s, &n)| (s, n))
    }

    /// Whether all of `size` bytes at `start` are free and valid (`false` for `size == 0`).
    pub fn is_free(&self, start: u64, size: u64) -> bool {
        let page = 1u64 << self.page_shift;
        if size == 0 {
            return false;
        }
        let s = u128::from(start) / u128::from(page) * u128::from(page);
        let e =
            (u128::from(start) + u128::from(size)).div_ceil(u128::from(page)) * u128::from(page);
        if e > 1u128 << 64 {
            return false;
        }
        let mut ok = true;
        for_each_block(s, e, |a, q| {
            ok &= self.containing_free_block(a, q).is_some()
        });
        ok
    }

    fn record(&mut self, start: u64, size: u64) -> IovaBlock {
        self.live.insert(start, size);
        self.live_bytes += u128::from(size);
        IovaBlock {
            start,
            size,
            owner: self.id,
        }
    }

    fn no_space(&self, op: &'static str, size: u64, limit: AddressLimit, by_limit: bool) -> Error {
        let why = if by_limit {
            format!(
                "no free block of {size:#x} bytes ends at or below the device's address limit \
                 {:#x}",
                limit.last()
            )
        } else {
            format!(
                "no free block of {size:#x} bytes (naturally aligned) is left in the valid IOVA \
                 ranges ({} bytes free)",
                self.free_bytes
            )
        };
        err(op, Errno::ENOSPC, why)
    }

    /// The free block (start, order) that contains the aligned block `a` of order `q`.
    fn containing_free_block(&self, a: u64, q: u32) -> Option<(u64, u32)> {
        (q..=MAX_ORDER).find_map(|o| {
            let b = a & !((1u64 << o) - 1);
            self.free[o as usize].contains(&b).then_some((b, o))
        })
    }

    /// The first live block overlapping `[start, last]`.
    fn first_live_overlap(&self, start: u64, last: u64) -> Option<(u64, u64)> {
        if let Some(hit) = self.lookup(start) {
            return Some(hit);
        }
        self.live.range(start..=last).next().map(|(&s, &n)| (s, n))
    }

    /// Removes block `addr` of `order` from its free set, if present.
    fn take(&mut self, order: u32, addr: u64) -> bool {
        let set = &mut self.free[order as usize];
        let removed = set.remove(&addr);
        if removed && set.is_empty() {
            self.nonempty &= !(1u64 << order);
        }
        removed
    }

    /// Frees `[s, e)` (page aligned): splits it into blocks and merges each with its buddies.
    fn insert_span(&mut self, s: u128, e: u128) {
        if s >= e {
            return;
        }
        self.free_bytes += e - s;
        for_each_block(s, e, |a, q| self.insert_block(a, q));
    }

    fn insert_block(&mut self, mut addr: u64, mut order: u32) {
        while order < MAX_ORDER {
            let buddy = addr ^ (1u64 << order);
            if !self.take(order, buddy) {
                break;
            }
            addr &= !(1u64 << order);
            order += 1;
        }
        self.free[order as usize].insert(addr);
        self.nonempty |= 1u64 << order;
    }
}

#[cfg(test)]
mod tests;
