//! `<linux/iommufd.h>` (Linux 6.12): constants, structs and ioctl numbers under the kernel's
//! names.
//!
//! A hand-written transcription of the iommufd uAPI header, in the style of [`super::vfio`]:
//! every item keeps the kernel's spelling, nothing is typed or checked here, and the safe layers
//! above add the types. The ABI test (`tests/abi/`) compares every size, alignment, field
//! offset, field type, constant and request number with the header of the kernel source the
//! project's test kernel is built from.
//!
//! # ioctl requests
//!
//! Every request is `_IO(IOMMUFD_TYPE, IOMMUFD_CMD_*)` with `IOMMUFD_TYPE = ';'`, the same type
//! byte as VFIO's but from `0x80` up, so the two number spaces never meet. As with VFIO no size
//! is encoded in the number: each argument struct starts with a `size` field instead, which the
//! kernel uses to accept older (shorter) and newer (longer, zero-tailed) layouts.
//!
//! # Types of the constants
//!
//! The C header declares its flags and codes as enumerators. Here each has the Rust type of the
//! field it is used in: `u32` for `flags`, ids and data types, `u16` for the `op` fields of
//! [`iommu_option`] and [`iommu_vfio_ioas`], `u64` for the `flags` of [`iommu_hwpt_vtd_s1`]
//! and the bits of [`iommu_hw_info::out_capabilities`], and [`IoctlRequest`] for requests.
//!
//! # Structs
//!
//! Each struct is `#[repr(C)]` with the kernel's field names and types (`__aligned_u64` is
//! `u64` in a struct with `align(8)`, `__reserved` fields included). None has implicit padding:
//! the header spells every reserved byte, and zerocopy's `IntoBytes` derive proves it. Pointers to user memory (`user_va`, `data_uptr`,
//! `allowed_iovas`, `data`) are `u64`s as in C.

#![allow(non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use super::vfio::IoctlRequest;

/// The ioctl type byte of iommufd (`';'`, shared with VFIO, whose commands stay below 0x80).
pub const IOMMUFD_TYPE: u8 = b';';

/// The first iommufd command number.
pub const IOMMUFD_CMD_BASE: u32 = 0x80;
/// Command number of [`IOMMU_DESTROY`].
pub const IOMMUFD_CMD_DESTROY: u32 = IOMMUFD_CMD_BASE;
/// Command number of [`IOMMU_IOAS_ALLOC`].
pub const IOMMUFD_CMD_IOAS_ALLOC: u32 = 0x81;
/// Command number of [`IOMMU_IOAS_ALLOW_IOVAS`].
pub const IOMMUFD_CMD_IOAS_ALLOW_IOVAS: u32 = 0x82;
/// Command number of [`IOMMU_IOAS_COPY`].
pub const IOMMUFD_CMD_IOAS_COPY: u32 = 0x83;
/// Command number of [`IOMMU_IOAS_IOVA_RANGES`].
pub const IOMMUFD_CMD_IOAS_IOVA_RANGES: u32 = 0x84;
/// Command number of [`IOMMU_IOAS_MAP`].
pub const IOMMUFD_CMD_IOAS_MAP: u32 = 0x85;
/// Command number of [`IOMMU_IOAS_UNMAP`].
pub const IOMMUFD_CMD_IOAS_UNMAP: u32 = 0x86;
/// Command number of [`IOMMU_OPTION`].
pub const IOMMUFD_CMD_OPTION: u32 = 0x87;
/// Command number of [`IOMMU_VFIO_IOAS`].
pub const IOMMUFD_CMD_VFIO_IOAS: u32 = 0x88;
/// Command number of [`IOMMU_HWPT_ALLOC`].
pub const IOMMUFD_CMD_HWPT_ALLOC: u32 = 0x89;
/// Command number of [`IOMMU_GET_HW_INFO`].
pub const IOMMUFD_CMD_GET_HW_INFO: u32 = 0x8a;
/// Command number of [`IOMMU_HWPT_SET_DIRTY_TRACKING`].
pub const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING: u32 = 0x8b;
/// Command number of [`IOMMU_HWPT_GET_DIRTY_BITMAP`].
pub const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP: u32 = 0x8c;
/// Command number of [`IOMMU_HWPT_INVALIDATE`].
pub const IOMMUFD_CMD_HWPT_INVALIDATE: u32 = 0x8d;
/// Command number of [`IOMMU_FAULT_QUEUE_ALLOC`].
pub const IOMMUFD_CMD_FAULT_QUEUE_ALLOC: u32 = 0x8e;

/// `_IO(IOMMUFD_TYPE, cmd)`.
const fn io(cmd: u32) -> IoctlRequest {
    // Every iommufd command number is below 0x100 (the ABI test checks every request).
    #[allow(clippy::cast_possible_truncation)]
    super::vfio::request_none(IOMMUFD_TYPE, cmd as u8)
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

/// Argument of [`IOMMU_DESTROY`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_destroy {
    /// `sizeof(struct iommu_destroy)`.
    pub size: u32,
    /// The object to destroy (IOAS, HWPT, fault queue, ...).
    pub id: u32,
}
/// Destroys any object by its id.
pub const IOMMU_DESTROY: IoctlRequest = io(IOMMUFD_CMD_DESTROY);

/// Argument of [`IOMMU_IOAS_ALLOC`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_ioas_alloc {
    /// `sizeof(struct iommu_ioas_alloc)`.
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// Output: the new IOAS's id.
    pub out_ioas_id: u32,
}
/// Allocates an I/O address space.
pub const IOMMU_IOAS_ALLOC: IoctlRequest = io(IOMMUFD_CMD_IOAS_ALLOC);

/// An inclusive IOVA range, element of the arrays of [`iommu_ioas_iova_ranges`] and
/// [`iommu_ioas_allow_iovas`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_iova_range {
    /// First IOVA.
    pub start: u64,
    /// Last IOVA (inclusive).
    pub last: u64,
}

/// Argument of [`IOMMU_IOAS_IOVA_RANGES`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_ioas_iova_ranges {
    /// `sizeof(struct iommu_ioas_iova_ranges)`.
    pub size: u32,
    /// The IOAS.
    pub ioas_id: u32,
    /// In: elements of `allowed_iovas`; out: ranges that exist (`EMSGSIZE` if more than in).
    pub num_iovas: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// User pointer to an array of [`iommu_iova_range`].
    pub allowed_iovas: u64,
    /// Output: the minimum alignment of a mapping's IOVA.
    pub out_iova_alignment: u64,
}
/// Reads the IOVA ranges an IOAS can map now.
pub const IOMMU_IOAS_IOVA_RANGES: IoctlRequest = io(IOMMUFD_CMD_IOAS_IOVA_RANGES);

/// Argument of [`IOMMU_IOAS_ALLOW_IOVAS`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_ioas_allow_iovas {
    /// `sizeof(struct iommu_ioas_allow_iovas)`.
    pub size: u32,
    /// The IOAS.
    pub ioas_id: u32,
    /// Elements of `allowed_iovas`.
    pub num_iovas: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// User pointer to an array of [`iommu_iova_range`].
    pub allowed_iovas: u64,
}
/// Restricts the kernel-chosen IOVAs of an IOAS to the given ranges.
pub const IOMMU_IOAS_ALLOW_IOVAS: IoctlRequest = io(IOMMUFD_CMD_IOAS_ALLOW_IOVAS);

/// [`iommu_ioas_map::flags`]: map at exactly `iova` (otherwise the kernel picks it).
pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
/// [`iommu_ioas_map::flags`]: the device may write.
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
/// [`iommu_ioas_map::flags`]: the device may read.
pub const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

/// Argument of [`IOMMU_IOAS_MAP`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_ioas_map {
    /// `sizeof(struct iommu_ioas_map)`.
    pub size: u32,
    /// `IOMMU_IOAS_MAP_*`.
    pub flags: u32,
    /// The IOAS.
    pub ioas_id: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// The process memory to map.
    pub user_va: u64,
    /// Bytes to map.
    pub length: u64,
    /// In with `IOMMU_IOAS_MAP_FIXED_IOVA`, otherwise out: the IOVA.
    pub iova: u64,
}
/// Maps process memory into an IOAS (pinning it).
pub const IOMMU_IOAS_MAP: IoctlRequest = io(IOMMUFD_CMD_IOAS_MAP);

/// Argument of [`IOMMU_IOAS_COPY`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_ioas_copy {
    /// `sizeof(struct iommu_ioas_copy)`.
    pub size: u32,
    /// `IOMMU_IOAS_MAP_*` for the destination.
    pub flags: u32,
    /// The IOAS to map into.
    pub dst_ioas_id: u32,
    /// The IOAS whose pinned pages are mapped again.
    pub src_ioas_id: u32,
    /// Bytes to copy.
    pub length: u64,
    /// In with `IOMMU_IOAS_MAP_FIXED_IOVA`, otherwise out: the destination IOVA.
    pub dst_iova: u64,
    /// The source IOVA.
    pub src_iova: u64,
}
/// Maps pages already pinned by one IOAS into another, without pinning them again.
pub const IOMMU_IOAS_COPY: IoctlRequest = io(IOMMUFD_CMD_IOAS_COPY);

/// Argument of [`IOMMU_IOAS_UNMAP`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_ioas_unmap {
    /// `sizeof(struct iommu_ioas_unmap)`.
    pub size: u32,
    /// The IOAS.
    pub ioas_id: u32,
    /// First IOVA (0 with `length` `u64::MAX`: everything).
    pub iova: u64,
    /// In: bytes to unmap; out: bytes unmapped.
    pub length: u64,
}
/// Unmaps whole mappings inside an IOVA range.
pub const IOMMU_IOAS_UNMAP: IoctlRequest = io(IOMMUFD_CMD_IOAS_UNMAP);

/// [`iommu_option::option_id`]: account pinned pages per user (0) or per process (1).
pub const IOMMU_OPTION_RLIMIT_MODE: u32 = 0;
/// [`iommu_option::option_id`]: allow huge IOMMU pages for an IOAS (1, default) or not (0).
pub const IOMMU_OPTION_HUGE_PAGES: u32 = 1;
/// [`iommu_option::op`]: set the option to `val64`.
pub const IOMMU_OPTION_OP_SET: u16 = 0;
/// [`iommu_option::op`]: read the option into `val64`.
pub const IOMMU_OPTION_OP_GET: u16 = 1;

/// Argument of [`IOMMU_OPTION`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_option {
    /// `sizeof(struct iommu_option)`.
    pub size: u32,
    /// `IOMMU_OPTION_*`.
    pub option_id: u32,
    /// `IOMMU_OPTION_OP_*`.
    pub op: u16,
    /// Must be 0.
    pub __reserved: u16,
    /// The object the option applies to (0 for the iommufd itself).
    pub object_id: u32,
    /// The value, in or out.
    pub val64: u64,
}
/// Reads or sets an option of the iommufd or of an object.
pub const IOMMU_OPTION: IoctlRequest = io(IOMMUFD_CMD_OPTION);

/// [`iommu_vfio_ioas::op`]: read the IOAS the VFIO compatibility container uses.
pub const IOMMU_VFIO_IOAS_GET: u16 = 0;
/// [`iommu_vfio_ioas::op`]: make `ioas_id` the compatibility IOAS.
pub const IOMMU_VFIO_IOAS_SET: u16 = 1;
/// [`iommu_vfio_ioas::op`]: forget the compatibility IOAS.
pub const IOMMU_VFIO_IOAS_CLEAR: u16 = 2;

/// Argument of [`IOMMU_VFIO_IOAS`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_vfio_ioas {
    /// `sizeof(struct iommu_vfio_ioas)`.
    pub size: u32,
    /// In (SET) or out (GET): the IOAS.
    pub ioas_id: u32,
    /// `IOMMU_VFIO_IOAS_*`.
    pub op: u16,
    /// Must be 0.
    pub __reserved: u16,
}
/// Gets or sets the IOAS behind the VFIO container emulation.
pub const IOMMU_VFIO_IOAS: IoctlRequest = io(IOMMUFD_CMD_VFIO_IOAS);

// ---------------------------------------------------------------------------------------------
// Hardware page tables
// ---------------------------------------------------------------------------------------------

/// [`iommu_hwpt_alloc::flags`]: the HWPT can be the parent of nested ones.
pub const IOMMU_HWPT_ALLOC_NEST_PARENT: u32 = 1 << 0;
/// [`iommu_hwpt_alloc::flags`]: the HWPT tracks dirty pages.
pub const IOMMU_HWPT_ALLOC_DIRTY_TRACKING: u32 = 1 << 1;
/// [`iommu_hwpt_alloc::flags`]: `fault_id` is valid (I/O page faults go to that queue).
pub const IOMMU_HWPT_FAULT_ID_VALID: u32 = 1 << 2;

/// [`iommu_hwpt_vtd_s1::flags`]: supervisor requests.
pub const IOMMU_VTD_S1_SRE: u64 = 1 << 0;
/// [`iommu_hwpt_vtd_s1::flags`]: extended access flag.
pub const IOMMU_VTD_S1_EAFE: u64 = 1 << 1;
/// [`iommu_hwpt_vtd_s1::flags`]: write protect.
pub const IOMMU_VTD_S1_WPE: u64 = 1 << 2;

/// VT-d stage-1 page table of a nested HWPT ([`IOMMU_HWPT_DATA_VTD_S1`]).
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_vtd_s1 {
    /// `IOMMU_VTD_S1_*`.
    pub flags: u64,
    /// Guest physical address of the stage-1 page table.
    pub pgtbl_addr: u64,
    /// Its address width.
    pub addr_width: u32,
    /// Must be 0.
    pub __reserved: u32,
}

/// [`iommu_hwpt_alloc::data_type`]: no data (a plain, unnested HWPT).
pub const IOMMU_HWPT_DATA_NONE: u32 = 0;
/// [`iommu_hwpt_alloc::data_type`]: an [`iommu_hwpt_vtd_s1`].
pub const IOMMU_HWPT_DATA_VTD_S1: u32 = 1;

/// Argument of [`IOMMU_HWPT_ALLOC`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_alloc {
    /// `sizeof(struct iommu_hwpt_alloc)`.
    pub size: u32,
    /// `IOMMU_HWPT_ALLOC_*`, `IOMMU_HWPT_FAULT_ID_VALID`.
    pub flags: u32,
    /// The device whose IOMMU makes the page table.
    pub dev_id: u32,
    /// The IOAS (or parent HWPT) it translates.
    pub pt_id: u32,
    /// Output: the new HWPT's id.
    pub out_hwpt_id: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// `IOMMU_HWPT_DATA_*`.
    pub data_type: u32,
    /// Bytes at `data_uptr`.
    pub data_len: u32,
    /// User pointer to the type's data.
    pub data_uptr: u64,
    /// The fault queue, with `IOMMU_HWPT_FAULT_ID_VALID`.
    pub fault_id: u32,
    /// Must be 0.
    pub __reserved2: u32,
}
/// Allocates a hardware page table for a device.
pub const IOMMU_HWPT_ALLOC: IoctlRequest = io(IOMMUFD_CMD_HWPT_ALLOC);

/// [`iommu_hw_info_vtd::flags`]: the Sapphire Rapids erratum 772415 applies (no dirty
/// tracking on stage 2 with it).
pub const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17: u32 = 1 << 0;

/// VT-d registers, the data of [`IOMMU_HW_INFO_TYPE_INTEL_VTD`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hw_info_vtd {
    /// `IOMMU_HW_INFO_VTD_*`.
    pub flags: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// The capability register.
    pub cap_reg: u64,
    /// The extended capability register.
    pub ecap_reg: u64,
}

/// [`iommu_hw_info::out_data_type`]: no hardware data.
pub const IOMMU_HW_INFO_TYPE_NONE: u32 = 0;
/// [`iommu_hw_info::out_data_type`]: an [`iommu_hw_info_vtd`].
pub const IOMMU_HW_INFO_TYPE_INTEL_VTD: u32 = 1;

/// [`iommu_hw_info::out_capabilities`]: the IOMMU can track dirty pages.
pub const IOMMU_HW_CAP_DIRTY_TRACKING: u64 = 1 << 0;
/// [`iommu_hw_info::out_capabilities`]: PASID execute permission.
pub const IOMMU_HW_CAP_PCI_PASID_EXEC: u64 = 1 << 1;
/// [`iommu_hw_info::out_capabilities`]: PASID privileged mode.
pub const IOMMU_HW_CAP_PCI_PASID_PRIV: u64 = 1 << 2;

/// Argument of [`IOMMU_GET_HW_INFO`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hw_info {
    /// `sizeof(struct iommu_hw_info)`.
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// The device.
    pub dev_id: u32,
    /// In: bytes at `data_uptr`; out: bytes the kernel has.
    pub data_len: u32,
    /// User pointer for the type's data.
    pub data_uptr: u64,
    /// Output: `IOMMU_HW_INFO_TYPE_*`.
    pub out_data_type: u32,
    /// Output: log2 of the number of PASIDs (0: none).
    pub out_max_pasid_log2: u8,
    /// Must be 0.
    pub __reserved: [u8; 3],
    /// Output: `IOMMU_HW_CAP_*`.
    pub out_capabilities: u64,
}
/// Reads what the IOMMU behind a device can do.
pub const IOMMU_GET_HW_INFO: IoctlRequest = io(IOMMUFD_CMD_GET_HW_INFO);

/// [`iommu_hwpt_set_dirty_tracking::flags`]: turn tracking on (off without it).
pub const IOMMU_HWPT_DIRTY_TRACKING_ENABLE: u32 = 1;

/// Argument of [`IOMMU_HWPT_SET_DIRTY_TRACKING`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_set_dirty_tracking {
    /// `sizeof(struct iommu_hwpt_set_dirty_tracking)`.
    pub size: u32,
    /// `IOMMU_HWPT_DIRTY_TRACKING_ENABLE` or 0.
    pub flags: u32,
    /// The HWPT.
    pub hwpt_id: u32,
    /// Must be 0.
    pub __reserved: u32,
}
/// Starts or stops dirty tracking of a HWPT.
pub const IOMMU_HWPT_SET_DIRTY_TRACKING: IoctlRequest = io(IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);

/// [`iommu_hwpt_get_dirty_bitmap::flags`]: read without clearing the dirty bits.
pub const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: u32 = 1;

/// Argument of [`IOMMU_HWPT_GET_DIRTY_BITMAP`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_get_dirty_bitmap {
    /// `sizeof(struct iommu_hwpt_get_dirty_bitmap)`.
    pub size: u32,
    /// The HWPT.
    pub hwpt_id: u32,
    /// `IOMMU_HWPT_GET_DIRTY_BITMAP_*`.
    pub flags: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// First IOVA.
    pub iova: u64,
    /// Bytes covered.
    pub length: u64,
    /// Bytes per bit.
    pub page_size: u64,
    /// User pointer to the bitmap (`u64` words).
    pub data: u64,
}
/// Reads (and clears) the dirty bits of an IOVA range.
pub const IOMMU_HWPT_GET_DIRTY_BITMAP: IoctlRequest = io(IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);

/// [`iommu_hwpt_invalidate::data_type`]: an array of [`iommu_hwpt_vtd_s1_invalidate`].
pub const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: u32 = 0;

/// [`iommu_hwpt_vtd_s1_invalidate::flags`]: only leaf entries changed.
pub const IOMMU_VTD_INV_FLAGS_LEAF: u32 = 1 << 0;

/// One VT-d stage-1 invalidation request.
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_vtd_s1_invalidate {
    /// First address.
    pub addr: u64,
    /// Pages (`u64::MAX`: all).
    pub npages: u64,
    /// `IOMMU_VTD_INV_FLAGS_*`.
    pub flags: u32,
    /// Must be 0.
    pub __reserved: u32,
}

/// Argument of [`IOMMU_HWPT_INVALIDATE`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_invalidate {
    /// `sizeof(struct iommu_hwpt_invalidate)`.
    pub size: u32,
    /// The nested HWPT.
    pub hwpt_id: u32,
    /// User pointer to the requests.
    pub data_uptr: u64,
    /// `IOMMU_HWPT_INVALIDATE_DATA_*`.
    pub data_type: u32,
    /// Bytes per request.
    pub entry_len: u32,
    /// In: requests; out: requests handled.
    pub entry_num: u32,
    /// Must be 0.
    pub __reserved: u32,
}
/// Invalidates the caches of a nested (user-managed) page table.
pub const IOMMU_HWPT_INVALIDATE: IoctlRequest = io(IOMMUFD_CMD_HWPT_INVALIDATE);

// ---------------------------------------------------------------------------------------------
// I/O page faults
// ---------------------------------------------------------------------------------------------

/// [`iommu_hwpt_pgfault::flags`]: `pasid` is valid.
pub const IOMMU_PGFAULT_FLAGS_PASID_VALID: u32 = 1 << 0;
/// [`iommu_hwpt_pgfault::flags`]: the last fault of its group.
pub const IOMMU_PGFAULT_FLAGS_LAST_PAGE: u32 = 1 << 1;
/// [`iommu_hwpt_pgfault::perm`]: read.
pub const IOMMU_PGFAULT_PERM_READ: u32 = 1 << 0;
/// [`iommu_hwpt_pgfault::perm`]: write.
pub const IOMMU_PGFAULT_PERM_WRITE: u32 = 1 << 1;
/// [`iommu_hwpt_pgfault::perm`]: execute.
pub const IOMMU_PGFAULT_PERM_EXEC: u32 = 1 << 2;
/// [`iommu_hwpt_pgfault::perm`]: privileged.
pub const IOMMU_PGFAULT_PERM_PRIV: u32 = 1 << 3;

/// One I/O page fault, read from a fault queue's fd.
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_pgfault {
    /// `IOMMU_PGFAULT_FLAGS_*`.
    pub flags: u32,
    /// The faulting device.
    pub dev_id: u32,
    /// Its PASID, with `IOMMU_PGFAULT_FLAGS_PASID_VALID`.
    pub pasid: u32,
    /// The page request group.
    pub grpid: u32,
    /// `IOMMU_PGFAULT_PERM_*`.
    pub perm: u32,
    /// Must be 0.
    pub __reserved: u32,
    /// The faulting address.
    pub addr: u64,
    /// Bytes.
    pub length: u32,
    /// To be echoed in the response.
    pub cookie: u32,
}

/// [`iommu_hwpt_page_response::code`]: the fault is handled.
pub const IOMMUFD_PAGE_RESP_SUCCESS: u32 = 0;
/// [`iommu_hwpt_page_response::code`]: the fault cannot be handled.
pub const IOMMUFD_PAGE_RESP_INVALID: u32 = 1;

/// The answer to an [`iommu_hwpt_pgfault`], written to the fault queue's fd.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_hwpt_page_response {
    /// The fault's cookie.
    pub cookie: u32,
    /// `IOMMUFD_PAGE_RESP_*`.
    pub code: u32,
}

/// Argument of [`IOMMU_FAULT_QUEUE_ALLOC`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct iommu_fault_alloc {
    /// `sizeof(struct iommu_fault_alloc)`.
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// Output: the queue's id.
    pub out_fault_id: u32,
    /// Output: the fd to read faults from and write responses to.
    pub out_fault_fd: u32,
}
/// Allocates an I/O page fault queue.
pub const IOMMU_FAULT_QUEUE_ALLOC: IoctlRequest = io(IOMMUFD_CMD_FAULT_QUEUE_ALLOC);
