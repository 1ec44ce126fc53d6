//! `<linux/vfio.h>`: constants, structs and ioctl numbers under the kernel's names.
//!
//! This module is a hand-written transcription of the Linux VFIO uAPI header of 6.12 (checked
//! against the headers of the kernel source the project's test kernel is built from; everything
//! of 6.1 is unchanged, 6.12 only adds). Every item keeps the kernel's spelling, so `grep VFIO_IRQ_SET_DATA_EVENTFD`
//! finds the same thing in this module and in `include/uapi/linux/vfio.h`. Nothing here is typed
//! or checked; the safe layers above add bitflags, enums and buffer handling.
//!
//! # ioctl requests
//!
//! Every VFIO ioctl is defined as `_IO(VFIO_TYPE, VFIO_BASE + n)`: no direction and no argument
//! size are encoded in the number, because each argument struct starts with an `argsz` field that
//! carries its length instead. The numbers are built as `<asm-generic/ioctl.h>`'s `_IO` does, so they
//! are right for the target architecture (the `_IOC` bit layout differs between x86, PowerPC, MIPS,
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
//! use uvfio_uapi::vfio::vfio_device_info;
//! use zerocopy::IntoBytes;
//! let info = vfio_device_info { argsz: 40, ..Default::default() };
//! assert_eq!(&info.as_bytes()[..4], &40u32.to_ne_bytes());
//! ```
//!
//! A padded one is not (padded structs once were, as the crate's own `Pod`, and their
//! uninitialised padding reached a `&[u8]`):
//!
//! ```compile_fail,E0277
//! use uvfio_uapi::vfio::vfio_iommu_type1_info_cap_migration;
//! use zerocopy::IntoBytes;
//! let cap = vfio_iommu_type1_info_cap_migration::default();
//! let _padding_too = cap.as_bytes(); // bytes 12..16 are padding
//! ```
//!
//! nor is one with a union whose members differ in what bytes they cover:
//!
//! ```compile_fail,E0277
//! use uvfio_uapi::vfio::vfio_device_gfx_plane_info;
//! use zerocopy::IntoBytes;
//! let _ = vfio_device_gfx_plane_info::default().as_bytes();
//! ```
//!
//! The 6.12 header names what was padding in 6.1 in `vfio_iommu_type1_info` (`pad`),
//! `vfio_device_ioeventfd` and `vfio_device_gfx_plane_info` (`reserved`); the first two are
//! therefore plain bytes now.
//!
//! The ABI test (`tests/abi/`) compiles a C program against that header and compares every
//! size, alignment, field offset, field type, constant and request number with this module,
//! reading all of its files.
//!
//! Some structs grew an explicit `pad`/`reserved` field in 6.x where older headers had implicit
//! padding ([`vfio_device_info`], [`vfio_iommu_type1_info`], [`vfio_device_ioeventfd`],
//! [`vfio_device_gfx_plane_info`]); the layouts are the same except [`vfio_device_info`], which
//! 6.1 kernels treat as 20 bytes (their capability chain starts at offset 20).
//!
//! # Files
//!
//! The items live in files grouped as the header groups them, all re-exported here: this file
//! (API version, extensions, the capability header, container and group ioctls), `device.rs`
//! (device info, regions, interrupts, reset, the vfio-pci and vfio-ccw indices, PCI hot reset,
//! ioeventfd), `cdev.rs` (the device cdev and iommufd), `gfx.rs` (mediated graphics),
//! `feature.rs` (device features: migration, low power, DMA logging, bus master), `type1.rs`
//! (the Type1 IOMMU) and `spapr.rs` (the sPAPR TCE IOMMU).
//!
//! # Safety
//!
//! The only `unsafe` code here reads union members, in the hand-written `Debug` and `PartialEq`
//! impls of the two unions. The member read is plain integer data without padding that covers
//! the whole union, so whichever member was written last, every bit pattern is a valid value.

#![allow(non_camel_case_types)]

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

mod cdev;
mod device;
mod feature;
mod gfx;
mod spapr;
mod type1;

pub use cdev::*;
pub use device::*;
pub use feature::*;
pub use gfx::*;
pub use spapr::*;
pub use type1::*;

/// The integer type of an ioctl request number here: `c_ulong` on glibc, `c_int` on musl and
/// Android (what `ioctl(2)` takes there).
#[cfg(not(any(target_env = "musl", target_os = "android")))]
pub type IoctlRequest = core::ffi::c_ulong;
/// The integer type of an ioctl request number here: `c_ulong` on glibc, `c_int` on musl and
/// Android (what `ioctl(2)` takes there).
#[cfg(any(target_env = "musl", target_os = "android"))]
pub type IoctlRequest = core::ffi::c_int;

/// `_IO(ty, nr)` of `<asm-generic/ioctl.h>`: no direction, no size. The "none" direction is 0
/// on most architectures and 1 (at bit 29) on PowerPC, MIPS and SPARC.
pub(crate) const fn request_none(ty: u8, nr: u8) -> IoctlRequest {
    const NONE: IoctlRequest = if cfg!(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )) {
        1 << 29
    } else {
        0
    };
    NONE | ((ty as IoctlRequest) << 8) | nr as IoctlRequest
}

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
pub const VFIO_GET_API_VERSION: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 0);
/// Asks whether an extension (IOMMU type or feature) is supported; positive means yes.
pub const VFIO_CHECK_EXTENSION: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 1);
/// Selects the IOMMU backend of a container once a group is attached.
pub const VFIO_SET_IOMMU: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 2);

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
pub const VFIO_GROUP_GET_STATUS: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 3);
/// Attaches a group to the container whose fd is passed by pointer.
pub const VFIO_GROUP_SET_CONTAINER: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 4);
/// Detaches a group from its container.
pub const VFIO_GROUP_UNSET_CONTAINER: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 5);
/// Opens a device of the group by name (NUL-terminated string) and returns its fd.
pub const VFIO_GROUP_GET_DEVICE_FD: IoctlRequest = request_none(VFIO_TYPE, VFIO_BASE + 6);
