//! PCI on the host: addresses and sysfs.
//!
//! [`PciAddress`] parses and prints the kernel's `domain:bus:device.function` notation, and
//! [`sysfs::Sysfs`] answers the questions a VFIO user has to ask the host before opening a
//! group: which IOMMU group a function is in, which devices share it and what drivers they are
//! bound to, and, for root, binding a function to `vfio-pci` for as long as a
//! [`sysfs::VfioBinding`] lives. [`discover`] lists the functions of the host and those a
//! process can use through VFIO, with their IDs, class, driver and IOMMU group.

pub mod address;
pub mod caps;
pub mod config;
pub mod discover;
pub mod sysfs;

pub use address::PciAddress;
