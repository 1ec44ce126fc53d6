//! `<linux/vfio.h>`: constants, structs and ioctl numbers under the kernel's names.
//!
//! This module is a hand-written transcription of the Linux VFIO uAPI header of 6.12 (checked
//! against the headers of the kernel source the project's test kernel is built from; everything
//! of 6.1 is unchanged, 6.12 only adds). Every item keeps the kernel's spelling, so `grep VFIO_IRQ_SET_DATA_EVENTFD`
//! finds the same thing in this file and in `include/uapi/linux/vfio.h`. Nothing here is typed
//! or checked; the safe layers above add bitflags, enums and buffer handling.
//!
//! # ioctl requests
//!
//! Every VFIO ioctl is defined as `_IO(VFIO_TYPE, VFIO_BASE + n)`: no direction and no argument
//! size are encoded in the number, because each argument struct starts with an `argsz` field that
//! carries its length instead. The numbers are built with [`nix::request_code_none!`], so they are
//! right for the target architecture (the `_IOC` bit layout differs between x86, PowerPC, MIPS,
//! ...). Several names share a number (for example [`VFIO_IOMMU_GET_INFO`],
//! [`VFIO_IOMMU_SPAPR_TCE_GET_INFO`] and [`VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`]); which one is
//! meant depends on the kind of file descriptor it is issued on.
//!
//! # Types of the constants
//!
//! A constant has the Rust type of the place it is used in:
//! - `u32` for flag bits, masks, indices, region types and subtypes, feature numbers, states and
//!   operation codes, all of which live in `__u32` fields; also for the extension numbers passed
//!   as the integer argument of `VFIO_CHECK_EXTENSION` / `VFIO_SET_IOMMU`;
//! - `u16` for capability IDs, which are compared with [`vfio_info_cap_header::id`] (`__u16`);
//! - `u64` for the flags of [`vfio_device_feature_migration`], whose `flags` field is 64-bit;
//! - `i32` for values that the kernel hands back as an ioctl return value
//!   ([`VFIO_API_VERSION`] and the `VFIO_EEH_PE_STATE_*` states);
//! - `u8` for [`VFIO_TYPE`] and [`VFIO_BASE`], the two halves of every request number;
//! - `&str` for the `VFIO_DEVICE_API_*_STRING` names, and [`IoctlRequest`] for requests.
//!
//! C enumerations (the vfio-pci and vfio-ccw index lists, `enum vfio_device_mig_state`) become
//! plain `u32` constants under the enumerator names. The three function-like macros of the old
//! v1 migration protocol become `const fn`s with the macro names.
//!
//! # Structs
//!
//! Each struct is `#[repr(C)]` with the kernel's field names and exact field types (`__u32` is
//! `u32`, `__s32` is `i32`, `__u64` is `u64`). Structs whose C fields are `__aligned_u64` also
//! carry `align(8)`, which only matters on 32-bit targets where `u64` is 4-aligned. Anonymous C
//! unions are given a named Rust union and a field called `u`. [`vfio_bitmap::data`] is a raw
//! `*mut u64` as in C, so that struct is neither `Send` nor `Sync` and defaults to a null pointer.
//!
//! A C flexible array member (`data[]`, `devices[]`, `group_fds[]`, ...) has no Rust counterpart:
//! it adds nothing to C's `sizeof`, so `size_of::<T>()` equals the C `sizeof` and the trailing
//! elements start right at `size_of::<T>()`. Each such struct says what follows it; the crate
//! builds those variable-length buffers elsewhere. The one thing a flexible array does add in C
//! is its element's alignment. Where that element is more strictly aligned than the rest of the
//! struct ([`vfio_region_info_cap_sparse_mmap::areas`] and
//! [`vfio_iommu_type1_info_cap_iova_range::iova_ranges`], whose elements hold `u64`s after a
//! header of `u32`s), the member is kept as a zero-length array under the kernel's name, so the
//! alignment matches C on every target while the size stays the same.
//!
//! # Byte views
//!
//! The structs derive zerocopy's [`FromBytes`] (any bytes are a value: what the kernel wrote
//! can be read back), [`Immutable`] and [`KnownLayout`]; those without padding also derive
//! [`IntoBytes`], which the derive refuses for a struct with padding, so a struct's bytes can be
//! sent to the kernel only when every one of them is initialised. Five have no `IntoBytes`:
//!
//! - [`vfio_iommu_type1_info`] (4 bytes of tail padding at 20..24; the kernel copies back only
//!   the first 20) and [`vfio_device_ioeventfd`] (tail padding at 28..32): the crate sends the
//!   first as a zeroed buffer with `argsz` written into it and passes the second by pointer,
//!   never as bytes;
//! - [`vfio_iommu_type1_info_cap_migration`] (padding at 12..16): only ever read, from a
//!   capability chain;
//! - [`vfio_device_gfx_plane_info`] (tail padding at 60..64, and a union) and
//!   [`vfio_eeh_pe_op`] (a union; unions get `IntoBytes` only behind a zerocopy `cfg`).
//!
//! [`vfio_bitmap`] and [`vfio_iommu_type1_dirty_bitmap_get`] hold a raw pointer, so they derive
//! none of these.
//!
//! A struct without padding is its bytes:
//!
//! ```
//! use uvfio::uapi::vfio::vfio_device_info;
//! use uvfio::zerocopy::IntoBytes;
//! let info = vfio_device_info { argsz: 40, ..Default::default() };
//! assert_eq!(&info.as_bytes()[..4], &40u32.to_ne_bytes());
//! ```
//!
//! A padded one is not (padded structs once were, as the crate's own `Pod`, and their
//! uninitialised padding reached a `&[u8]`):
//!
//! ```compile_fail,E0277
//! use uvfio::uapi::vfio::vfio_iommu_type1_info_cap_migration;
//! use uvfio::zerocopy::IntoBytes;
//! let cap = vfio_iommu_type1_info_cap_migration::default();
//! let _padding_too = cap.as_bytes(); // bytes 12..16 are padding
//! ```
//!
//! nor is one with a union whose members differ in what bytes they cover:
//!
//! ```compile_fail,E0277
//! use uvfio::uapi::vfio::vfio_device_gfx_plane_info;
//! use uvfio::zerocopy::IntoBytes;
//! let _ = vfio_device_gfx_plane_info::default().as_bytes();
//! ```
//!
//! The 6.12 header names what was padding in 6.1 in `vfio_iommu_type1_info` (`pad`),
//! `vfio_device_ioeventfd` and `vfio_device_gfx_plane_info` (`reserved`); the first two are
//! therefore plain bytes now.
//!
//! The ABI test (`tests/abi/`) compiles a C program against that header and compares every
//! size, alignment, field offset, field type, constant and request number with this file.
//!
//! Some structs grew an explicit `pad`/`reserved` field in 6.x where older headers had implicit
//! padding ([`vfio_device_info`], [`vfio_iommu_type1_info`], [`vfio_device_ioeventfd`],
//! [`vfio_device_gfx_plane_info`]); the layouts are the same except [`vfio_device_info`], which
//! 6.1 kernels treat as 20 bytes (their capability chain starts at offset 20).
//!
//! # Safety
//!
//! The only `unsafe` code here reads union members, in the hand-written `Debug` and `PartialEq`
//! impls of the two unions. The member read is plain integer data without padding that covers
//! the whole union, so whichever member was written last, every bit pattern is a valid value.

#![allow(non_camel_case_types)]

use std::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The integer type of an ioctl request number here: `c_ulong` on glibc, `c_int` on musl.
pub type IoctlRequest = nix::sys::ioctl::ioctl_num_type;

// ---------------------------------------------------------------------------------------------
// API version and extensions
// ---------------------------------------------------------------------------------------------

/// The VFIO API version that `VFIO_GET_API_VERSION` returns.
pub const VFIO_API_VERSION: i32 = 0;

/// Extension: the Type1 IOMMU backend (v1 semantics).
pub const VFIO_TYPE1_IOMMU: u32 = 1;
/// Extension: the sPAPR TCE IOMMU backend (POWER).
pub const VFIO_SPAPR_TCE_IOMMU: u32 = 2;
/// Extension: the Type1 IOMMU backend with v2 semantics (no partial unmaps).
#[allow(non_upper_case_globals)] // the kernel's spelling
pub const VFIO_TYPE1v2_IOMMU: u32 = 3;
/// Extension: the IOMMU enforces DMA cache coherence for the current set of groups.
pub const VFIO_DMA_CC_IOMMU: u32 = 4;
/// Extension: EEH error recovery is available (POWER).
pub const VFIO_EEH: u32 = 5;
/// Extension: two-stage (nested) Type1 IOMMU; implies v2.
pub const VFIO_TYPE1_NESTING_IOMMU: u32 = 6;
/// Extension: version 2 of the sPAPR TCE IOMMU backend.
#[allow(non_upper_case_globals)] // the kernel's spelling
pub const VFIO_SPAPR_TCE_v2_IOMMU: u32 = 7;
/// Extension: the no-IOMMU mode, which provides neither translation nor isolation.
pub const VFIO_NOIOMMU_IOMMU: u32 = 8;
/// Extension: `VFIO_DMA_UNMAP_FLAG_ALL` is supported.
pub const VFIO_UNMAP_ALL: u32 = 9;
/// Extension: the vaddr update flags of DMA map and unmap are supported.
pub const VFIO_UPDATE_VADDR: u32 = 10;

/// The ioctl "type" byte shared by every VFIO request (`';'`).
pub const VFIO_TYPE: u8 = b';';
/// The first ioctl sequence number used by VFIO; requests are `VFIO_BASE + n`.
pub const VFIO_BASE: u8 = 100;

// ---------------------------------------------------------------------------------------------
// Capability chain header
// ---------------------------------------------------------------------------------------------

/// Header that starts every capability in the chain returned by an INFO ioctl.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_info_cap_header {
    /// Capability ID; its meaning depends on which INFO ioctl returned the chain.
    pub id: u16,
    /// Version of the capability's layout.
    pub version: u16,
    /// Offset of the next capability from the start of the INFO buffer, 0 at the end.
    pub next: u32,
}

// ---------------------------------------------------------------------------------------------
// Container ioctls (/dev/vfio/vfio)
// ---------------------------------------------------------------------------------------------

/// Returns the API version of the container ([`VFIO_API_VERSION`]).
#[allow(clippy::identity_op)] // `+ 0` keeps the kernel's `VFIO_BASE + n` spelling.
pub const VFIO_GET_API_VERSION: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 0);
/// Asks whether an extension (IOMMU type or feature) is supported; positive means yes.
pub const VFIO_CHECK_EXTENSION: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 1);
/// Selects the IOMMU backend of a container once a group is attached.
pub const VFIO_SET_IOMMU: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 2);

// ---------------------------------------------------------------------------------------------
// Group ioctls (/dev/vfio/$GROUP)
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_GROUP_GET_STATUS`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_group_status {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_GROUP_FLAGS_*` bits filled in by the kernel.
    pub flags: u32,
}
/// Group flag: every device in the group is bound to a VFIO driver (or none at all).
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;
/// Group flag: the group is attached to a container.
pub const VFIO_GROUP_FLAGS_CONTAINER_SET: u32 = 1 << 1;
/// Reads the status of a group into a [`vfio_group_status`].
pub const VFIO_GROUP_GET_STATUS: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 3);
/// Attaches a group to the container whose fd is passed by pointer.
pub const VFIO_GROUP_SET_CONTAINER: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 4);
/// Detaches a group from its container.
pub const VFIO_GROUP_UNSET_CONTAINER: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 5);
/// Opens a device of the group by name (NUL-terminated string) and returns its fd.
pub const VFIO_GROUP_GET_DEVICE_FD: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 6);

// ---------------------------------------------------------------------------------------------
// Device ioctls: info
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_GET_INFO`; a capability chain may follow when `argsz` allows it.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_info {
    /// Size of the caller's buffer; the kernel raises it when the chain does not fit.
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_*` bits.
    pub flags: u32,
    /// Number of regions (highest region index + 1).
    pub num_regions: u32,
    /// Number of IRQ indices (highest IRQ index + 1).
    pub num_irqs: u32,
    /// Offset of the first capability from the start of this struct.
    pub cap_offset: u32,
    /// Padding (6.4+); kernels before it end the struct at `cap_offset` (20 bytes) and may
    /// start the capability chain right there.
    pub pad: u32,
}
/// Device flag: the device supports `VFIO_DEVICE_RESET`.
pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// Device flag: vfio-pci device.
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// Device flag: vfio-platform device.
pub const VFIO_DEVICE_FLAGS_PLATFORM: u32 = 1 << 2;
/// Device flag: vfio-amba device.
pub const VFIO_DEVICE_FLAGS_AMBA: u32 = 1 << 3;
/// Device flag: vfio-ccw (s390 channel I/O) device.
pub const VFIO_DEVICE_FLAGS_CCW: u32 = 1 << 4;
/// Device flag: vfio-ap (s390 crypto adapter) device.
pub const VFIO_DEVICE_FLAGS_AP: u32 = 1 << 5;
/// Device flag: vfio-fsl-mc (NXP Management Complex) device.
pub const VFIO_DEVICE_FLAGS_FSL_MC: u32 = 1 << 6;
/// Device flag: the info reply may carry a capability chain.
pub const VFIO_DEVICE_FLAGS_CAPS: u32 = 1 << 7;
/// Device flag: vfio-cdx (AMD CDX bus) device.
pub const VFIO_DEVICE_FLAGS_CDX: u32 = 1 << 8;
/// Reads device information into a [`vfio_device_info`].
pub const VFIO_DEVICE_GET_INFO: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 7);

/// `device_api` string of a mediated vfio-pci device type.
pub const VFIO_DEVICE_API_PCI_STRING: &str = "vfio-pci";
/// `device_api` string of a mediated vfio-platform device type.
pub const VFIO_DEVICE_API_PLATFORM_STRING: &str = "vfio-platform";
/// `device_api` string of a mediated vfio-amba device type.
pub const VFIO_DEVICE_API_AMBA_STRING: &str = "vfio-amba";
/// `device_api` string of a mediated vfio-ccw device type.
pub const VFIO_DEVICE_API_CCW_STRING: &str = "vfio-ccw";
/// `device_api` string of a mediated vfio-ap device type.
pub const VFIO_DEVICE_API_AP_STRING: &str = "vfio-ap";

/// Device-info capability ID: s390 zPCI base data (layout in `<linux/vfio_zdev.h>`).
pub const VFIO_DEVICE_INFO_CAP_ZPCI_BASE: u16 = 1;
/// Device-info capability ID: s390 zPCI function group data.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_GROUP: u16 = 2;
/// Device-info capability ID: s390 zPCI utility string.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_UTIL: u16 = 3;
/// Device-info capability ID: s390 zPCI function path.
pub const VFIO_DEVICE_INFO_CAP_ZPCI_PFIP: u16 = 4;
/// Device-info capability ID: the PCIe AtomicOp completer sizes the root port supports.
pub const VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP: u16 = 5;

/// Capability [`VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_info_cap_pci_atomic_comp {
    /// The capability header.
    pub header: vfio_info_cap_header,
    /// `VFIO_PCI_ATOMIC_COMP*` bits.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: u32,
}
/// AtomicOp completion of 32-bit operands is supported.
pub const VFIO_PCI_ATOMIC_COMP32: u32 = 1 << 0;
/// AtomicOp completion of 64-bit operands is supported.
pub const VFIO_PCI_ATOMIC_COMP64: u32 = 1 << 1;
/// AtomicOp completion of 128-bit operands is supported.
pub const VFIO_PCI_ATOMIC_COMP128: u32 = 1 << 2;

// ---------------------------------------------------------------------------------------------
// Device ioctls: regions
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_GET_REGION_INFO`; a capability chain may follow when `argsz` allows.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info {
    /// Size of the caller's buffer; the kernel raises it when the chain does not fit.
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*` bits.
    pub flags: u32,
    /// Region index to describe, set by the caller.
    pub index: u32,
    /// Offset of the first capability from the start of this struct.
    pub cap_offset: u32,
    /// Size of the region in bytes (0 if not implemented).
    pub size: u64,
    /// Offset of the region within the device fd, for pread/pwrite/mmap.
    pub offset: u64,
}
/// Region flag: the region can be read.
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1 << 0;
/// Region flag: the region can be written.
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
/// Region flag: the region can be mmapped.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
/// Region flag: the info reply may carry a capability chain.
pub const VFIO_REGION_INFO_FLAG_CAPS: u32 = 1 << 3;
/// Reads the description of one region into a [`vfio_region_info`].
pub const VFIO_DEVICE_GET_REGION_INFO: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 8);

/// Region capability ID: list of the mmappable areas of the region.
pub const VFIO_REGION_INFO_CAP_SPARSE_MMAP: u16 = 1;

/// One mmappable area of a region, as listed by the sparse-mmap capability.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_sparse_mmap_area {
    /// Offset of the area from the start of the region.
    pub offset: u64,
    /// Size of the area in bytes.
    pub size: u64,
}

/// Sparse-mmap region capability (version 1), header part.
///
/// In memory it is followed by `nr_areas` [`vfio_region_sparse_mmap_area`] (C: `areas[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_sparse_mmap {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_SPARSE_MMAP`].
    pub header: vfio_info_cap_header,
    /// Number of areas that follow.
    pub nr_areas: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Zero-length stand-in for C's `areas[]`: adds no size, only C's alignment.
    pub areas: [vfio_region_sparse_mmap_area; 0],
}

/// Region capability ID: device-specific region type and subtype.
pub const VFIO_REGION_INFO_CAP_TYPE: u16 = 2;

/// Region type capability (version 1).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_type {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_TYPE`].
    pub header: vfio_info_cap_header,
    /// Region type (`VFIO_REGION_TYPE_*`), global per bus driver.
    pub r#type: u32,
    /// Region subtype, meaningful for the given type.
    pub subtype: u32,
}

/// Region type bit: the low 16 bits hold a PCI vendor ID.
pub const VFIO_REGION_TYPE_PCI_VENDOR_TYPE: u32 = 1 << 31;
/// Mask of the PCI vendor ID in a vendor region type.
pub const VFIO_REGION_TYPE_PCI_VENDOR_MASK: u32 = 0xffff;
/// Region type: graphics.
pub const VFIO_REGION_TYPE_GFX: u32 = 1;
/// Region type: s390 channel I/O.
pub const VFIO_REGION_TYPE_CCW: u32 = 2;
/// Region type: the removed v1 migration region.
pub const VFIO_REGION_TYPE_MIGRATION_DEPRECATED: u32 = 3;

/// Intel (8086) subtype: IGD OpRegion.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION: u32 = 1;
/// Intel (8086) subtype: IGD host bridge config space.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG: u32 = 2;
/// Intel (8086) subtype: IGD LPC bridge config space.
pub const VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG: u32 = 3;
/// NVIDIA (10de) subtype: NVLink2 GPU RAM (no longer provided).
pub const VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM: u32 = 1;
/// IBM (1014) subtype: NPU NVLink2 ATSD register (no longer provided).
pub const VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD: u32 = 1;
/// Graphics subtype: EDID region ([`vfio_region_gfx_edid`]).
pub const VFIO_REGION_SUBTYPE_GFX_EDID: u32 = 1;

/// Layout of the graphics EDID region.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_gfx_edid {
    /// Offset of the EDID blob from the region start (read-only).
    pub edid_offset: u32,
    /// Largest EDID blob the region can hold (read-only).
    pub edid_max_size: u32,
    /// Size of the current EDID blob.
    pub edid_size: u32,
    /// Maximum display width, 0 for no limit (read-only).
    pub max_xres: u32,
    /// Maximum display height, 0 for no limit (read-only).
    pub max_yres: u32,
    /// Display link state, `VFIO_DEVICE_GFX_LINK_STATE_*`.
    pub link_state: u32,
}
/// EDID link state: monitor on.
pub const VFIO_DEVICE_GFX_LINK_STATE_UP: u32 = 1;
/// EDID link state: monitor off.
pub const VFIO_DEVICE_GFX_LINK_STATE_DOWN: u32 = 2;

/// Channel I/O subtype: asynchronous command region.
pub const VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD: u32 = 1;
/// Channel I/O subtype: subchannel information block region.
pub const VFIO_REGION_SUBTYPE_CCW_SCHIB: u32 = 2;
/// Channel I/O subtype: channel report word region.
pub const VFIO_REGION_SUBTYPE_CCW_CRW: u32 = 3;

/// Migration subtype of the removed v1 migration region.
pub const VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED: u32 = 1;

/// Header of the removed v1 migration region.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_migration_info {
    /// `VFIO_DEVICE_STATE_V1_*` bits.
    pub device_state: u32,
    /// Reserved.
    pub reserved: u32,
    /// Bytes of migration data still pending.
    pub pending_bytes: u64,
    /// Offset of the data window within the region.
    pub data_offset: u64,
    /// Size of the data in the window.
    pub data_size: u64,
}
/// v1 migration state: stopped.
pub const VFIO_DEVICE_STATE_V1_STOP: u32 = 0;
/// v1 migration state bit: running.
pub const VFIO_DEVICE_STATE_V1_RUNNING: u32 = 1 << 0;
/// v1 migration state bit: saving.
pub const VFIO_DEVICE_STATE_V1_SAVING: u32 = 1 << 1;
/// v1 migration state bit: resuming.
pub const VFIO_DEVICE_STATE_V1_RESUMING: u32 = 1 << 2;
/// Mask of all v1 migration state bits.
pub const VFIO_DEVICE_STATE_MASK: u32 =
    VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING;

/// Whether a v1 migration state is valid: resuming may not be combined with other bits.
#[allow(non_snake_case)]
pub const fn VFIO_DEVICE_STATE_VALID(state: u32) -> bool {
    if state & VFIO_DEVICE_STATE_V1_RESUMING != 0 {
        state & VFIO_DEVICE_STATE_MASK == VFIO_DEVICE_STATE_V1_RESUMING
    } else {
        true
    }
}

/// Whether a v1 migration state is the error state (saving and resuming both set).
#[allow(non_snake_case)]
pub const fn VFIO_DEVICE_STATE_IS_ERROR(state: u32) -> bool {
    state & VFIO_DEVICE_STATE_MASK == VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING
}

/// Replaces the state bits of a v1 migration state with the error state, keeping other bits.
#[allow(non_snake_case)]
pub const fn VFIO_DEVICE_STATE_SET_ERROR(state: u32) -> u32 {
    (state & !VFIO_DEVICE_STATE_MASK) | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING
}

/// Region capability ID: the MSI-X table of this BAR may be mmapped.
pub const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: u16 = 3;

/// Region capability ID: NVLink2 GPU RAM system address (no longer provided).
pub const VFIO_REGION_INFO_CAP_NVLINK2_SSATGT: u16 = 4;

/// NVLink2 target address capability (no longer provided).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_nvlink2_ssatgt {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_NVLINK2_SSATGT`].
    pub header: vfio_info_cap_header,
    /// Compressed system address of the GPU RAM.
    pub tgt: u64,
}

/// Region capability ID: NVLink2 link speed (no longer provided).
pub const VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD: u16 = 5;

/// NVLink2 link speed capability (no longer provided).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_region_info_cap_nvlink2_lnkspd {
    /// Capability header, ID [`VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD`].
    pub header: vfio_info_cap_header,
    /// Link speed taken from the device tree.
    pub link_speed: u32,
    /// Padding.
    pub __pad: u32,
}

// ---------------------------------------------------------------------------------------------
// Device ioctls: interrupts and reset
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_GET_IRQ_INFO`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_irq_info {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_IRQ_INFO_*` bits.
    pub flags: u32,
    /// IRQ index to describe, set by the caller.
    pub index: u32,
    /// Number of interrupts (vectors) in this index.
    pub count: u32,
}
/// IRQ flag: the index can signal through an eventfd.
pub const VFIO_IRQ_INFO_EVENTFD: u32 = 1 << 0;
/// IRQ flag: the index supports the mask and unmask actions.
pub const VFIO_IRQ_INFO_MASKABLE: u32 = 1 << 1;
/// IRQ flag: the line is masked after each signal until unmasked (level-triggered).
pub const VFIO_IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
/// IRQ flag: the set of enabled vectors cannot grow without disabling the index first.
pub const VFIO_IRQ_INFO_NORESIZE: u32 = 1 << 3;
/// Reads the description of one IRQ index into a [`vfio_irq_info`].
pub const VFIO_DEVICE_GET_IRQ_INFO: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 9);

/// Argument of `VFIO_DEVICE_SET_IRQS`, header part.
///
/// In memory it is followed by `count` data items (C: `__u8 data[]`): nothing for
/// `DATA_NONE`, one `u8` per vector for `DATA_BOOL`, one `i32` eventfd per vector for
/// `DATA_EVENTFD`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_irq_set {
    /// Size of the struct plus its data.
    pub argsz: u32,
    /// One `VFIO_IRQ_SET_DATA_*` bit and one `VFIO_IRQ_SET_ACTION_*` bit.
    pub flags: u32,
    /// IRQ index the action applies to.
    pub index: u32,
    /// First vector (subindex) of the range.
    pub start: u32,
    /// Number of vectors in the range.
    pub count: u32,
}
/// IRQ-set data: none; act on the whole range.
pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// IRQ-set data: one `u8` boolean per vector.
pub const VFIO_IRQ_SET_DATA_BOOL: u32 = 1 << 1;
/// IRQ-set data: one `i32` eventfd per vector, -1 to unassign.
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// IRQ-set action: mask the interrupts.
pub const VFIO_IRQ_SET_ACTION_MASK: u32 = 1 << 3;
/// IRQ-set action: unmask the interrupts.
pub const VFIO_IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
/// IRQ-set action: trigger (signal) the interrupts, or bind their eventfds.
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// Configures signalling, masking or unmasking of interrupts with a [`vfio_irq_set`].
pub const VFIO_DEVICE_SET_IRQS: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 10);
/// Mask of the `VFIO_IRQ_SET_DATA_*` bits.
pub const VFIO_IRQ_SET_DATA_TYPE_MASK: u32 =
    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
/// Mask of the `VFIO_IRQ_SET_ACTION_*` bits.
pub const VFIO_IRQ_SET_ACTION_TYPE_MASK: u32 =
    VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;
/// Resets the device.
pub const VFIO_DEVICE_RESET: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 11);

// ---------------------------------------------------------------------------------------------
// Fixed region and IRQ indices of vfio-pci and vfio-ccw
// ---------------------------------------------------------------------------------------------

/// vfio-pci region index of BAR 0.
pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
/// vfio-pci region index of BAR 1.
pub const VFIO_PCI_BAR1_REGION_INDEX: u32 = 1;
/// vfio-pci region index of BAR 2.
pub const VFIO_PCI_BAR2_REGION_INDEX: u32 = 2;
/// vfio-pci region index of BAR 3.
pub const VFIO_PCI_BAR3_REGION_INDEX: u32 = 3;
/// vfio-pci region index of BAR 4.
pub const VFIO_PCI_BAR4_REGION_INDEX: u32 = 4;
/// vfio-pci region index of BAR 5.
pub const VFIO_PCI_BAR5_REGION_INDEX: u32 = 5;
/// vfio-pci region index of the expansion ROM.
pub const VFIO_PCI_ROM_REGION_INDEX: u32 = 6;
/// vfio-pci region index of PCI config space.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// vfio-pci region index of the legacy VGA ranges.
pub const VFIO_PCI_VGA_REGION_INDEX: u32 = 8;
/// Number of fixed vfio-pci regions; higher indices are described by a type capability.
pub const VFIO_PCI_NUM_REGIONS: u32 = 9;

/// vfio-pci IRQ index of legacy INTx.
pub const VFIO_PCI_INTX_IRQ_INDEX: u32 = 0;
/// vfio-pci IRQ index of MSI.
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
/// vfio-pci IRQ index of MSI-X.
pub const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
/// vfio-pci IRQ index of the AER error notification.
pub const VFIO_PCI_ERR_IRQ_INDEX: u32 = 3;
/// vfio-pci IRQ index of the device-release request notification.
pub const VFIO_PCI_REQ_IRQ_INDEX: u32 = 4;
/// Number of vfio-pci IRQ indices.
pub const VFIO_PCI_NUM_IRQS: u32 = 5;

/// vfio-ccw region index of the I/O region.
pub const VFIO_CCW_CONFIG_REGION_INDEX: u32 = 0;
/// Number of fixed vfio-ccw regions.
pub const VFIO_CCW_NUM_REGIONS: u32 = 1;

/// vfio-ccw IRQ index of I/O completion.
pub const VFIO_CCW_IO_IRQ_INDEX: u32 = 0;
/// vfio-ccw IRQ index of channel report words.
pub const VFIO_CCW_CRW_IRQ_INDEX: u32 = 1;
/// vfio-ccw IRQ index of the device-release request notification.
pub const VFIO_CCW_REQ_IRQ_INDEX: u32 = 2;
/// Number of vfio-ccw IRQ indices.
pub const VFIO_CCW_NUM_IRQS: u32 = 3;

/// vfio-ap IRQ index of the device-release request notification.
pub const VFIO_AP_REQ_IRQ_INDEX: u32 = 0;
/// Number of vfio-ap IRQ indices.
pub const VFIO_AP_NUM_IRQS: u32 = 1;

// ---------------------------------------------------------------------------------------------
// PCI hot reset
// ---------------------------------------------------------------------------------------------

/// One device affected by a PCI hot reset.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_pci_dependent_device {
    /// IOMMU group of the device; with [`VFIO_PCI_HOT_RESET_FLAG_DEV_ID`] in the info's flags
    /// (a cdev device), its iommufd device id instead, or [`VFIO_PCI_DEVID_NOT_OWNED`]. (C: an
    /// anonymous union of `group_id` and `devid`, both `__u32`.)
    pub group_id: u32,
    /// PCI segment (domain).
    pub segment: u16,
    /// PCI bus number.
    pub bus: u8,
    /// PCI device and function number.
    pub devfn: u8,
}

/// Argument of `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`, header part.
///
/// In memory it is followed by `count` [`vfio_pci_dependent_device`] (C: `devices[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_pci_hot_reset_info {
    /// Size of the struct plus room for the devices.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Number of dependent devices (filled in even when they do not fit).
    pub count: u32,
}
/// [`vfio_pci_dependent_device::group_id`] as a device id: an affected device this iommufd
/// does not have open (so a hot reset is refused).
pub const VFIO_PCI_DEVID_NOT_OWNED: u32 = u32::MAX;
/// [`vfio_pci_dependent_device::group_id`] as a device id: an affected device this iommufd
/// owns that has no id yet (opened but not bound).
pub const VFIO_PCI_DEVID_OWNED: u32 = 0;
/// Hot reset info flag: the entries carry device ids (the device was opened through its cdev).
pub const VFIO_PCI_HOT_RESET_FLAG_DEV_ID: u32 = 1 << 0;
/// Hot reset info flag: every affected device is owned by the caller's iommufd.
pub const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED: u32 = 1 << 1;
/// Lists the devices a PCI hot reset of this device would affect.
pub const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 12);

/// Argument of `VFIO_DEVICE_PCI_HOT_RESET`, header part.
///
/// In memory it is followed by `count` `i32` group fds (C: `group_fds[]`).
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_pci_hot_reset {
    /// Size of the struct plus its group fds.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Number of group fds that follow.
    pub count: u32,
}
/// Performs a PCI hot reset, proving ownership of every affected group by fd.
pub const VFIO_DEVICE_PCI_HOT_RESET: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 13);

// ---------------------------------------------------------------------------------------------
// Device cdev and iommufd (Linux 6.6+; `/dev/vfio/devices/vfioN`)
// ---------------------------------------------------------------------------------------------

/// Argument of [`VFIO_DEVICE_BIND_IOMMUFD`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_bind_iommufd {
    /// Size of this struct.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The `/dev/iommu` fd to bind to.
    pub iommufd: i32,
    /// Output: the device's id in that iommufd.
    pub out_devid: u32,
}
/// Binds a device cdev to an iommufd (required before any other device ioctl on the cdev).
pub const VFIO_DEVICE_BIND_IOMMUFD: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 18);

/// Argument of [`VFIO_DEVICE_ATTACH_IOMMUFD_PT`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_attach_iommufd_pt {
    /// Size of this struct.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// In: an IOAS or HWPT id; out: the HWPT the device is attached to.
    pub pt_id: u32,
}
/// Attaches a bound device to an IOAS or HWPT (or replaces its attachment).
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 19);

/// Argument of [`VFIO_DEVICE_DETACH_IOMMUFD_PT`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_detach_iommufd_pt {
    /// Size of this struct.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
}
/// Detaches a bound device from its IOAS or HWPT.
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 20);

// ---------------------------------------------------------------------------------------------
// Mediated graphics
// ---------------------------------------------------------------------------------------------

/// The anonymous union at the end of [`vfio_device_gfx_plane_info`].
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub union vfio_device_gfx_plane_info_u {
    /// Region holding the plane, with [`VFIO_GFX_PLANE_TYPE_REGION`].
    pub region_index: u32,
    /// Dma-buf ID of the plane, with [`VFIO_GFX_PLANE_TYPE_DMABUF`].
    pub dmabuf_id: u32,
}

impl vfio_device_gfx_plane_info_u {
    /// The union's value, whichever member it was written as.
    fn bits(&self) -> u32 {
        // SAFETY: both members are `u32` covering the whole union, so the storage always holds
        // an initialised `u32` and any bit pattern is valid.
        unsafe { self.region_index }
    }
}

impl Default for vfio_device_gfx_plane_info_u {
    fn default() -> Self {
        Self { region_index: 0 }
    }
}

impl PartialEq for vfio_device_gfx_plane_info_u {
    fn eq(&self, other: &Self) -> bool {
        self.bits() == other.bits()
    }
}

impl Eq for vfio_device_gfx_plane_info_u {}

impl fmt::Debug for vfio_device_gfx_plane_info_u {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("vfio_device_gfx_plane_info_u")
            .field("region_index_or_dmabuf_id", &self.bits())
            .finish()
    }
}

/// Argument of `VFIO_DEVICE_QUERY_GFX_PLANE`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
pub struct vfio_device_gfx_plane_info {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_GFX_PLANE_TYPE_*` bits.
    pub flags: u32,
    /// Plane to query (`DRM_PLANE_TYPE_*`).
    pub drm_plane_type: u32,
    /// DRM fourcc format of the plane.
    pub drm_format: u32,
    /// DRM format modifier (tiling).
    pub drm_format_mod: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line.
    pub stride: u32,
    /// Size in bytes, page aligned.
    pub size: u32,
    /// Horizontal position of a cursor plane.
    pub x_pos: u32,
    /// Vertical position of a cursor plane.
    pub y_pos: u32,
    /// Horizontal cursor hotspot, `0xFFFF_FFFF` if unknown.
    pub x_hot: u32,
    /// Vertical cursor hotspot, `0xFFFF_FFFF` if unknown.
    pub y_hot: u32,
    /// C anonymous union: `region_index` or `dmabuf_id`, depending on `flags`.
    pub u: vfio_device_gfx_plane_info_u,
    /// Reserved, zero (6.x names the former implicit padding).
    pub reserved: u32,
}
/// Graphics plane flag: only probe whether the given plane type is supported.
pub const VFIO_GFX_PLANE_TYPE_PROBE: u32 = 1 << 0;
/// Graphics plane flag: the plane is exported as a dma-buf.
pub const VFIO_GFX_PLANE_TYPE_DMABUF: u32 = 1 << 1;
/// Graphics plane flag: the plane lives in a device region.
pub const VFIO_GFX_PLANE_TYPE_REGION: u32 = 1 << 2;
/// Describes a guest display plane with a [`vfio_device_gfx_plane_info`].
pub const VFIO_DEVICE_QUERY_GFX_PLANE: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 14);
/// Returns a dma-buf fd for a `u32` dma-buf ID obtained from `VFIO_DEVICE_QUERY_GFX_PLANE`.
pub const VFIO_DEVICE_GET_GFX_DMABUF: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 15);

// ---------------------------------------------------------------------------------------------
// ioeventfd
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_IOEVENTFD`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_ioeventfd {
    /// Size of this struct.
    pub argsz: u32,
    /// Exactly one `VFIO_DEVICE_IOEVENTFD_{8,16,32,64}` width bit.
    pub flags: u32,
    /// Device fd offset to write to.
    pub offset: u64,
    /// Value to write.
    pub data: u64,
    /// Eventfd that triggers the write, -1 to remove it.
    pub fd: i32,
    /// Reserved, zero (6.x names the former implicit padding).
    pub reserved: u32,
}
/// ioeventfd width: 1-byte write.
pub const VFIO_DEVICE_IOEVENTFD_8: u32 = 1 << 0;
/// ioeventfd width: 2-byte write.
pub const VFIO_DEVICE_IOEVENTFD_16: u32 = 1 << 1;
/// ioeventfd width: 4-byte write.
pub const VFIO_DEVICE_IOEVENTFD_32: u32 = 1 << 2;
/// ioeventfd width: 8-byte write.
pub const VFIO_DEVICE_IOEVENTFD_64: u32 = 1 << 3;
/// Mask of the ioeventfd width bits.
pub const VFIO_DEVICE_IOEVENTFD_SIZE_MASK: u32 = 0xf;
/// Makes the kernel write `data` at `offset` whenever the eventfd fires.
pub const VFIO_DEVICE_IOEVENTFD: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 16);

// ---------------------------------------------------------------------------------------------
// Device features
// ---------------------------------------------------------------------------------------------

/// Argument of `VFIO_DEVICE_FEATURE`, header part.
///
/// In memory it is followed by the feature's payload (C: `__u8 data[]`), whose layout depends on
/// the feature number in `flags`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature {
    /// Size of the struct plus its payload.
    pub argsz: u32,
    /// Feature number (`VFIO_DEVICE_FEATURE_MASK` bits) plus GET/SET/PROBE bits.
    pub flags: u32,
}
/// Mask of the 16-bit feature number in [`vfio_device_feature::flags`].
pub const VFIO_DEVICE_FEATURE_MASK: u32 = 0xffff;
/// Feature flag: read the feature into the payload.
pub const VFIO_DEVICE_FEATURE_GET: u32 = 1 << 16;
/// Feature flag: write the feature from the payload.
pub const VFIO_DEVICE_FEATURE_SET: u32 = 1 << 17;
/// Feature flag: only check that the feature (and the given GET/SET) is supported.
pub const VFIO_DEVICE_FEATURE_PROBE: u32 = 1 << 18;
/// Gets, sets or probes a device feature with a [`vfio_device_feature`] buffer.
pub const VFIO_DEVICE_FEATURE: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 17);

/// Feature: SR-IOV VF token, a 16-byte UUID shared by PF and VF drivers.
pub const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: u32 = 0;

/// Payload of [`VFIO_DEVICE_FEATURE_MIGRATION`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_migration {
    /// `VFIO_MIGRATION_*` bits.
    pub flags: u64,
}
/// Migration flag: STOP, STOP_COPY and RESUMING states are supported.
pub const VFIO_MIGRATION_STOP_COPY: u64 = 1 << 0;
/// Migration flag: the RUNNING_P2P state is supported as well.
pub const VFIO_MIGRATION_P2P: u64 = 1 << 1;
/// Migration flag: the PRE_COPY (and, with P2P, PRE_COPY_P2P) states are supported.
pub const VFIO_MIGRATION_PRE_COPY: u64 = 1 << 2;
/// Feature: which migration states the device supports.
pub const VFIO_DEVICE_FEATURE_MIGRATION: u32 = 1;

/// Payload of [`VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_mig_state {
    /// Migration state (`VFIO_DEVICE_STATE_*` of `enum vfio_device_mig_state`).
    pub device_state: u32,
    /// Data transfer fd opened by the transition, or -1.
    pub data_fd: i32,
}
/// Feature: read or change the device's migration state.
pub const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: u32 = 2;

/// Migration state (`enum vfio_device_mig_state`): failed, must be reset.
pub const VFIO_DEVICE_STATE_ERROR: u32 = 0;
/// Migration state: stopped, internal state frozen.
pub const VFIO_DEVICE_STATE_STOP: u32 = 1;
/// Migration state: running normally.
pub const VFIO_DEVICE_STATE_RUNNING: u32 = 2;
/// Migration state: stopped, internal state being read out through the data fd.
pub const VFIO_DEVICE_STATE_STOP_COPY: u32 = 3;
/// Migration state: stopped, loading internal state from the data fd.
pub const VFIO_DEVICE_STATE_RESUMING: u32 = 4;
/// Migration state: running, but no new peer-to-peer DMA.
pub const VFIO_DEVICE_STATE_RUNNING_P2P: u32 = 5;
/// Migration state: running, initial state readable through the data fd ahead of STOP_COPY.
pub const VFIO_DEVICE_STATE_PRE_COPY: u32 = 6;
/// Migration state: PRE_COPY without new peer-to-peer DMA.
pub const VFIO_DEVICE_STATE_PRE_COPY_P2P: u32 = 7;
/// One more than the highest migration state.
pub const VFIO_DEVICE_STATE_NR: u32 = 8;

/// Argument of [`VFIO_MIG_GET_PRECOPY_INFO`], issued on the migration data fd.
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_precopy_info {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Bytes of initial state still to read.
    pub initial_bytes: u64,
    /// Bytes of state that changed since, to read.
    pub dirty_bytes: u64,
}
/// Reads how much PRE_COPY data is pending, on the migration data fd.
pub const VFIO_MIG_GET_PRECOPY_INFO: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 21);

/// Feature: allow the device to enter a low power state.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: u32 = 3;

/// Payload of [`VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_low_power_entry_with_wakeup {
    /// Eventfd signalled when the device wakes up.
    pub wakeup_eventfd: i32,
    /// Reserved, zero.
    pub reserved: u32,
}
/// Feature: allow low power, with a wake-up notification eventfd.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: u32 = 4;
/// Feature: leave and disallow low power states.
pub const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: u32 = 5;

/// Payload of [`VFIO_DEVICE_FEATURE_DMA_LOGGING_START`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_dma_logging_control {
    /// Requested tracking granularity; the kernel writes back the one chosen.
    pub page_size: u64,
    /// Number of entries in the `ranges` array.
    pub num_ranges: u32,
    /// Reserved, zero.
    pub __reserved: u32,
    /// User address of an array of [`vfio_device_feature_dma_logging_range`].
    pub ranges: u64,
}

/// One IOVA range to track with DMA logging.
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_dma_logging_range {
    /// Start of the range.
    pub iova: u64,
    /// Length of the range in bytes.
    pub length: u64,
}
/// Feature: start device DMA write logging.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_START: u32 = 6;
/// Feature: stop device DMA write logging.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: u32 = 7;

/// Payload of [`VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_dma_logging_report {
    /// Start of the IOVA range to report.
    pub iova: u64,
    /// Length of the IOVA range in bytes.
    pub length: u64,
    /// Bytes of IOVA covered by one bit of the bitmap.
    pub page_size: u64,
    /// User address of the `u64` bitmap to set bits in.
    pub bitmap: u64,
}
/// Feature: read and clear the device's DMA write log.
pub const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: u32 = 8;

/// Payload of [`VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`].
#[repr(C, align(8))]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_mig_data_size {
    /// Estimated bytes of STOP_COPY data.
    pub stop_copy_length: u64,
}
/// Feature: the estimated size of the STOP_COPY data.
pub const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: u32 = 9;

/// Payload of [`VFIO_DEVICE_FEATURE_BUS_MASTER`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_device_feature_bus_master {
    /// [`VFIO_DEVICE_FEATURE_CLEAR_MASTER`] or [`VFIO_DEVICE_FEATURE_SET_MASTER`].
    pub op: u32,
}
/// [`vfio_device_feature_bus_master::op`]: clear bus mastering.
pub const VFIO_DEVICE_FEATURE_CLEAR_MASTER: u32 = 0;
/// [`vfio_device_feature_bus_master::op`]: set bus mastering.
pub const VFIO_DEVICE_FEATURE_SET_MASTER: u32 = 1;
/// Feature: set or clear bus mastering without config space access (devices whose config
/// space is emulated).
pub const VFIO_DEVICE_FEATURE_BUS_MASTER: u32 = 10;

// ---------------------------------------------------------------------------------------------
// Type1 IOMMU
// ---------------------------------------------------------------------------------------------

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
pub const VFIO_IOMMU_GET_INFO: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 12);

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
pub const VFIO_IOMMU_MAP_DMA: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 13);

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
            data: std::ptr::null_mut(),
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
pub const VFIO_IOMMU_UNMAP_DMA: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 14);

/// Enables the container's IOMMU (sPAPR); takes no argument.
pub const VFIO_IOMMU_ENABLE: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 15);
/// Disables the container's IOMMU (sPAPR); takes no argument.
pub const VFIO_IOMMU_DISABLE: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 16);

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
pub const VFIO_IOMMU_DIRTY_PAGES: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 17);

// ---------------------------------------------------------------------------------------------
// sPAPR TCE IOMMU (POWER)
// ---------------------------------------------------------------------------------------------

/// Dynamic DMA window capabilities of an sPAPR TCE IOMMU.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_ddw_info {
    /// Bitmap of supported IOMMU page sizes.
    pub pgsizes: u64,
    /// Most dynamic windows the platform can create.
    pub max_dynamic_windows_supported: u32,
    /// Most levels a multi-level TCE table may have.
    pub levels: u32,
}

/// Argument of `VFIO_IOMMU_SPAPR_TCE_GET_INFO`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_info {
    /// Size of this struct, set by the caller.
    pub argsz: u32,
    /// `VFIO_IOMMU_SPAPR_INFO_*` bits.
    pub flags: u32,
    /// PCI bus address where the default 32-bit DMA window starts.
    pub dma32_window_start: u32,
    /// Size of the default 32-bit DMA window in bytes.
    pub dma32_window_size: u32,
    /// Dynamic DMA window details, valid with [`VFIO_IOMMU_SPAPR_INFO_DDW`].
    pub ddw: vfio_iommu_spapr_tce_ddw_info,
}
/// sPAPR info flag: dynamic DMA windows are supported.
pub const VFIO_IOMMU_SPAPR_INFO_DDW: u32 = 1 << 0;
/// Reads sPAPR TCE IOMMU information into a [`vfio_iommu_spapr_tce_info`].
pub const VFIO_IOMMU_SPAPR_TCE_GET_INFO: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 12);

/// EEH error to inject, for [`VFIO_EEH_PE_INJECT_ERR`].
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_eeh_pe_err {
    /// Error type.
    pub r#type: u32,
    /// Error function.
    pub func: u32,
    /// Address the error applies to.
    pub addr: u64,
    /// Address mask.
    pub mask: u64,
}

/// The anonymous union at the end of [`vfio_eeh_pe_op`].
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub union vfio_eeh_pe_op_u {
    /// Error description for [`VFIO_EEH_PE_INJECT_ERR`].
    pub err: vfio_eeh_pe_err,
}

impl vfio_eeh_pe_op_u {
    /// The union's only member.
    fn err(&self) -> vfio_eeh_pe_err {
        // SAFETY: `err` is the only member and fills the whole union; it is made of integers
        // without padding, so any bit pattern is a valid value.
        unsafe { self.err }
    }
}

impl Default for vfio_eeh_pe_op_u {
    fn default() -> Self {
        Self {
            err: vfio_eeh_pe_err::default(),
        }
    }
}

impl PartialEq for vfio_eeh_pe_op_u {
    fn eq(&self, other: &Self) -> bool {
        self.err() == other.err()
    }
}

impl Eq for vfio_eeh_pe_op_u {}

impl fmt::Debug for vfio_eeh_pe_op_u {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("vfio_eeh_pe_op_u")
            .field("err", &self.err())
            .finish()
    }
}

/// Argument of `VFIO_EEH_PE_OP`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, Immutable, KnownLayout)]
pub struct vfio_eeh_pe_op {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Operation, `VFIO_EEH_PE_*`.
    pub op: u32,
    /// C anonymous union holding `err`.
    pub u: vfio_eeh_pe_op_u,
}

/// EEH operation: disable EEH.
pub const VFIO_EEH_PE_DISABLE: u32 = 0;
/// EEH operation: enable EEH.
pub const VFIO_EEH_PE_ENABLE: u32 = 1;
/// EEH operation: re-enable I/O of a frozen PE.
pub const VFIO_EEH_PE_UNFREEZE_IO: u32 = 2;
/// EEH operation: re-enable DMA of a frozen PE.
pub const VFIO_EEH_PE_UNFREEZE_DMA: u32 = 3;
/// EEH operation: return the PE state (`VFIO_EEH_PE_STATE_*`) as the ioctl result.
pub const VFIO_EEH_PE_GET_STATE: u32 = 4;
/// EEH PE state: working normally.
pub const VFIO_EEH_PE_STATE_NORMAL: i32 = 0;
/// EEH PE state: reset in progress.
pub const VFIO_EEH_PE_STATE_RESET: i32 = 1;
/// EEH PE state: DMA and I/O stopped.
pub const VFIO_EEH_PE_STATE_STOPPED: i32 = 2;
/// EEH PE state: DMA stopped.
pub const VFIO_EEH_PE_STATE_STOPPED_DMA: i32 = 4;
/// EEH PE state: unavailable.
pub const VFIO_EEH_PE_STATE_UNAVAIL: i32 = 5;
/// EEH operation: deassert PE reset.
pub const VFIO_EEH_PE_RESET_DEACTIVATE: u32 = 5;
/// EEH operation: hot reset.
pub const VFIO_EEH_PE_RESET_HOT: u32 = 6;
/// EEH operation: fundamental reset.
pub const VFIO_EEH_PE_RESET_FUNDAMENTAL: u32 = 7;
/// EEH operation: reconfigure the PE after a reset.
pub const VFIO_EEH_PE_CONFIGURE: u32 = 8;
/// EEH operation: inject the error described in `err`.
pub const VFIO_EEH_PE_INJECT_ERR: u32 = 9;
/// Performs an EEH operation on the container's PE with a [`vfio_eeh_pe_op`].
pub const VFIO_EEH_PE_OP: IoctlRequest = nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 21);

/// Argument of `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` and `..._UNREGISTER_MEMORY`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_register_memory {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Process virtual address of the memory.
    pub vaddr: u64,
    /// Length in bytes.
    pub size: u64,
}
/// Pins and accounts user memory for later sPAPR DMA mapping.
pub const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 17);
/// Releases memory registered with `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`.
pub const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 18);

/// Argument of `VFIO_IOMMU_SPAPR_TCE_CREATE`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_create {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// IOMMU page shift of the new window (input).
    pub page_shift: u32,
    /// Reserved.
    pub __resv1: u32,
    /// Size of the new window in bytes (input).
    pub window_size: u64,
    /// Levels of the TCE table (input).
    pub levels: u32,
    /// Reserved.
    pub __resv2: u32,
    /// PCI bus address where the new window starts (output).
    pub start_addr: u64,
}
/// Creates an additional sPAPR DMA window with a [`vfio_iommu_spapr_tce_create`].
pub const VFIO_IOMMU_SPAPR_TCE_CREATE: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 19);

/// Argument of `VFIO_IOMMU_SPAPR_TCE_REMOVE`.
#[repr(C)]
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct vfio_iommu_spapr_tce_remove {
    /// Size of this struct.
    pub argsz: u32,
    /// No flags are defined.
    pub flags: u32,
    /// Start address identifying the window to remove.
    pub start_addr: u64,
}
/// Removes an sPAPR DMA window created with `VFIO_IOMMU_SPAPR_TCE_CREATE`.
pub const VFIO_IOMMU_SPAPR_TCE_REMOVE: IoctlRequest =
    nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 20);
