//! [`MapOptions`]: how a region is mapped.

#[cfg(doc)]
use crate::{Device, Error};

/// How [`Device::region_with`] maps a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    pub(super) policy: Policy,
    pub(super) msix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    Auto,
    Never,
    Required,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

impl MapOptions {
    /// The default: map what the kernel offers (minus the MSI-X structures), serve the rest
    /// with `pread`/`pwrite`.
    pub fn new() -> Self {
        MapOptions {
            policy: Policy::Auto,
            msix: false,
        }
    }

    /// Map nothing: every access is a `pread`/`pwrite`.
    pub fn never_map(&mut self) -> &mut Self {
        self.policy = Policy::Never;
        self
    }

    /// Fail with [`Error::NotSupported`] unless the kernel lets at least part of the region be
    /// mapped (the region has `VFIO_REGION_INFO_FLAG_MMAP`).
    pub fn require_map(&mut self) -> &mut Self {
        self.policy = Policy::Required;
        self
    }

    /// Also map the MSI-X table and PBA, where the kernel reports them mappable
    /// (`VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`). Off by default: vfio-pci programs those
    /// structures, and a driver writing them directly breaks its interrupts.
    pub fn map_msix(&mut self, map: bool) -> &mut Self {
        self.msix = map;
        self
    }
}
