//! Regions: `VFIO_DEVICE_GET_REGION_INFO` and the region capabilities.
//!
//! A region is a window of the device fd (a PCI BAR, the config space, the ROM, a vendor region),
//! at a fixed offset of the fd, readable with `pread`/`pwrite` and, where the kernel allows it,
//! mappable with `mmap`, wholly or only in the areas of its sparse-mmap capability.
//!
//! Regions are always looked up by the kernel's index ([`RegionIndex`]), never by position in a
//! list: indexes can have holes (the VGA index of a device without VGA).

use std::fmt;

use super::Device;
use crate::error::{Errno, Error, Malformation, Object, Result};
use crate::uapi::buf::read_pod;
use crate::uapi::caps::{self, Cap};
use crate::uapi::vfio;

pub use crate::uapi::caps::{RegionCap, SparseArea};

bitflags::bitflags! {
    /// `vfio_region_info.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct RegionFlags: u32 {
        /// `VFIO_REGION_INFO_FLAG_READ`: the region can be read.
        const READ = vfio::VFIO_REGION_INFO_FLAG_READ;
        /// `VFIO_REGION_INFO_FLAG_WRITE`: the region can be written.
        const WRITE = vfio::VFIO_REGION_INFO_FLAG_WRITE;
        /// `VFIO_REGION_INFO_FLAG_MMAP`: the region (or its sparse areas) can be mmapped.
        const MMAP = vfio::VFIO_REGION_INFO_FLAG_MMAP;
        /// `VFIO_REGION_INFO_FLAG_CAPS`: the info carries a capability chain.
        const CAPS = vfio::VFIO_REGION_INFO_FLAG_CAPS;
        // Flags a newer kernel may add are kept, not dropped.
        const _ = !0;
    }
}

/// A region index, as the kernel numbers them. For vfio-pci devices the named constants apply;
/// other buses and vendor regions use other numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionIndex(pub u32);

impl RegionIndex {
    /// `VFIO_PCI_BAR0_REGION_INDEX`.
    pub const BAR0: RegionIndex = RegionIndex(vfio::VFIO_PCI_BAR0_REGION_INDEX);
    /// `VFIO_PCI_BAR1_REGION_INDEX`.
    pub const BAR1: RegionIndex = RegionIndex(vfio::VFIO_PCI_BAR1_REGION_INDEX);
    /// `VFIO_PCI_BAR2_REGION_INDEX`.
    pub const BAR2: RegionIndex = RegionIndex(vfio::VFIO_PCI_BAR2_REGION_INDEX);
    /// `VFIO_PCI_BAR3_REGION_INDEX`.
    pub const BAR3: RegionIndex = RegionIndex(vfio::VFIO_PCI_BAR3_REGION_INDEX);
    /// `VFIO_PCI_BAR4_REGION_INDEX`.
    pub const BAR4: RegionIndex = RegionIndex(vfio::VFIO_PCI_BAR4_REGION_INDEX);
    /// `VFIO_PCI_BAR5_REGION_INDEX`.
    pub const BAR5: RegionIndex = RegionIndex(vfio::VFIO_PCI_BAR5_REGION_INDEX);
    /// `VFIO_PCI_ROM_REGION_INDEX`.
    pub const ROM: RegionIndex = RegionIndex(vfio::VFIO_PCI_ROM_REGION_INDEX);
    /// `VFIO_PCI_CONFIG_REGION_INDEX`.
    pub const CONFIG: RegionIndex = RegionIndex(vfio::VFIO_PCI_CONFIG_REGION_INDEX);
    /// `VFIO_PCI_VGA_REGION_INDEX`.
    pub const VGA: RegionIndex = RegionIndex(vfio::VFIO_PCI_VGA_REGION_INDEX);

    /// BAR `n` (0..=5) of a PCI device.
    pub fn bar(n: u32) -> Option<RegionIndex> {
        (n <= 5).then_some(RegionIndex(vfio::VFIO_PCI_BAR0_REGION_INDEX + n))
    }

    /// The vfio-pci name of this index (`"BAR0"`, `"CONFIG"`, ...), or `None` for indexes past
    /// the fixed ones (device-specific regions).
    pub fn pci_name(self) -> Option<&'static str> {
        const NAMES: [&str; 9] = [
            "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA",
        ];
        NAMES.get(self.0 as usize).copied()
    }
}

impl From<u32> for RegionIndex {
    fn from(i: u32) -> Self {
        RegionIndex(i)
    }
}

impl fmt::Display for RegionIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `VFIO_DEVICE_GET_REGION_INFO`: one region of a device, with its parsed capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// The region's index.
    pub index: RegionIndex,
    /// What the region supports.
    pub flags: RegionFlags,
    /// The region's size in bytes (0 for an absent BAR).
    pub size: u64,
    /// Where the region starts in the device fd (for `pread`/`pwrite`/`mmap`).
    pub offset: u64,
    /// The region's capabilities, in chain order.
    pub caps: Vec<RegionCap>,
}

impl RegionInfo {
    /// Decodes the answer of `VFIO_DEVICE_GET_REGION_INFO` for region `index`: the bytes of a
    /// `struct vfio_region_info` (32 bytes) followed by its capability chain, as the kernel
    /// filled them (native byte order). [`Device::region_info`] asks the kernel and decodes with
    /// this; it is public so that captured answers (logs, bug reports, fuzzing corpora) can be
    /// decoded without a device. Nothing in `bytes` is trusted: the chain is walked with
    /// [`CapChain`](crate::uapi::caps::CapChain) and every capability decoded with [`RegionCap::decode`].
    ///
    /// # Errors
    ///
    /// [`Malformation::Other`] when `bytes` is shorter than the fixed part or describes another
    /// region than `index`; [`Malformation::CapChain`] for a broken chain or capability (only
    /// read when the flags have `VFIO_REGION_INFO_FLAG_CAPS`).
    #[doc(alias = "vfio_region_info")]
    pub fn decode(index: u32, bytes: &[u8]) -> std::result::Result<RegionInfo, Malformation> {
        let fixed = std::mem::size_of::<vfio::vfio_region_info>();
        let Some(raw) = read_pod::<vfio::vfio_region_info>(bytes, 0) else {
            return Err(Malformation::Other(format!(
                "the answer is {} bytes, shorter than the fixed part",
                bytes.len()
            )));
        };
        let flags = RegionFlags::from_bits_retain(raw.flags);
        let answered = raw.index;
        if answered != index {
            return Err(Malformation::Other(format!(
                "asked for region {index}, the kernel described region {answered}"
            )));
        }
        let mut caps_out = Vec::new();
        if flags.contains(RegionFlags::CAPS) {
            for cap in caps::CapChain::new(bytes, raw.cap_offset, fixed) {
                let cap: Cap<'_> = cap?;
                caps_out.push(RegionCap::decode(&cap)?);
            }
        }
        Ok(RegionInfo {
            index: RegionIndex(index),
            flags,
            size: raw.size,
            offset: raw.offset,
            caps: caps_out,
        })
    }

    /// The sparse-mmap areas, if the region has that capability: only these parts may be
    /// mmapped.
    pub fn sparse_areas(&self) -> Option<&[SparseArea]> {
        self.caps.iter().find_map(|c| match c {
            RegionCap::SparseMmap(areas) => Some(areas.as_slice()),
            _ => None,
        })
    }

    /// Whether the region carries `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`: the MSI-X table inside
    /// it may be mmapped (the host has interrupt remapping).
    pub fn msix_mappable(&self) -> bool {
        self.caps
            .iter()
            .any(|c| matches!(c, RegionCap::MsixMappable))
    }

    /// The `(type, subtype)` of a device-specific region (`VFIO_REGION_INFO_CAP_TYPE`).
    pub fn region_type(&self) -> Option<(u32, u32)> {
        self.caps.iter().find_map(|c| match *c {
            RegionCap::Type { ty, subtype } => Some((ty, subtype)),
            _ => None,
        })
    }

    /// The parts of the region that may be mmapped, as `(offset within the region, size)`:
    /// the sparse areas when the region has them, the whole region when it is mmappable without
    /// them, nothing otherwise.
    pub fn mmap_areas(&self) -> Vec<(u64, u64)> {
        if !self.flags.contains(RegionFlags::MMAP) || self.size == 0 {
            return Vec::new();
        }
        match self.sparse_areas() {
            Some(areas) => areas
                .iter()
                .map(|a| (a.offset, a.size))
                .filter(|&(_, s)| s > 0)
                .collect(),
            None => vec![(0, self.size)],
        }
    }
}

impl Device {
    fn region_object(&self, index: u32) -> Object {
        Object::Region {
            device: self.name().to_string(),
            index,
        }
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for `index`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for an index at or past
    /// [`DeviceInfo::num_regions`](super::DeviceInfo::num_regions), [`Error::Ioctl`] when the kernel
    /// refuses (`EINVAL` for an index the device does not implement, e.g. VGA),
    /// [`Error::Malformed`] for a broken capability chain.
    #[doc(alias = "VFIO_DEVICE_GET_REGION_INFO")]
    pub fn region_info(&self, index: impl Into<RegionIndex>) -> Result<RegionInfo> {
        let index = index.into().0;
        if index >= self.info().num_regions {
            return Err(Error::out_of_range(
                "region_info",
                self.region_object(index),
                format!("the device has {} regions", self.info().num_regions),
            ));
        }
        self.region_info_unchecked(index)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for `index`, even past `num_regions`: for the regions a
    /// graphics plane names (`mdpy` reports 9 regions and keeps its framebuffer at index 16).
    pub(crate) fn region_info_unchecked(&self, index: u32) -> Result<RegionInfo> {
        let buf = self
            .fd()
            .get_region_info(index)
            .map_err(|f| f.on(self.region_object(index)))?;
        RegionInfo::decode(index, buf.bytes()).map_err(|m| {
            Error::malformed("VFIO_DEVICE_GET_REGION_INFO", self.region_object(index), m)
        })
    }

    /// Every region the device implements, each with its kernel index. Indexes the kernel
    /// reports as absent (`EINVAL`, such as VGA on most devices) are skipped; any other error
    /// is returned.
    ///
    /// # Errors
    ///
    /// As [`Device::region_info`], except `EINVAL` from the kernel.
    pub fn regions(&self) -> Result<Vec<RegionInfo>> {
        let mut out = Vec::new();
        for index in 0..self.info().num_regions {
            match self.region_info(index) {
                Ok(info) => out.push(info),
                Err(Error::Ioctl {
                    errno: Errno::EINVAL,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_bytes(
        index: u32,
        flags: u32,
        cap_offset: u32,
        size: u64,
        offset: u64,
        tail: &[u8],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [32 + tail.len() as u32, flags, index, cap_offset] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b.extend_from_slice(&size.to_ne_bytes());
        b.extend_from_slice(&offset.to_ne_bytes());
        b.extend_from_slice(tail);
        b
    }

    fn sparse_cap(areas: &[(u64, u64)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&vfio::VFIO_REGION_INFO_CAP_SPARSE_MMAP.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(areas.len() as u32).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        for &(o, s) in areas {
            b.extend_from_slice(&o.to_ne_bytes());
            b.extend_from_slice(&s.to_ne_bytes());
        }
        b
    }

    #[test]
    fn whole_region_is_mappable_without_sparse_cap() {
        let rw_mmap = vfio::VFIO_REGION_INFO_FLAG_READ
            | vfio::VFIO_REGION_INFO_FLAG_WRITE
            | vfio::VFIO_REGION_INFO_FLAG_MMAP;
        let info = RegionInfo::decode(0, &region_bytes(0, rw_mmap, 0, 0x20000, 0, &[])).unwrap();
        assert_eq!(info.index, RegionIndex::BAR0);
        assert_eq!(info.mmap_areas(), vec![(0, 0x20000)]);
        assert!(info.sparse_areas().is_none());
        assert!(!info.msix_mappable());
    }

    #[test]
    fn sparse_areas_are_the_only_mappable_parts() {
        let flags = vfio::VFIO_REGION_INFO_FLAG_READ
            | vfio::VFIO_REGION_INFO_FLAG_WRITE
            | vfio::VFIO_REGION_INFO_FLAG_MMAP
            | vfio::VFIO_REGION_INFO_FLAG_CAPS;
        let cap = sparse_cap(&[(0, 0x3000), (0x4000, 0x1c000)]);
        let info = RegionInfo::decode(0, &region_bytes(0, flags, 32, 0x20000, 0, &cap)).unwrap();
        assert_eq!(info.mmap_areas(), vec![(0, 0x3000), (0x4000, 0x1c000)]);
    }

    #[test]
    fn region_without_mmap_offers_no_areas_and_mismatched_index_is_rejected() {
        let info = RegionInfo::decode(
            7,
            &region_bytes(7, vfio::VFIO_REGION_INFO_FLAG_READ, 0, 256, 7 << 40, &[]),
        )
        .unwrap();
        assert!(info.mmap_areas().is_empty());
        assert_eq!(info.index.pci_name(), Some("CONFIG"));
        assert!(RegionInfo::decode(1, &region_bytes(7, 0, 0, 0, 0, &[])).is_err());
        assert!(RegionInfo::decode(0, &[0u8; 16]).is_err());
    }

    #[test]
    fn bar_indexes() {
        assert_eq!(RegionIndex::bar(0), Some(RegionIndex::BAR0));
        assert_eq!(RegionIndex::bar(5), Some(RegionIndex::BAR5));
        assert_eq!(RegionIndex::bar(6), None);
        assert_eq!(RegionIndex(42).pci_name(), None);
    }
}
