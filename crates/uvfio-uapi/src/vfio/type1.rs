//! The Type1 IOMMU backend: info, capabilities, DMA map and unmap, dirty page tracking.

use super::*;

/// Argument of `VFIO_IOMMU_GET_INFO` (Type1); a capability chain may follow when `argsz` allows.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_type1_info {
    /// Size of the caller's buffer; the kernel raises it when the chain does not fit.
    pub argsz: u32,
    /// `VFIO_IOMMU_INFO_*` bits.
    pub flags: u32,
    /// Bitmap of supported IOMMU page sizes.
    pub iova_pgsizes: u64,
    /// Offset of the first capability from the start of this struct.
    pub cap_offset: u32,
    /// Padding, zero (6.x names the former implicit padding).
    pub pad: u32,
}
/// IOMMU info flag: `iova_pgsizes` is valid.
pub const VFIO_IOMMU_INFO_PGSIZES: u32 = 1 << 0;
/// IOMMU info flag: the info reply may carry a capability chain.
pub const VFIO_IOMMU_INFO_CAPS: u32 = 1 << 1;

/// IOMMU capability ID: usable IOVA ranges.
pub const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: u16 = 1;

/// One usable IOVA range, both ends inclusive.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iova_range {
    /// First usable IOVA.
    pub start: u64,
    /// Last usable IOVA.
    pub end: u64,
}

/// IOVA range capability (version 1), header part.
///
/// In memory it is followed by `nr_iovas` [`vfio_iova_range`] (C: `iova_ranges[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_type1_info_cap_iova_range {
    /// Capability header, ID [`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`].
    pub header: vfio_info_cap_header,
    /// Number of ranges that follow.
    pub nr_iovas: u32,
    /// Reserved.
    pub reserved: u32,
    /// Zero-length stand-in for C's `iova_ranges[]`: adds no size, only C's alignment.
    pub iova_ranges: [vfio_iova_range; 0],
}

/// IOMMU capability ID: dirty page tracking support.
pub const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION: u16 = 2;

/// Migration capability (version 1): dirty page tracking parameters.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
pub struct vfio_iommu_type1_info_cap_migration {
    /// Capability header, ID [`VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`].
    pub header: vfio_info_cap_header,
    /// No flags are defined.
    pub flags: u32,
    /// Bitmap of page sizes usable for dirty tracking.
    pub pgsize_bitmap: u64,
    /// Largest dirty bitmap, in bytes, one request may ask for.
    pub max_dirty_bitmap_size: u64,
}

/// IOMMU capability ID: number of DMA mappings still available.
pub const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: u16 = 3;

/// DMA-available capability (version 1).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_type1_info_dma_avail {
    /// Capability header, ID [`VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`].
    pub header: vfio_info_cap_header,
    /// How many more DMA mappings may be created.
    pub avail: u32,
}
/// Reads IOMMU information into a [`vfio_iommu_type1_info`].
pub const VFIO_IOMMU_GET_INFO: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 12);

/// Argument of `VFIO_IOMMU_MAP_DMA`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_type1_dma_map {
    /// Size of this struct.
    pub argsz: u32,
    /// `VFIO_DMA_MAP_FLAG_*` bits.
    pub flags: u32,
    /// Process virtual address of the memory.
    pub vaddr: u64,
    /// IO virtual address the device will use.
    pub iova: u64,
    /// Length of the mapping in bytes.
    pub size: u64,
}
/// DMA map flag: the device may read the memory.
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
/// DMA map flag: the device may write the memory.
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;
/// DMA map flag: only replace the vaddr of an existing, invalidated mapping.
pub const VFIO_DMA_MAP_FLAG_VADDR: u32 = 1 << 2;
/// Maps process memory for device DMA with a [`vfio_iommu_type1_dma_map`].
pub const VFIO_IOMMU_MAP_DMA: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 13);

/// A user dirty-page bitmap.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct vfio_bitmap {
    /// Bytes of IOVA covered by one bit.
    pub pgsize: u64,
    /// Size of the bitmap in bytes.
    pub size: u64,
    /// The zeroed bitmap the kernel sets bits in.
    pub data: *mut u64,
}

impl Default for vfio_bitmap {
    fn default() -> Self {
        Self {
            pgsize: 0,
            size: 0,
            data: core::ptr::null_mut(),
        }
    }
}

/// Argument of `VFIO_IOMMU_UNMAP_DMA`, header part.
///
/// With [`VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`] it is followed by a [`vfio_bitmap`]
/// (C: `__u8 data[]`); otherwise nothing follows.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_type1_dma_unmap {
    /// Size of the struct plus any trailing bitmap.
    pub argsz: u32,
    /// `VFIO_DMA_UNMAP_FLAG_*` bits.
    pub flags: u32,
    /// IO virtual address to unmap.
    pub iova: u64,
    /// Length to unmap; the kernel returns how much was unmapped.
    pub size: u64,
}
/// DMA unmap flag: also return the dirty bitmap of the range.
pub const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: u32 = 1 << 0;
/// DMA unmap flag: unmap everything (`iova` and `size` must be 0).
pub const VFIO_DMA_UNMAP_FLAG_ALL: u32 = 1 << 1;
/// DMA unmap flag: keep the mapping but invalidate its vaddr.
pub const VFIO_DMA_UNMAP_FLAG_VADDR: u32 = 1 << 2;
/// Unmaps IOVA space with a [`vfio_iommu_type1_dma_unmap`].
pub const VFIO_IOMMU_UNMAP_DMA: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 14);

/// Enables the container's IOMMU (sPAPR); takes no argument.
pub const VFIO_IOMMU_ENABLE: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 15);
/// Disables the container's IOMMU (sPAPR); takes no argument.
pub const VFIO_IOMMU_DISABLE: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 16);

/// Argument of `VFIO_IOMMU_DIRTY_PAGES`, header part.
///
/// With [`VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP`] it is followed by a
/// [`vfio_iommu_type1_dirty_bitmap_get`] (C: `__u8 data[]`); otherwise nothing follows.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_type1_dirty_bitmap {
    /// Size of the struct plus any trailing request.
    pub argsz: u32,
    /// Exactly one `VFIO_IOMMU_DIRTY_PAGES_FLAG_*` bit.
    pub flags: u32,
}
/// Dirty pages flag: start dirty page logging.
pub const VFIO_IOMMU_DIRTY_PAGES_FLAG_START: u32 = 1 << 0;
/// Dirty pages flag: stop dirty page logging.
pub const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP: u32 = 1 << 1;
/// Dirty pages flag: read the dirty bitmap of an IOVA range.
pub const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP: u32 = 1 << 2;

/// Request that follows [`vfio_iommu_type1_dirty_bitmap`] for a bitmap read.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct vfio_iommu_type1_dirty_bitmap_get {
    /// Start of the IOVA range.
    pub iova: u64,
    /// Length of the IOVA range in bytes.
    pub size: u64,
    /// Where to store the bitmap.
    pub bitmap: vfio_bitmap,
}
/// Starts, stops or reads container dirty page logging.
pub const VFIO_IOMMU_DIRTY_PAGES: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 17);
