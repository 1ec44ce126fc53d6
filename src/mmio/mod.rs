//! Device register access: a region's mappings, with checked volatile accessors and a
//! `pread`/`pwrite` fallback behind one API.
//!
//! [`Device::region`] returns a [`Region`]: the parts of a VFIO region the kernel lets
//! userspace `mmap`, mapped, and everything else reached through `pread`/`pwrite` on the device
//! fd. A driver calls [`Region::read_u32`] and friends and does not care which path serves a
//! given offset.
//!
//! ```no_run
//! use uvfio::device::RegionIndex;
//! # let device: uvfio::Device = unimplemented!();
//! device.pci_config()?.enable_memory_space()?;
//! let bar0 = device.region(RegionIndex::BAR0)?;
//! let status = bar0.read_u32(0x8)?; // e1000e STATUS
//! bar0.write_u32(0xd8, 0xffff_ffff)?; // IMC: mask every interrupt cause
//! # Ok::<(), uvfio::Error>(())
//! ```
//!
//! # What is mapped
//!
//! Exactly what the kernel offers, and nothing it did not:
//! - a region without `VFIO_REGION_INFO_FLAG_MMAP` (config space, the ROM, I/O-port BARs, most
//!   vendor regions) is not mapped at all;
//! - a region with the sparse-mmap capability is mapped only in those areas;
//! - otherwise the whole region is mapped, sub-page BARs included (the kernel reserves the rest
//!   of the page; accesses still stop at the region's size);
//! - the MSI-X table and pending-bit array of a BAR are left out, in whole host pages, unless
//!   [`MapOptions::map_msix`] asks for them *and* the kernel reports
//!   `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`. vfio-pci owns those structures (the interrupt API
//!   programs them); through `pread`/`pwrite` the table reads as all ones and writes to it are
//!   dropped, which is what a driver should see;
//! - the protection follows the region's flags: read-write, read-only or write-only.
//!
//! The kernel's areas are checked (inside the region, page-aligned, not overlapping) or refused
//! as [`Error::Malformed`]; if one of several mmaps fails, those already made are unmapped
//! before the error is returned. Mappings are unmapped when the `Region` is dropped; the
//! `Region` holds a [`Device`] handle, so the device stays open as long as any of its regions.
//!
//! # Accesses
//!
//! The typed accessors read and write little-endian device registers: `read_u32(off)` returns
//! the host-order value of the 4 bytes at `off`. Each is one access of exactly that width,
//! which must be naturally aligned and inside the region, or a typed error comes back and the
//! device is not touched. Through a mapping it is one volatile load or store; through the fd
//! it is one `pread`/`pwrite` of that size (Linux 6.1's vfio-pci splits an 8-byte one into two
//! 4-byte device accesses; later kernels do not).
//!
//! [`Region::read_bytes`]/[`Region::write_bytes`] copy any range, in 4-byte accesses where
//! aligned and 2- or 1-byte ones at the edges, which is also what the kernel does for the
//! `pread` path, so both paths look the same to the device.
//!
//! # Memory decoding, resets and SIGBUS
//!
//! vfio-pci blocks a BAR while the device's memory decoding is off (the command register's
//! [`Command::MEMORY`](crate::pci::config::Command::MEMORY) bit), while the device is in a
//! low-power state, and during a reset: `pread`/`pwrite` then fail with `EIO`, and an access
//! through a mapping raises `SIGBUS`, which ends the process. After a reset the kernel faults
//! the mapping back in transparently (the access waits for the reset to finish).
//!
//! So that no accessor can raise `SIGBUS`, the crate keeps memory decoding on while a
//! [`Region`] of the device has a mapped BAR (the state is shared by every fd of the device):
//!
//! - making such a region turns decoding on if it is off;
//! - a config-space write through the crate ([`PciConfig`](crate::pci::config::PciConfig)'s
//!   accessors, or any [`Region`] of the config region, by any width) that would clear the
//!   memory bit is refused with `EBUSY` while one exists;
//! - [`PciConfig::memory_decoding_off`](crate::pci::config::PciConfig::memory_decoding_off)
//!   turns decoding off only when none exists, and no mapped BAR can be made until its guard
//!   drops.
//!
//! What remains outside the crate's control, and can still end the process with `SIGBUS`
//! through a mapped accessor: a raw `pwrite` of the command register on the device fd (from
//! [`AsFd`](std::os::fd::AsFd)) or through the device's sysfs `config` file; a low-power state
//! (D3, from [`Device::low_power_entry`] or a write of the power-management control register)
//! while a mapped BAR is accessed, which this crate does not guard yet; and the device
//! disappearing (hot-unplug or surprise removal, after which vfio-pci revokes the mappings).

//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_GET_REGION_INFO`,
//!   `VFIO_REGION_INFO_CAP_SPARSE_MMAP`, `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`
//! - Linux `drivers/vfio/pci/vfio_pci_rdwr.c` (`pread`/`pwrite` of BARs) and
//!   `vfio_pci_core.c` (`vfio_pci_core_mmap`)

#[cfg(doc)]
use crate::{Device, Error};

mod backing;
mod copy;
pub(crate) mod decoding;
mod map;
mod options;
mod plan;
mod raw;
mod region;
mod register;

pub use options::MapOptions;
pub use region::Region;
pub use register::Register;

#[cfg(test)]
mod tests;
