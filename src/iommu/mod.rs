//! The IOMMU behind a container: what it can map (page sizes, valid IOVA ranges, budget), and
//! the DMA calls of each IOMMU model.
//!
//! - [`type1`]: map and unmap with read/write permissions, unmap-all, vaddr update, dirty page
//!   tracking (x86, Arm, most platforms);
//! - [`spapr`]: POWER's TCE IOMMU (DMA windows, memory pre-registration) and EEH.
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_IOMMU_GET_INFO`, `VFIO_IOMMU_TYPE1_INFO_CAP_*`

use crate::error::Malformation;
use crate::uapi::buf::read_pod;
use crate::uapi::caps::{self, Cap};
use crate::uapi::vfio;

mod dirty;
mod mode;
mod space;
pub mod spapr;
pub mod type1;

pub use crate::uapi::caps::{IommuCap, IovaRange};
pub use dirty::DirtyBitmap;
pub use mode::{IommuMode, ParseIommuModeError};
pub use space::{DmaSpace, IovaReservation};
pub use spapr::{EehPeOp, EehPeState, SpaprDdwInfo, SpaprTceInfo, SpaprWindow};
pub use type1::{coalesce_runs, DmaAccess, DmaRun};

bitflags::bitflags! {
    /// `vfio_iommu_type1_info.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct IommuInfoFlags: u32 {
        /// `VFIO_IOMMU_INFO_PGSIZES`: `iova_pgsizes` is valid.
        const PGSIZES = vfio::VFIO_IOMMU_INFO_PGSIZES;
        /// `VFIO_IOMMU_INFO_CAPS`: the info carries a capability chain.
        const CAPS = vfio::VFIO_IOMMU_INFO_CAPS;
        // Flags a newer kernel may add are kept, not dropped.
        const _ = !0;
    }
}

/// Dirty page tracking parameters of a type1 IOMMU (`vfio_iommu_type1_info_cap_migration`).
#[doc(alias = "vfio_iommu_type1_info_cap_migration")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirtyTrackingInfo {
    /// Page sizes a dirty bitmap may use, as a bitmap (bit n: 2^n bytes); the smallest is the
    /// one [`Container::dirty_bitmap`](crate::Container::dirty_bitmap) accepts.
    pub page_sizes: u64,
    /// The largest bitmap, in bytes, one request may ask for.
    pub max_bitmap_bytes: u64,
}

/// `VFIO_IOMMU_GET_INFO` (type1): what the IOMMU can map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IommuInfo {
    /// The info's flags.
    pub flags: IommuInfoFlags,
    /// Bitmap of the supported IOMMU page sizes (bit n set: 2^n bytes), when reported. The
    /// smallest set bit is the mapping granularity.
    pub iova_pgsizes: Option<u64>,
    /// Every capability, in chain order.
    pub caps: Vec<IommuCap>,
}

impl IommuInfo {
    /// Decodes the answer of `VFIO_IOMMU_GET_INFO` (type1): the bytes of a
    /// `struct vfio_iommu_type1_info` (24 bytes) followed by its capability chain, as the kernel
    /// filled them (native byte order). [`Container::iommu_info`](crate::Container::iommu_info)
    /// asks the kernel and decodes with this; it is public so that captured answers can be
    /// decoded without a container. Nothing in `bytes` is trusted: the chain is walked with
    /// [`CapChain`](crate::uapi::caps::CapChain) and every capability decoded with [`IommuCap::decode`].
    ///
    /// # Errors
    ///
    /// [`Malformation::Other`] when `bytes` is shorter than the fixed part;
    /// [`Malformation::CapChain`] for a broken chain or capability, an inverted IOVA range
    /// included (only read when the flags have `VFIO_IOMMU_INFO_CAPS`).
    #[doc(alias = "vfio_iommu_type1_info")]
    pub fn decode(bytes: &[u8]) -> Result<IommuInfo, Malformation> {
        let fixed = std::mem::size_of::<vfio::vfio_iommu_type1_info>();
        let Some(raw) = read_pod::<vfio::vfio_iommu_type1_info>(bytes, 0) else {
            return Err(Malformation::Other(format!(
                "the answer is {} bytes, shorter than the fixed part",
                bytes.len()
            )));
        };
        let flags = IommuInfoFlags::from_bits_retain(raw.flags);
        let mut out = IommuInfo {
            flags,
            iova_pgsizes: flags
                .contains(IommuInfoFlags::PGSIZES)
                .then_some(raw.iova_pgsizes),
            caps: Vec::new(),
        };
        if flags.contains(IommuInfoFlags::CAPS) {
            for cap in caps::CapChain::new(bytes, raw.cap_offset, fixed) {
                let cap: Cap<'_> = cap?;
                out.caps.push(IommuCap::decode(&cap)?);
            }
        }
        Ok(out)
    }

    /// The smallest IOMMU page size (the alignment every mapping needs), when reported.
    pub fn min_page_size(&self) -> Option<u64> {
        self.iova_pgsizes
            .filter(|&p| p != 0)
            .map(|p| 1u64 << p.trailing_zeros())
    }

    /// The valid IOVA ranges (`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`), when reported. Kernels
    /// without the capability accept the whole 64-bit space minus what they reject at map time.
    pub fn iova_ranges(&self) -> Option<&[IovaRange]> {
        self.caps.iter().find_map(|c| match c {
            IommuCap::IovaRanges(r) => Some(r.as_slice()),
            _ => None,
        })
    }

    /// The dirty page tracking parameters (`VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`), when the
    /// IOMMU driver supports [`Container::start_dirty_tracking`](crate::Container::start_dirty_tracking).
    pub fn dirty_tracking(&self) -> Option<DirtyTrackingInfo> {
        self.caps.iter().find_map(|c| match *c {
            IommuCap::Migration {
                pgsize_bitmap,
                max_dirty_bitmap_size,
                ..
            } => Some(DirtyTrackingInfo {
                page_sizes: pgsize_bitmap,
                max_bitmap_bytes: max_dirty_bitmap_size,
            }),
            _ => None,
        })
    }

    /// How many more DMA mappings the container may create
    /// (`VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`, bounded by `vfio_iommu_type1.dma_entry_limit`).
    pub fn dma_avail(&self) -> Option<u32> {
        self.caps.iter().find_map(|c| match *c {
            IommuCap::DmaAvail(n) => Some(n),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_find_their_caps() {
        let info = IommuInfo {
            flags: IommuInfoFlags::PGSIZES | IommuInfoFlags::CAPS,
            iova_pgsizes: Some(0x4020_1000),
            caps: vec![
                IommuCap::Migration {
                    flags: 0,
                    pgsize_bitmap: 4096,
                    max_dirty_bitmap_size: 256 << 20,
                },
                IommuCap::DmaAvail(65535),
            ],
        };
        assert_eq!(info.min_page_size(), Some(4096));
        assert_eq!(info.dma_avail(), Some(65535));
        assert_eq!(info.iova_ranges(), None);
        assert_eq!(
            info.dirty_tracking(),
            Some(DirtyTrackingInfo {
                page_sizes: 4096,
                max_bitmap_bytes: 256 << 20
            })
        );
    }
}
