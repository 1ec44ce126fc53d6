//! The Linux VFIO and iommufd user-space ABI, as Rust definitions: every constant, `#[repr(C)]`
//! struct and ioctl request number of `<linux/vfio.h>` ([`vfio`]) and `<linux/iommufd.h>`
//! ([`iommufd`]) of Linux 6.12, under the kernel's own names.
//!
//! - Complete and current: both headers whole, including the cdev path
//!   (`VFIO_DEVICE_BIND_IOMMUFD`, `ATTACH`/`DETACH_IOMMUFD_PT`), migration v2 with
//!   `PRE_COPY`, DMA logging, hardware page tables, dirty tracking and fault queues.
//! - Checked: the ABI test (`tests/abi`, run with `UVFIO_ABI_HEADERS=<include dir>`) compiles
//!   the kernel's headers with a C compiler and compares every size, alignment, field offset,
//!   constant and request number with these definitions, and fails when a public item of the
//!   Rust side is not checked.
//! - Layout proven, not asserted: structs derive zerocopy's `FromBytes`, `Immutable`,
//!   `KnownLayout`, and `IntoBytes` where they have no padding, so safe code can view them as
//!   bytes and back.
//! - `no_std`, with zerocopy as its only dependency: usable by anything that speaks VFIO, not
//!   only by [uvfio](https://crates.io/crates/uvfio), the safe driver library built on it.
//!
//! Nothing here is typed beyond the C types or checked at run time: this is the raw ABI.
//!
//! ```
//! use uvfio_uapi::vfio::{vfio_iommu_type1_dma_map, VFIO_IOMMU_MAP_DMA, VFIO_API_VERSION};
//!
//! assert_eq!(VFIO_API_VERSION, 0);
//! assert_eq!(size_of::<vfio_iommu_type1_dma_map>(), 32);
//! assert_eq!(VFIO_IOMMU_MAP_DMA & 0xffff, 0x3b71); // _IO(';', 100 + 13)
//! ```
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod iommufd;
pub mod vfio;
