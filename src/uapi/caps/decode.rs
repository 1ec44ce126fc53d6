//! The typed decoders of the capabilities the kernel defines: region, IOMMU and device info.

use super::*;

/// One mmap-able area of a region (`struct vfio_region_sparse_mmap_area`).
#[doc(alias = "vfio_region_sparse_mmap_area")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SparseArea {
    /// Offset of the area within the region.
    pub offset: u64,
    /// Size of the area in bytes.
    pub size: u64,
}

impl SparseArea {
    /// The offset just past the area, or `None` if that overflows `u64`.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size)
    }
}

/// A decoded region info capability (`VFIO_DEVICE_GET_REGION_INFO`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegionCap {
    /// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`: only these areas of the region may be mmapped.
    #[doc(alias = "vfio_region_info_cap_sparse_mmap")]
    SparseMmap(Vec<SparseArea>),
    /// `VFIO_REGION_INFO_CAP_TYPE`: a device-specific region's type and subtype.
    #[doc(alias = "vfio_region_info_cap_type")]
    Type {
        /// The type, global per bus driver (`VFIO_REGION_TYPE_*`).
        ty: u32,
        /// The subtype, specific to the type (`VFIO_REGION_SUBTYPE_*`).
        subtype: u32,
    },
    /// `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`: the MSI-X table in this BAR may be mmapped.
    MsixMappable,
    /// `VFIO_REGION_INFO_CAP_NVLINK2_SSATGT` (deprecated): NVLink2 GPU RAM system address.
    #[doc(alias = "vfio_region_info_cap_nvlink2_ssatgt")]
    Nvlink2Ssatgt {
        /// The compressed real address.
        tgt: u64,
    },
    /// `VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD` (deprecated): NVLink2 link speed.
    #[doc(alias = "vfio_region_info_cap_nvlink2_lnkspd")]
    Nvlink2Lnkspd {
        /// The link speed, as in the device tree.
        link_speed: u32,
    },
    /// A capability this crate does not decode.
    Unknown {
        /// Its id.
        id: u16,
        /// Its version.
        version: u16,
    },
}

impl RegionCap {
    /// Decodes a capability of a region info chain. Unknown ids give [`RegionCap::Unknown`].
    ///
    /// # Errors
    ///
    /// [`CapChainError::Truncated`] when the capability is shorter than its structure, including
    /// a sparse-mmap `nr_areas` larger than the capability holds.
    pub fn decode(cap: &Cap<'_>) -> Result<Self, CapChainError> {
        Ok(match cap.id {
            VFIO_REGION_INFO_CAP_SPARSE_MMAP => {
                // header, u32 nr_areas, u32 reserved, then { u64 offset; u64 size; }[nr_areas]
                cap.require(16)?;
                let count = cap.array(16, cap.u32_at(8)?, 16)?;
                let mut areas = Vec::with_capacity(count);
                for i in 0..count {
                    let at = 16 + 16 * i;
                    areas.push(SparseArea {
                        offset: cap.u64_at(at)?,
                        size: cap.u64_at(at + 8)?,
                    });
                }
                RegionCap::SparseMmap(areas)
            }
            VFIO_REGION_INFO_CAP_TYPE => {
                cap.require(16)?;
                RegionCap::Type {
                    ty: cap.u32_at(8)?,
                    subtype: cap.u32_at(12)?,
                }
            }
            VFIO_REGION_INFO_CAP_MSIX_MAPPABLE => RegionCap::MsixMappable,
            VFIO_REGION_INFO_CAP_NVLINK2_SSATGT => {
                cap.require(16)?;
                RegionCap::Nvlink2Ssatgt {
                    tgt: cap.u64_at(8)?,
                }
            }
            VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD => {
                // header, u32 link_speed, u32 __pad
                cap.require(16)?;
                RegionCap::Nvlink2Lnkspd {
                    link_speed: cap.u32_at(8)?,
                }
            }
            id => RegionCap::Unknown {
                id,
                version: cap.version,
            },
        })
    }
}

/// A valid IOVA range (`struct vfio_iova_range`), with an **inclusive** end as the kernel
/// reports it.
#[doc(alias = "vfio_iova_range")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IovaRange {
    /// The first valid address.
    pub start: u64,
    /// The last valid address (inclusive).
    pub end: u64,
}

impl IovaRange {
    /// The number of addresses in the range: `end - start + 1`, which is 2^64 for the whole
    /// address space (hence `u128`), and 0 if `end < start`.
    pub fn size(&self) -> u128 {
        if self.end < self.start {
            0
        } else {
            u128::from(self.end - self.start) + 1
        }
    }

    /// Whether `addr` is in the range.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr <= self.end
    }

    /// Whether all of `[start, start + len)` is in the range; `false` for `len == 0` and for a
    /// span that would wrap past 2^64.
    pub fn contains_span(&self, start: u64, len: u64) -> bool {
        match len.checked_sub(1).and_then(|l| start.checked_add(l)) {
            Some(last) => self.contains(start) && last <= self.end,
            None => false,
        }
    }
}

/// A decoded IOMMU type1 info capability (`VFIO_IOMMU_GET_INFO`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IommuCap {
    /// `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`: the IOVA ranges DMA may be mapped at.
    #[doc(alias = "vfio_iommu_type1_info_cap_iova_range")]
    IovaRanges(Vec<IovaRange>),
    /// `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`: the IOMMU driver supports dirty page tracking.
    #[doc(alias = "vfio_iommu_type1_info_cap_migration")]
    Migration {
        /// Flags (none defined yet).
        flags: u32,
        /// Page sizes supported for dirty page tracking, as a bitmap.
        pgsize_bitmap: u64,
        /// The largest dirty bitmap, in bytes, that can be asked for at once.
        max_dirty_bitmap_size: u64,
    },
    /// `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`: how many more DMA mappings the container may make.
    #[doc(alias = "vfio_iommu_type1_info_dma_avail")]
    DmaAvail(u32),
    /// A capability this crate does not decode.
    Unknown {
        /// Its id.
        id: u16,
        /// Its version.
        version: u16,
    },
}

impl IommuCap {
    /// Decodes a capability of an IOMMU type1 info chain. Unknown ids give
    /// [`IommuCap::Unknown`].
    ///
    /// # Errors
    ///
    /// [`CapChainError::Truncated`] when the capability is shorter than its structure, including
    /// an `nr_iovas` larger than the capability holds; [`CapChainError::InvertedRange`] for an
    /// IOVA range whose end is below its start.
    pub fn decode(cap: &Cap<'_>) -> Result<Self, CapChainError> {
        Ok(match cap.id {
            VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE => {
                // header, u32 nr_iovas, u32 reserved, then { u64 start; u64 end; }[nr_iovas]
                cap.require(16)?;
                let count = cap.array(16, cap.u32_at(8)?, 16)?;
                let mut ranges = Vec::with_capacity(count);
                for index in 0..count {
                    let at = 16 + 16 * index;
                    let (start, end) = (cap.u64_at(at)?, cap.u64_at(at + 8)?);
                    if end < start {
                        return Err(CapChainError::InvertedRange {
                            offset: cap.offset,
                            index,
                            start,
                            end,
                        });
                    }
                    ranges.push(IovaRange { start, end });
                }
                IommuCap::IovaRanges(ranges)
            }
            VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION => {
                // header (0..8), u32 flags (8..12), 4 bytes of padding to align the u64s,
                // u64 pgsize_bitmap (16..24), u64 max_dirty_bitmap_size (24..32).
                cap.require(32)?;
                IommuCap::Migration {
                    flags: cap.u32_at(8)?,
                    pgsize_bitmap: cap.u64_at(16)?,
                    max_dirty_bitmap_size: cap.u64_at(24)?,
                }
            }
            VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL => {
                // header, u32 avail: 12 bytes (16 with the padding of Linux 6.6 and later).
                cap.require(12)?;
                IommuCap::DmaAvail(cap.u32_at(8)?)
            }
            id => IommuCap::Unknown {
                id,
                version: cap.version,
            },
        })
    }
}

/// s390 zPCI base function information (`struct vfio_device_info_cap_zpci_base`).
#[doc(alias = "vfio_device_info_cap_zpci_base")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZpciBase {
    /// Start of the available DMA addresses.
    pub start_dma: u64,
    /// End of the available DMA addresses.
    pub end_dma: u64,
    /// Physical channel id.
    pub pchid: u16,
    /// Virtual function number.
    pub vfn: u16,
    /// Measurement block length in bytes.
    pub fmb_length: u16,
    /// PCI function type.
    pub pft: u8,
    /// PCI function group id.
    pub gid: u8,
    /// PCI function handle (version 2 and later).
    pub fh: Option<u32>,
}

/// s390 zPCI function group information (`struct vfio_device_info_cap_zpci_group`).
#[doc(alias = "vfio_device_info_cap_zpci_group")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZpciGroup {
    /// DMA address space mask.
    pub dasm: u64,
    /// MSI address.
    pub msi_addr: u64,
    /// Flags (`VFIO_DEVICE_INFO_ZPCI_FLAG_REFRESH`).
    pub flags: u64,
    /// Measurement block update interval.
    pub mui: u16,
    /// Maximum number of MSIs.
    pub noi: u16,
    /// Maximum store block length.
    pub maxstbl: u16,
    /// Supported PCI version.
    pub version: u8,
    /// Maximum interpreted store block length (version 2 and later).
    pub imaxstbl: Option<u16>,
}

/// A decoded device info capability (`VFIO_DEVICE_GET_INFO`). Only s390 zPCI devices define
/// any so far.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceCap {
    /// `VFIO_DEVICE_INFO_CAP_ZPCI_BASE`.
    ZpciBase(ZpciBase),
    /// `VFIO_DEVICE_INFO_CAP_ZPCI_GROUP`.
    ZpciGroup(ZpciGroup),
    /// `VFIO_DEVICE_INFO_CAP_ZPCI_UTIL`: the utility string (EBCDIC).
    #[doc(alias = "vfio_device_info_cap_zpci_util")]
    ZpciUtil(Vec<u8>),
    /// `VFIO_DEVICE_INFO_CAP_ZPCI_PFIP`: the PCI function path.
    #[doc(alias = "vfio_device_info_cap_zpci_pfip")]
    ZpciPfip(Vec<u8>),
    /// A capability this crate does not decode.
    Unknown {
        /// Its id.
        id: u16,
        /// Its version.
        version: u16,
    },
}

impl DeviceCap {
    /// Decodes a capability of a device info chain. Unknown ids give [`DeviceCap::Unknown`].
    ///
    /// The zPCI base and group capabilities grew a field in version 2; it is decoded (and
    /// required) only when the header says version 2 or later.
    ///
    /// # Errors
    ///
    /// [`CapChainError::Truncated`] when the capability is shorter than its structure, including
    /// a string `size` larger than the capability holds.
    pub fn decode(cap: &Cap<'_>) -> Result<Self, CapChainError> {
        Ok(match cap.id {
            VFIO_DEVICE_INFO_CAP_ZPCI_BASE => {
                // header, u64 start_dma (8), u64 end_dma (16), u16 pchid (24), u16 vfn (26),
                // u16 fmb_length (28), u8 pft (30), u8 gid (31): end of version 1 (32);
                // u32 fh (32..36): end of version 2.
                let v2 = cap.version >= 2;
                cap.require(if v2 { 36 } else { 32 })?;
                DeviceCap::ZpciBase(ZpciBase {
                    start_dma: cap.u64_at(8)?,
                    end_dma: cap.u64_at(16)?,
                    pchid: cap.u16_at(24)?,
                    vfn: cap.u16_at(26)?,
                    fmb_length: cap.u16_at(28)?,
                    pft: cap.u8_at(30)?,
                    gid: cap.u8_at(31)?,
                    fh: if v2 { Some(cap.u32_at(32)?) } else { None },
                })
            }
            VFIO_DEVICE_INFO_CAP_ZPCI_GROUP => {
                // header, u64 dasm (8), u64 msi_addr (16), u64 flags (24), u16 mui (32),
                // u16 noi (34), u16 maxstbl (36), u8 version (38): end of version 1 (39);
                // u8 reserved (39), u16 imaxstbl (40..42): end of version 2.
                let v2 = cap.version >= 2;
                cap.require(if v2 { 42 } else { 39 })?;
                DeviceCap::ZpciGroup(ZpciGroup {
                    dasm: cap.u64_at(8)?,
                    msi_addr: cap.u64_at(16)?,
                    flags: cap.u64_at(24)?,
                    mui: cap.u16_at(32)?,
                    noi: cap.u16_at(34)?,
                    maxstbl: cap.u16_at(36)?,
                    version: cap.u8_at(38)?,
                    imaxstbl: if v2 { Some(cap.u16_at(40)?) } else { None },
                })
            }
            // header, u32 size, u8 bytes[size]
            VFIO_DEVICE_INFO_CAP_ZPCI_UTIL => DeviceCap::ZpciUtil(cap.sized_bytes(8)?),
            VFIO_DEVICE_INFO_CAP_ZPCI_PFIP => DeviceCap::ZpciPfip(cap.sized_bytes(8)?),
            id => DeviceCap::Unknown {
                id,
                version: cap.version,
            },
        })
    }
}
