//! DMA memory that the type system keeps safe: IOVA allocation, buffers the device can reach,
//! pools of small buffers.
//!
//! | type | what it is |
//! |---|---|
//! | [`DmaBuffer`] | page-aligned memory (4 KiB, 2 MiB or 1 GiB pages) mapped at an IOVA for as long as it lives; unmapped before it is freed |
//! | [`DmaPool`] / [`PoolBuffer`] | one mapping cut into equal buffers; taking and returning one makes no system call |
//! | [`DmaMemory`] | the CPU-side accesses that stay sound while a device reads and writes: volatile reads and writes, copies, typed values of plain data (zerocopy's [`FromBytes`](zerocopy::FromBytes)/[`IntoBytes`](zerocopy::IntoBytes)), atomics; IOVA translation with range checks |
//! | `#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]` | the plain `#[repr(C)]` data that may travel through DMA memory, checked at compile time by [`zerocopy`] (see below) |
//! | [`IovaAllocator`] | the pure IOVA allocator each container uses: valid ranges, never 0, naturally aligned, per-device address limits, O(log n) |
//! | [`AddressLimit`] | a device's DMA address width (32-bit devices, QEMU's 28-bit `edu`) |
//! | [`SlotAllocator`] | the pool's free list (lock-free, no system call), usable on its own |
//!
//! Every type here works the same on each IOMMU backend: it takes any [`DmaSpace`] (a legacy
//! or compat container with a type1 model, or an iommufd IOAS; `&Container` and `&Ioas` convert).
//!
//! The raw tier, for memory the caller owns otherwise (a VMM's guest RAM), is
//! [`Container::map_dma_raw`](crate::Container::map_dma_raw) or
//! [`Ioas::map_raw`](crate::iommufd::Ioas::map_raw), `unsafe fn`s.
//!
//! # Descriptors and other typed values
//!
//! [`DmaMemory::read`] and [`DmaMemory::write`] copy whole values in and out. A type qualifies
//! when zerocopy's derives prove it plain data: reads need [`FromBytes`](zerocopy::FromBytes)
//! (a device may write any bytes, and every bit pattern must be a value: no references,
//! `bool`, `char` or enums), writes [`IntoBytes`](zerocopy::IntoBytes) +
//! [`Immutable`](zerocopy::Immutable) (no padding). Add `zerocopy = { version = "0.8",
//! features = ["derive"] }` to your `Cargo.toml` (uvfio re-exports the version it uses as
//! [`uvfio::zerocopy`](crate::zerocopy)); the derives need no `unsafe`:
//!
//! ```
//! #![forbid(unsafe_code)]
//! use uvfio::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//! use uvfio::DmaMemory;
//!
//! /// A receive descriptor of an e1000 NIC.
//! #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
//! #[repr(C)]
//! struct RxDesc {
//!     addr: u64,
//!     length: u16,
//!     csum: u16,
//!     status: u8,
//!     errors: u8,
//!     special: u16,
//! }
//!
//! fn arm(ring: &mut impl DmaMemory, slot: usize, buffer_iova: u64) -> uvfio::Result<RxDesc> {
//!     let at = slot * size_of::<RxDesc>();
//!     ring.write(at, RxDesc { addr: buffer_iova, ..RxDesc::default() })?;
//!     ring.read::<RxDesc>(at)
//! }
//! ```
//!
//! # Why this is safe
//!
//! - **No use after free by the device.** A buffer's IOVA mapping lives exactly as long as the
//!   buffer: `Drop` unmaps first and frees the memory only once the unmap succeeded. If it
//!   cannot be unmapped, the memory is leaked ([`DmaStats::leaked_bytes`]), never freed.
//! - **No aliasing UB.** A device writes the memory whenever it likes, so no `&[u8]` or
//!   `&mut T` to it is ever created; [`DmaMemory`] accesses it with volatile and atomic
//!   operations, writes need `&mut self`, and only the `unsafe` escape hatches
//!   ([`DmaMemory::as_slice`]) give slices, with the conditions spelled out.
//! - **No IOVA leaks or reuse.** Every failure path gives back what it took, in reverse order:
//!   a failed map returns the IOVA to the allocator and frees the memory. IOVA blocks are
//!   owned values that can only be freed once, to the allocator that made them.
//!
//! # When the container loses its mappings
//!
//! Mappings live in the container's IOMMU context, and the kernel drops that context with
//! **every** mapping when the container's last group leaves (its last [`Group`](crate::Group)
//! handle and devices dropped, or [`Group::unset_container`](crate::Group::unset_container)).
//! A group joining again and [`Container::set_iommu`](crate::Container::set_iommu) start an
//! empty context: old buffers and pools are **not** mapped again (iommufd's compat container
//! keeps its mappings instead, until it is closed). Their memory stays valid for
//! the CPU (nothing unsafe happens), but a device would fault at their IOVAs. The crate
//! tracks this with a per-container mapping epoch (also bumped by
//! [`Container::unmap_all_dma`](crate::Container::unmap_all_dma)):
//! [`DmaBuffer::is_mapped`] and [`DmaPool::is_mapped`] turn `false`, and
//! [`DmaMemory::iova_at`] fails with [`Error::NotMapped`](crate::Error::NotMapped) (the check
//! is one relaxed atomic load). Keep a group in the container while its buffers are in use,
//! or drop them and allocate new ones after the group is back.
//!
//! On an IOAS the mappings last as long as the IOAS, which every buffer keeps alive; only
//! [`Ioas::unmap_all`](crate::iommufd::Ioas::unmap_all) takes them all away (and is tracked
//! the same way).
//!
//! # IOVA space
//!
//! Each container and each IOAS has one allocator. Its valid ranges come from
//! `VFIO_IOMMU_GET_INFO` or `IOMMU_IOAS_IOVA_RANGES` and are read again before the first
//! allocation after a group joins or leaves the container, or a device attaches to or detaches
//! from the IOAS (reserved regions, such as the x86 MSI window or an Arm doorbell, cut holes in
//! them). Blocks are taken lowest first, so the space in use stays compact and low. For a
//! device that cannot address 64 bits, set [`DmaOptions::address_bits`]: the IOMMU's ranges
//! know nothing of the device's DMA mask.
//!
//! # Limits
//!
//! On a type1 container every mapping uses one entry of the container's budget, `vfio_iommu_type1.dma_entry_limit`
//! (65535 by default): past it `VFIO_IOMMU_MAP_DMA` fails with `ENOSPC`, reported as an
//! [`Error::Ioctl`](crate::Error::Ioctl) whose message says so. Prefer few large buffers and
//! pools to many small buffers. Pinned memory counts against `RLIMIT_MEMLOCK`.
//!
//! Buffers need a type1 IOMMU; on POWER, use the raw calls of [`crate::iommu::spapr`].

mod access;
mod buffer;
pub mod iova;
pub(crate) mod memory;
mod phys;
mod pod;
mod pool;
mod slots;
mod state;

pub use access::{DmaAtomic, DmaMemory};
pub use buffer::DmaBuffer;
pub use iova::{AddressLimit, IovaAllocator, IovaBlock, IovaStats};
pub use pool::{DmaPool, PoolBuffer};
pub use slots::{Slot, SlotAllocator};
pub(crate) use state::DmaState;
pub use state::DmaStats;

pub use crate::iommu::{DmaSpace, IovaReservation};

pub use crate::iommu::DmaAccess;

/// The size of the pages backing DMA memory.
///
/// Huge pages cut the number of IOMMU page-table entries and TLB misses (a 2 MiB-aligned IOVA
/// lets the IOMMU map 2 MiB at once). They must be reserved by the administrator
/// (`vm.nr_hugepages`, or `hugepages=` on the kernel command line; 1 GiB pages usually at
/// boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PageSize {
    /// The system's base page size (4 KiB on x86).
    #[default]
    Base,
    /// 2 MiB huge pages (`MAP_HUGETLB | MAP_HUGE_2MB`).
    Huge2M,
    /// 1 GiB huge pages (`MAP_HUGETLB | MAP_HUGE_1GB`).
    Huge1G,
}

impl PageSize {
    /// The page size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            PageSize::Base => memory::base_page_size(),
            PageSize::Huge2M => 2 << 20,
            PageSize::Huge1G => 1 << 30,
        }
    }
}

/// How to allocate and map a [`DmaBuffer`] or [`DmaPool`]: page size, device access, address
/// limit, alignment, fixed IOVA. Built with chained calls from [`DmaOptions::new`].
///
/// # Examples
///
/// ```
/// use uvfio::dma::{DmaAccess, DmaOptions, PageSize};
///
/// let options = DmaOptions::new()
///     .page_size(PageSize::Huge2M)
///     .huge_page_fallback(true)
///     .access(DmaAccess::ReadOnly)
///     .address_bits(32);
/// assert_eq!(options.get_access(), DmaAccess::ReadOnly);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DmaOptions {
    pub(crate) page_size: PageSize,
    pub(crate) huge_page_fallback: bool,
    pub(crate) access: DmaAccess,
    pub(crate) limit: AddressLimit,
    pub(crate) align: u64,
    pub(crate) iova: Option<u64>,
}

impl Default for DmaOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl DmaOptions {
    /// Base pages, read-write, no address limit, natural alignment, IOVA chosen by the
    /// allocator.
    pub const fn new() -> DmaOptions {
        DmaOptions {
            page_size: PageSize::Base,
            huge_page_fallback: false,
            access: DmaAccess::ReadWrite,
            limit: AddressLimit::NONE,
            align: 0,
            iova: None,
        }
    }

    /// The page size of the memory (default [`PageSize::Base`]).
    pub const fn page_size(mut self, page_size: PageSize) -> DmaOptions {
        self.page_size = page_size;
        self
    }

    /// When huge pages cannot be had (none reserved), use base pages aligned to the huge
    /// page size with `MADV_HUGEPAGE` (transparent huge pages may then back them) instead of
    /// failing. Default: fail, with an error that says how to reserve huge pages.
    pub const fn huge_page_fallback(mut self, fallback: bool) -> DmaOptions {
        self.huge_page_fallback = fallback;
        self
    }

    /// What the device may do with the memory (default [`DmaAccess::ReadWrite`]).
    pub const fn access(mut self, access: DmaAccess) -> DmaOptions {
        self.access = access;
        self
    }

    /// The device's DMA address limit (default none).
    pub const fn address_limit(mut self, limit: AddressLimit) -> DmaOptions {
        self.limit = limit;
        self
    }

    /// The device's DMA address width in bits, Xen's `address_bits`: 32 for a 32-bit device,
    /// 28 for QEMU's `edu`; 0 or 64 for none.
    pub const fn address_bits(self, bits: u32) -> DmaOptions {
        self.address_limit(AddressLimit::bits(bits))
    }

    /// A minimum IOVA alignment in bytes (a power of two), beyond the natural alignment to
    /// the size rounded up to a power of two (default 0: natural alignment only).
    pub const fn align(mut self, align: u64) -> DmaOptions {
        self.align = align;
        self
    }

    /// Map at exactly this IOVA instead of one chosen by the allocator (it is reserved in the
    /// allocator, so it cannot collide with other buffers).
    pub const fn iova(mut self, iova: u64) -> DmaOptions {
        self.iova = Some(iova);
        self
    }

    /// The page size asked for.
    pub const fn get_page_size(&self) -> PageSize {
        self.page_size
    }

    /// The device access asked for.
    pub const fn get_access(&self) -> DmaAccess {
        self.access
    }

    /// The address limit asked for.
    pub const fn get_address_limit(&self) -> AddressLimit {
        self.limit
    }

    /// The fixed IOVA asked for, if any.
    pub const fn get_iova(&self) -> Option<u64> {
        self.iova
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        send_sync::<DmaBuffer>();
        send_sync::<DmaPool>();
        send_sync::<PoolBuffer>();
        send_sync::<IovaAllocator>();
        send_sync::<SlotAllocator>();
        send_sync::<IovaReservation>();
        send_sync::<DmaOptions>();
    }

    #[test]
    fn options_chain() {
        let o = DmaOptions::new()
            .page_size(PageSize::Huge1G)
            .address_bits(32)
            .iova(0x1000)
            .align(1 << 21)
            .access(DmaAccess::ReadOnly);
        assert_eq!(o.get_page_size(), PageSize::Huge1G);
        assert_eq!(o.get_address_limit(), AddressLimit::bits(32));
        assert_eq!(o.get_iova(), Some(0x1000));
        assert_eq!(o.get_access(), DmaAccess::ReadOnly);
        assert_eq!(DmaOptions::default(), DmaOptions::new());
        assert_eq!(PageSize::Huge2M.bytes(), 2 << 20);
        assert!(PageSize::Base.bytes().is_power_of_two());
    }
}
