//! Bounds-checked, loop-safe parsing of VFIO capability chains.
//!
//! Three VFIO `INFO` ioctls append a *capability chain* to the fixed part of their struct:
//! `VFIO_DEVICE_GET_REGION_INFO` (`struct vfio_region_info`, 32 bytes), `VFIO_IOMMU_GET_INFO`
//! (`struct vfio_iommu_type1_info`, 24 bytes) and `VFIO_DEVICE_GET_INFO`
//! (`struct vfio_device_info`, 20 bytes). Each capability starts with
//!
//! ```text
//! struct vfio_info_cap_header { __u16 id; __u16 version; __u32 next; };   // 8 bytes
//! ```
//!
//! The info struct's `cap_offset` is the offset of the first capability and each header's `next`
//! the offset of the following one, both counted in bytes **from the start of the whole info
//! buffer**; 0 ends the chain. Capability ids are a separate namespace per ioctl (id 1 is the
//! sparse-mmap capability in region info and the IOVA-range capability in IOMMU info).
//!
//! The chain comes from the kernel, but nothing here trusts it: [`CapChain`] walks it over a byte
//! slice with every offset checked before use, and the typed decoders ([`RegionCap::decode`],
//! [`IommuCap::decode`], [`DeviceCap::decode`]) read every field through a bounds check. No input
//! makes them panic, loop forever or read outside the buffer. Integers are read in native byte
//! order, as the kernel writes them.
//!
//! # What the walk accepts
//!
//! An offset (the first one, or a `next`) is accepted only if all of these hold, checked in this
//! order; the first that fails ends the walk with the [`CapChainError`] variant named:
//!
//! 1. The first offset is 0 (no chain) or at least `fixed_len`, the size of the fixed part of the
//!    info struct ([`CapChainError::InsideFixedPart`]).
//! 2. A `next` is strictly after the capability that holds it
//!    ([`CapChainError::Backward`], which includes a capability pointing at itself) and does not
//!    start inside that capability's 8-byte header ([`CapChainError::Overlapping`]). The kernel
//!    always builds chains forward, so this rules out loops and bounds the walk to
//!    `buf.len() / 8` capabilities.
//! 3. The offset is a multiple of 4 ([`CapChainError::Misaligned`]). The kernel pads
//!    capabilities to 8 bytes since Linux 6.6, but device info places its first capability right
//!    after the 20-byte `struct vfio_device_info`, so 8-byte alignment cannot be required; 4 is
//!    the alignment of the header itself.
//! 4. The offset is inside the buffer ([`CapChainError::PastEnd`]) and a whole header fits there
//!    ([`CapChainError::HeaderTruncated`]).
//!
//! On top of that, a chain longer than [`MAX_CAPS`] capabilities is rejected
//! ([`CapChainError::TooManyCaps`]), a belt-and-braces check that can only trigger for buffers
//! larger than `MAX_CAPS * 8` bytes.
//!
//! A capability is only yielded once its own `next` has passed these checks, so every yielded
//! [`Cap`] has a well-defined extent; a bad `next` is reported *instead of* the capability that
//! holds it.
//!
//! # Extent of a capability
//!
//! The header does not record a length. A capability's [`Cap::data`] therefore runs from the
//! first byte of its header to the start of the next capability (which the checks above guarantee
//! is after it), or to the end of the buffer for the last one. It may include padding, so the
//! decoders require *at least* the bytes a structure needs and ignore the rest.
//!
//! # Example
//!
//! ```
//! use uvfio::uapi::caps::{decode_chain, RegionCap, SparseArea};
//!
//! // A 32-byte `struct vfio_region_info`, then one sparse-mmap capability (id 1, version 1)
//! // with a single area 0x0..0x1000.
//! let mut buf = vec![0u8; 32];
//! buf.extend_from_slice(&1u16.to_ne_bytes()); // id
//! buf.extend_from_slice(&1u16.to_ne_bytes()); // version
//! buf.extend_from_slice(&0u32.to_ne_bytes()); // next: end of chain
//! buf.extend_from_slice(&1u32.to_ne_bytes()); // nr_areas
//! buf.extend_from_slice(&0u32.to_ne_bytes()); // reserved
//! buf.extend_from_slice(&0u64.to_ne_bytes()); // areas[0].offset
//! buf.extend_from_slice(&0x1000u64.to_ne_bytes()); // areas[0].size
//!
//! let caps = decode_chain(&buf, 32, 32, RegionCap::decode)?;
//! assert_eq!(
//!     caps,
//!     [RegionCap::SparseMmap(vec![SparseArea { offset: 0, size: 0x1000 }])]
//! );
//! # Ok::<(), uvfio::uapi::caps::CapChainError>(())
//! ```
//!
//! # References
//!
//! `include/uapi/linux/vfio.h` (`struct vfio_info_cap_header` and the capability structs) and
//! `include/uapi/linux/vfio_zdev.h` (the s390 zPCI device capabilities);
//! <https://docs.kernel.org/driver-api/vfio.html>.

use std::iter::FusedIterator;

/// Size of `struct vfio_info_cap_header`: `u16 id`, `u16 version`, `u32 next`.
#[doc(alias = "vfio_info_cap_header")]
pub const CAP_HEADER_LEN: usize = 8;

/// The alignment every capability offset must have (see the [module docs](self)).
pub const CAP_ALIGN: usize = 4;

/// The most capabilities one chain may hold before the walk gives up with
/// [`CapChainError::TooManyCaps`]. Real chains hold a handful.
pub const MAX_CAPS: usize = 1024;

// The capability ids, under the kernel's names, from the one place that defines them.
pub use super::vfio::{
    VFIO_DEVICE_INFO_CAP_ZPCI_BASE, VFIO_DEVICE_INFO_CAP_ZPCI_GROUP,
    VFIO_DEVICE_INFO_CAP_ZPCI_PFIP, VFIO_DEVICE_INFO_CAP_ZPCI_UTIL,
    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
    VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
    VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD, VFIO_REGION_INFO_CAP_NVLINK2_SSATGT,
    VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_CAP_TYPE,
};

/// Why a capability chain, or one capability in it, was rejected.
///
/// Every variant carries the offsets involved, counted from the start of the info buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapChainError {
    /// The first capability offset points into the fixed part of the info struct.
    #[error(
        "first capability offset {offset} is inside the {fixed_len}-byte fixed part of the struct"
    )]
    InsideFixedPart {
        /// The offending offset.
        offset: usize,
        /// The size of the fixed part.
        fixed_len: usize,
    },
    /// A capability offset is at or past the end of the buffer.
    #[error("capability offset {offset} is outside the {len}-byte buffer")]
    PastEnd {
        /// The offending offset.
        offset: usize,
        /// The buffer length.
        len: usize,
    },
    /// A capability header starting at `offset` does not fit in the buffer.
    #[error("capability header at offset {offset} does not fit in the {len}-byte buffer")]
    HeaderTruncated {
        /// Where the header starts.
        offset: usize,
        /// The buffer length.
        len: usize,
    },
    /// A capability offset is not a multiple of [`CAP_ALIGN`].
    #[error("capability offset {offset} is not {CAP_ALIGN}-byte aligned")]
    Misaligned {
        /// The offending offset.
        offset: usize,
    },
    /// A capability's `next` points back to itself or to an earlier offset (a loop).
    #[error("capability at offset {offset} has next {next}, which does not go forward")]
    Backward {
        /// The capability holding the `next`.
        offset: usize,
        /// Its `next`.
        next: usize,
    },
    /// A capability's `next` points inside its own header.
    #[error("capability at offset {offset} has next {next}, inside its own header")]
    Overlapping {
        /// The capability holding the `next`.
        offset: usize,
        /// Its `next`.
        next: usize,
    },
    /// The chain holds more than [`MAX_CAPS`] capabilities.
    #[error("more than {limit} capabilities in one chain (the next at offset {offset})")]
    TooManyCaps {
        /// The limit, [`MAX_CAPS`].
        limit: usize,
        /// The offset of the first capability over the limit.
        offset: usize,
    },
    /// A capability is shorter than the structure its id and version call for.
    #[error("capability {id} at offset {offset} needs {need} bytes, has {have}")]
    Truncated {
        /// The capability id.
        id: u16,
        /// Where the capability starts.
        offset: usize,
        /// The bytes its structure needs, header included (`usize::MAX` if that overflows).
        need: usize,
        /// The bytes it has, header included.
        have: usize,
    },
    /// An IOVA range of an IOVA-range capability ends before it starts.
    #[error("IOVA range {index} of the capability at offset {offset} is inverted: {start:#x}..={end:#x}")]
    InvertedRange {
        /// Where the capability starts.
        offset: usize,
        /// The index of the range in the capability.
        index: usize,
        /// Its start.
        start: u64,
        /// Its inclusive end.
        end: u64,
    },
}

/// One capability of a chain, as found by [`CapChain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cap<'a> {
    /// The capability id (its meaning depends on the ioctl that returned the chain).
    pub id: u16,
    /// The capability version (specific to the id).
    pub version: u16,
    /// Where the header starts, from the start of the info buffer.
    pub offset: usize,
    /// The capability's bytes, **header included**, so that offsets into `data` are the C
    /// struct's field offsets. It ends where the next capability starts, or at the end of the
    /// buffer for the last one (see the [module docs](self)), and is never shorter than
    /// [`CAP_HEADER_LEN`].
    pub data: &'a [u8],
}

impl<'a> Cap<'a> {
    /// The bytes after the 8-byte header.
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(CAP_HEADER_LEN..).unwrap_or(&[])
    }

    /// Fails with [`CapChainError::Truncated`] unless the capability has at least `need` bytes.
    fn require(&self, need: usize) -> Result<(), CapChainError> {
        if self.data.len() >= need {
            Ok(())
        } else {
            Err(self.truncated(need))
        }
    }

    fn truncated(&self, need: usize) -> CapChainError {
        CapChainError::Truncated {
            id: self.id,
            offset: self.offset,
            need,
            have: self.data.len(),
        }
    }

    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], CapChainError> {
        let end = at.saturating_add(N);
        self.data
            .get(at..end)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| self.truncated(end))
    }

    fn u8_at(&self, at: usize) -> Result<u8, CapChainError> {
        self.bytes::<1>(at).map(|[b]| b)
    }

    fn u16_at(&self, at: usize) -> Result<u16, CapChainError> {
        self.bytes(at).map(u16::from_ne_bytes)
    }

    fn u32_at(&self, at: usize) -> Result<u32, CapChainError> {
        self.bytes(at).map(u32::from_ne_bytes)
    }

    fn u64_at(&self, at: usize) -> Result<u64, CapChainError> {
        self.bytes(at).map(u64::from_ne_bytes)
    }

    /// Checks that `count` entries of `entry_len` bytes fit from byte `at` on, and returns
    /// `count` as a `usize`.
    fn array(&self, at: usize, count: u32, entry_len: usize) -> Result<usize, CapChainError> {
        let need = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(entry_len))
            .and_then(|n| n.checked_add(at))
            .unwrap_or(usize::MAX);
        self.require(need)?;
        // `need <= data.len()`, so `count` fits in usize.
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// The `size`-byte string that follows a `u32 size` field at `at` (zPCI util and pfip).
    fn sized_bytes(&self, at: usize) -> Result<Vec<u8>, CapChainError> {
        let start = at.saturating_add(4);
        let len = self.array(start, self.u32_at(at)?, 1)?;
        let end = start.saturating_add(len);
        let bytes = self
            .data
            .get(start..end)
            .ok_or_else(|| self.truncated(end))?;
        Ok(bytes.to_vec())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started: the first offset (0 = no chain).
    Start(u32),
    /// The next capability is at this offset, already checked.
    At(usize),
    /// Finished, normally or after an error.
    Done,
}

/// An iterator over the capabilities of a chain.
///
/// It yields `Ok(Cap)` for each capability in chain order, and ends either normally (a `next` of
/// 0) or right after yielding one `Err` (see the [module docs](self) for the checks). It then
/// keeps returning `None`, so it is fused. It yields at most `buf.len() / 8` capabilities plus one
/// error, whatever the bytes.
///
/// For the whole chain at once, see [`parse_chain`] and [`decode_chain`].
#[derive(Debug, Clone)]
pub struct CapChain<'a> {
    buf: &'a [u8],
    fixed_len: usize,
    state: State,
    count: usize,
}

impl<'a> CapChain<'a> {
    /// Walks the chain of the info buffer `buf` (the whole buffer as the kernel filled it, fixed
    /// part included), starting at offset `first` (the struct's `cap_offset`; 0 means no chain).
    /// `fixed_len` is the size of the fixed part of the info struct, which no capability may
    /// start inside.
    ///
    /// Nothing is checked until the first call to `next`.
    pub fn new(buf: &'a [u8], first: u32, fixed_len: usize) -> Self {
        CapChain {
            buf,
            fixed_len,
            state: State::Start(first),
            count: 0,
        }
    }

    /// Checks an offset before the walk goes there: the first one when `from` is `None`, the
    /// `next` of the capability at `from` otherwise.
    fn check_target(&self, from: Option<usize>, to: u32) -> Result<usize, CapChainError> {
        let offset = usize::try_from(to).unwrap_or(usize::MAX);
        match from {
            None if offset < self.fixed_len => {
                return Err(CapChainError::InsideFixedPart {
                    offset,
                    fixed_len: self.fixed_len,
                })
            }
            Some(from) if offset <= from => {
                return Err(CapChainError::Backward {
                    offset: from,
                    next: offset,
                })
            }
            Some(from) if offset < from.saturating_add(CAP_HEADER_LEN) => {
                return Err(CapChainError::Overlapping {
                    offset: from,
                    next: offset,
                })
            }
            _ => {}
        }
        let len = self.buf.len();
        if offset % CAP_ALIGN != 0 {
            Err(CapChainError::Misaligned { offset })
        } else if offset >= len {
            Err(CapChainError::PastEnd { offset, len })
        } else if len - offset < CAP_HEADER_LEN {
            Err(CapChainError::HeaderTruncated { offset, len })
        } else {
            Ok(offset)
        }
    }

    /// Reads the capability at the checked offset `offset` and checks its `next`.
    fn read_at(&self, offset: usize) -> Result<(Cap<'a>, State), CapChainError> {
        if self.count >= MAX_CAPS {
            return Err(CapChainError::TooManyCaps {
                limit: MAX_CAPS,
                offset,
            });
        }
        let len = self.buf.len();
        let header: [u8; CAP_HEADER_LEN] = self
            .buf
            .get(offset..offset.saturating_add(CAP_HEADER_LEN))
            .and_then(|h| h.try_into().ok())
            .ok_or(CapChainError::HeaderTruncated { offset, len })?;
        let id = u16::from_ne_bytes([header[0], header[1]]);
        let version = u16::from_ne_bytes([header[2], header[3]]);
        let next = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);

        let (end, state) = if next == 0 {
            (len, State::Done)
        } else {
            let next = self.check_target(Some(offset), next)?;
            (next, State::At(next))
        };
        let data = self
            .buf
            .get(offset..end)
            .ok_or(CapChainError::PastEnd { offset: end, len })?;
        Ok((
            Cap {
                id,
                version,
                offset,
                data,
            },
            state,
        ))
    }
}

impl<'a> Iterator for CapChain<'a> {
    type Item = Result<Cap<'a>, CapChainError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = match self.state {
            State::Done | State::Start(0) => {
                self.state = State::Done;
                return None;
            }
            State::Start(first) => match self.check_target(None, first) {
                Ok(offset) => offset,
                Err(e) => {
                    self.state = State::Done;
                    return Some(Err(e));
                }
            },
            State::At(offset) => offset,
        };
        match self.read_at(offset) {
            Ok((cap, state)) => {
                self.state = state;
                self.count += 1;
                Some(Ok(cap))
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let position = match self.state {
            State::Done | State::Start(0) => return (0, Some(0)),
            State::Start(first) => usize::try_from(first).unwrap_or(usize::MAX),
            State::At(offset) => offset,
        };
        // Each capability takes at least 8 bytes after the previous one; one error may follow.
        let fit = self.buf.len().saturating_sub(position) / CAP_HEADER_LEN;
        let left = MAX_CAPS.saturating_sub(self.count);
        (0, Some(fit.min(left).saturating_add(1)))
    }
}

impl FusedIterator for CapChain<'_> {}

/// Walks a whole chain (see [`CapChain::new`] for the arguments) and collects its capabilities.
///
/// # Errors
///
/// The first [`CapChainError`] the walk meets; see the [module docs](self) for the checks.
pub fn parse_chain(
    buf: &[u8],
    first: u32,
    fixed_len: usize,
) -> Result<Vec<Cap<'_>>, CapChainError> {
    CapChain::new(buf, first, fixed_len).collect()
}

/// Walks a whole chain (see [`CapChain::new`] for the arguments) and decodes each capability
/// with `decode`, typically [`RegionCap::decode`], [`IommuCap::decode`] or [`DeviceCap::decode`].
///
/// # Errors
///
/// The first [`CapChainError`] the walk or a decoder meets.
pub fn decode_chain<T>(
    buf: &[u8],
    first: u32,
    fixed_len: usize,
    mut decode: impl FnMut(&Cap<'_>) -> Result<T, CapChainError>,
) -> Result<Vec<T>, CapChainError> {
    CapChain::new(buf, first, fixed_len)
        .map(|cap| cap.and_then(|cap| decode(&cap)))
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(id: u16, version: u16, next: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&id.to_ne_bytes());
        h.extend_from_slice(&version.to_ne_bytes());
        h.extend_from_slice(&next.to_ne_bytes());
        h
    }

    fn put_u32(buf: &mut [u8], at: usize, v: u32) {
        buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// A `fixed_len`-byte fixed part (filled with 0xee), then `caps` (id, version, payload) laid
    /// out back to back, each payload padded with zeros to a multiple of 4 bytes. Returns the
    /// buffer and each capability's offset.
    fn build(fixed_len: usize, caps: &[(u16, u16, Vec<u8>)]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = vec![0xee; fixed_len];
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
        let mut offsets = Vec::new();
        for (i, (id, version, payload)) in caps.iter().enumerate() {
            let offset = buf.len();
            offsets.push(offset);
            let padded = payload.len().div_ceil(4) * 4;
            let next = if i + 1 == caps.len() {
                0
            } else {
                (offset + CAP_HEADER_LEN + padded) as u32
            };
            buf.extend(header(*id, *version, next));
            buf.extend_from_slice(payload);
            buf.resize(offset + CAP_HEADER_LEN + padded, 0);
        }
        (buf, offsets)
    }

    fn first(offsets: &[usize]) -> u32 {
        offsets.first().map_or(0, |&o| o as u32)
    }

    fn ne64(v: u64) -> [u8; 8] {
        v.to_ne_bytes()
    }

    fn payload(words: &[&[u8]]) -> Vec<u8> {
        words.concat()
    }

    fn one_cap(id: u16, version: u16, p: Vec<u8>) -> Vec<u8> {
        let (buf, _) = build(0, &[(id, version, p)]);
        buf
    }

    fn only(buf: &[u8]) -> Cap<'_> {
        let caps = parse_chain(buf, 0, 0);
        // A chain starting at 0 is empty by definition, so single-cap buffers built at offset 0
        // are walked by hand here.
        assert_eq!(caps, Ok(vec![]));
        CapChain {
            buf,
            fixed_len: 0,
            state: State::At(0),
            count: 0,
        }
        .next()
        .expect("one capability")
        .expect("valid capability")
    }

    // ---- the walk ----

    #[test]
    fn no_chain_when_first_is_zero() {
        let buf = [0u8; 64];
        let mut chain = CapChain::new(&buf, 0, 32);
        assert_eq!(chain.size_hint(), (0, Some(0)));
        assert_eq!(chain.next(), None);
        assert_eq!(chain.next(), None);
    }

    #[test]
    fn single_capability_extends_to_the_end_of_the_buffer() {
        let (mut buf, offsets) = build(32, &[(7, 3, vec![1, 2, 3, 4])]);
        buf.extend_from_slice(&[9; 8]); // trailing bytes belong to the last capability
        let caps = parse_chain(&buf, first(&offsets), 32).unwrap();
        assert_eq!(caps.len(), 1);
        let cap = caps[0];
        assert_eq!((cap.id, cap.version, cap.offset), (7, 3, 32));
        assert_eq!(cap.data.len(), 8 + 4 + 8);
        assert_eq!(cap.data[..8], header(7, 3, 0)[..]);
        assert_eq!(cap.payload(), &[1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn several_capabilities_each_end_where_the_next_starts() {
        let caps_in = [
            (1, 1, vec![0xaa; 24]),
            (3, 1, vec![]),
            (2, 1, vec![0xbb; 8]),
        ];
        let (buf, offsets) = build(24, &caps_in);
        assert_eq!(offsets, [24, 56, 64]);
        let caps = parse_chain(&buf, 24, 24).unwrap();
        let summary: Vec<_> = caps
            .iter()
            .map(|c| (c.id, c.offset, c.data.len()))
            .collect();
        assert_eq!(summary, [(1, 24, 32), (3, 56, 8), (2, 64, 16)]);
        assert_eq!(caps[1].payload(), &[] as &[u8]);
        assert_eq!(caps[2].payload(), &[0xbb; 8]);
    }

    #[test]
    fn a_next_may_skip_bytes() {
        // Capability at 16 says next = 40, leaving 16 bytes of gap that belong to it.
        let mut buf = vec![0u8; 56];
        buf[16..24].copy_from_slice(&header(1, 1, 40));
        buf[40..48].copy_from_slice(&header(2, 1, 0));
        let caps = parse_chain(&buf, 16, 16).unwrap();
        assert_eq!(caps[0].data.len(), 24);
        assert_eq!(caps[1].data.len(), 16);
    }

    #[test]
    fn device_info_chains_at_offset_20_are_accepted() {
        // struct vfio_device_info is 20 bytes; its first capability sits at 20.
        let (buf, offsets) = build(20, &[(1, 1, vec![0; 24]), (2, 1, vec![0; 32])]);
        assert_eq!(offsets, [20, 52]);
        assert_eq!(parse_chain(&buf, 20, 20).unwrap().len(), 2);
    }

    #[test]
    fn rejects_a_first_offset_inside_the_fixed_part() {
        let (buf, _) = build(32, &[(1, 1, vec![0; 8])]);
        assert_eq!(
            parse_chain(&buf, 16, 32),
            Err(CapChainError::InsideFixedPart {
                offset: 16,
                fixed_len: 32
            })
        );
    }

    #[test]
    fn rejects_offsets_past_the_end() {
        let (mut buf, offsets) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
        assert_eq!((offsets[1], buf.len()), (48, 64));
        assert_eq!(
            parse_chain(&buf, 64, 32),
            Err(CapChainError::PastEnd {
                offset: 64,
                len: 64
            })
        );
        assert_eq!(
            parse_chain(&buf, u32::MAX - 3, 32),
            Err(CapChainError::PastEnd {
                offset: (u32::MAX - 3) as usize,
                len: 64
            })
        );
        // The first capability's next points past the end: reported instead of that capability.
        put_u32(&mut buf, 36, 1000);
        let mut chain = CapChain::new(&buf, 32, 32);
        assert_eq!(
            chain.next(),
            Some(Err(CapChainError::PastEnd {
                offset: 1000,
                len: 64
            }))
        );
        assert_eq!(chain.next(), None);
    }

    #[test]
    fn rejects_a_header_that_does_not_fit() {
        let buf = vec![0u8; 36];
        assert_eq!(
            parse_chain(&buf, 32, 32),
            Err(CapChainError::HeaderTruncated {
                offset: 32,
                len: 36
            })
        );
        let mut buf = vec![0u8; 44];
        buf[32..40].copy_from_slice(&header(1, 1, 40));
        assert_eq!(
            parse_chain(&buf, 32, 32),
            Err(CapChainError::HeaderTruncated {
                offset: 40,
                len: 44
            })
        );
    }

    #[test]
    fn rejects_misaligned_offsets() {
        let (mut buf, _) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
        assert_eq!(
            parse_chain(&buf, 34, 32),
            Err(CapChainError::Misaligned { offset: 34 })
        );
        put_u32(&mut buf, 36, 42);
        assert_eq!(
            parse_chain(&buf, 32, 32),
            Err(CapChainError::Misaligned { offset: 42 })
        );
    }

    #[test]
    fn rejects_loops_and_backward_links() {
        let (mut buf, _) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
        // The first capability points at itself.
        put_u32(&mut buf, 36, 32);
        assert_eq!(
            parse_chain(&buf, 32, 32),
            Err(CapChainError::Backward {
                offset: 32,
                next: 32
            })
        );
        // The second points back at the first: the first is yielded, then the error.
        put_u32(&mut buf, 36, 48);
        put_u32(&mut buf, 52, 32);
        let items: Vec<_> = CapChain::new(&buf, 32, 32).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().map(|c| c.id), Ok(1));
        assert_eq!(
            items[1],
            Err(CapChainError::Backward {
                offset: 48,
                next: 32
            })
        );
        // A backward link into the fixed part is still "backward".
        put_u32(&mut buf, 52, 8);
        assert_eq!(
            parse_chain(&buf, 32, 32),
            Err(CapChainError::Backward {
                offset: 48,
                next: 8
            })
        );
    }

    #[test]
    fn rejects_a_next_inside_the_header() {
        let (mut buf, _) = build(32, &[(1, 1, vec![0; 8]), (2, 1, vec![0; 8])]);
        put_u32(&mut buf, 36, 36);
        assert_eq!(
            parse_chain(&buf, 32, 32),
            Err(CapChainError::Overlapping {
                offset: 32,
                next: 36
            })
        );
    }

    #[test]
    fn stops_after_max_caps() {
        let caps: Vec<_> = (0..=MAX_CAPS).map(|i| (i as u16, 1, vec![])).collect();
        let (buf, offsets) = build(16, &caps);
        let items: Vec<_> = CapChain::new(&buf, 16, 16).collect();
        assert_eq!(items.len(), MAX_CAPS + 1);
        assert!(items[..MAX_CAPS].iter().all(Result::is_ok));
        assert_eq!(
            items[MAX_CAPS],
            Err(CapChainError::TooManyCaps {
                limit: MAX_CAPS,
                offset: offsets[MAX_CAPS]
            })
        );
    }

    #[test]
    fn size_hint_bounds_the_walk() {
        let (buf, _) = build(16, &[(1, 1, vec![0; 8]), (2, 1, vec![])]);
        let mut chain = CapChain::new(&buf, 16, 16);
        assert_eq!(buf.len(), 40);
        assert_eq!(chain.size_hint(), (0, Some((40 - 16) / 8 + 1)));
        chain.next();
        assert_eq!(chain.size_hint(), (0, Some((40 - 32) / 8 + 1)));
        chain.next();
        assert_eq!(chain.size_hint(), (0, Some(0)));
    }

    #[test]
    fn errors_name_the_offsets() {
        let e = CapChainError::Backward {
            offset: 48,
            next: 32,
        };
        assert_eq!(
            e.to_string(),
            "capability at offset 48 has next 32, which does not go forward"
        );
        let e = CapChainError::Truncated {
            id: 1,
            offset: 32,
            need: 48,
            have: 40,
        };
        assert_eq!(
            e.to_string(),
            "capability 1 at offset 32 needs 48 bytes, has 40"
        );
    }

    // ---- region capabilities ----

    #[test]
    fn decodes_region_caps() {
        let buf = one_cap(2, 1, payload(&[&3u32.to_ne_bytes(), &1u32.to_ne_bytes()]));
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Ok(RegionCap::Type { ty: 3, subtype: 1 })
        );
        let buf = one_cap(3, 1, vec![]);
        assert_eq!(RegionCap::decode(&only(&buf)), Ok(RegionCap::MsixMappable));
        let buf = one_cap(4, 1, ne64(0x2000_0000_0000).to_vec());
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Ok(RegionCap::Nvlink2Ssatgt {
                tgt: 0x2000_0000_0000
            })
        );
        let buf = one_cap(5, 1, payload(&[&25_000u32.to_ne_bytes(), &[0; 4]]));
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Ok(RegionCap::Nvlink2Lnkspd { link_speed: 25_000 })
        );
        let buf = one_cap(99, 4, vec![1; 12]);
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Ok(RegionCap::Unknown { id: 99, version: 4 })
        );
    }

    #[test]
    fn sparse_mmap_count_is_checked_against_the_length() {
        let areas = payload(&[&2u32.to_ne_bytes(), &[0; 4], &ne64(0), &ne64(0x1000)]);
        let buf = one_cap(1, 1, areas);
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Err(CapChainError::Truncated {
                id: 1,
                offset: 0,
                need: 48,
                have: 32
            })
        );
        let buf = one_cap(1, 1, payload(&[&u32::MAX.to_ne_bytes(), &[0; 4]]));
        let need = 16 + 16 * u32::MAX as usize;
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Err(CapChainError::Truncated {
                id: 1,
                offset: 0,
                need,
                have: 16
            })
        );
        let buf = one_cap(1, 1, vec![0; 4]);
        assert!(matches!(
            RegionCap::decode(&only(&buf)),
            Err(CapChainError::Truncated {
                need: 16,
                have: 12,
                ..
            })
        ));
        let buf = one_cap(1, 1, vec![0; 8]);
        assert_eq!(
            RegionCap::decode(&only(&buf)),
            Ok(RegionCap::SparseMmap(vec![]))
        );
    }

    #[test]
    fn short_region_caps_are_truncated() {
        for id in [2, 4, 5] {
            let buf = one_cap(id, 1, vec![0; 4]);
            assert_eq!(
                RegionCap::decode(&only(&buf)),
                Err(CapChainError::Truncated {
                    id,
                    offset: 0,
                    need: 16,
                    have: 12
                })
            );
        }
    }

    /// A BAR0 region as vfio-pci described it before Linux 4.16 made MSI-X tables mappable:
    /// 16 KiB, MSI-X table at 0x2000..0x3000, so two mmap-able areas around it. Hand-built in
    /// the layout of `struct vfio_region_info` followed by
    /// `struct vfio_region_info_cap_sparse_mmap`.
    #[test]
    fn realistic_region_info_with_sparse_mmap() {
        let mut blob = Vec::new();
        blob.extend_from_slice(&80u32.to_ne_bytes()); // argsz
        blob.extend_from_slice(&0xfu32.to_ne_bytes()); // READ | WRITE | MMAP | CAPS
        blob.extend_from_slice(&0u32.to_ne_bytes()); // index: BAR0
        blob.extend_from_slice(&32u32.to_ne_bytes()); // cap_offset
        blob.extend_from_slice(&0x4000u64.to_ne_bytes()); // size
        blob.extend_from_slice(&0u64.to_ne_bytes()); // offset
        blob.extend(header(VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, 0));
        blob.extend_from_slice(&2u32.to_ne_bytes()); // nr_areas
        blob.extend_from_slice(&0u32.to_ne_bytes()); // reserved
        for (offset, size) in [(0u64, 0x2000u64), (0x3000, 0x1000)] {
            blob.extend_from_slice(&offset.to_ne_bytes());
            blob.extend_from_slice(&size.to_ne_bytes());
        }
        assert_eq!(blob.len(), 80);

        let cap_offset = u32::from_ne_bytes(blob[12..16].try_into().unwrap());
        let caps = decode_chain(&blob, cap_offset, 32, RegionCap::decode).unwrap();
        let expected = vec![
            SparseArea {
                offset: 0,
                size: 0x2000,
            },
            SparseArea {
                offset: 0x3000,
                size: 0x1000,
            },
        ];
        assert_eq!(caps, [RegionCap::SparseMmap(expected.clone())]);
        assert_eq!(expected[1].end(), Some(0x4000));
        assert_eq!(
            SparseArea {
                offset: u64::MAX,
                size: 1
            }
            .end(),
            None
        );
    }

    // ---- IOMMU capabilities ----

    #[test]
    fn decodes_iommu_caps() {
        let mig = payload(&[
            &1u32.to_ne_bytes(),
            &[0; 4],
            &ne64(0x1000),
            &ne64(0x1000_0000),
        ]);
        assert_eq!(
            IommuCap::decode(&only(&one_cap(2, 1, mig))),
            Ok(IommuCap::Migration {
                flags: 1,
                pgsize_bitmap: 0x1000,
                max_dirty_bitmap_size: 0x1000_0000
            })
        );
        // 12 bytes as before Linux 6.6, 16 with the padding added since.
        let mut avail = one_cap(3, 1, 65535u32.to_ne_bytes().to_vec());
        assert_eq!(avail.len(), 12);
        assert_eq!(
            IommuCap::decode(&only(&avail)),
            Ok(IommuCap::DmaAvail(65535))
        );
        avail.extend_from_slice(&[0; 4]);
        assert_eq!(
            IommuCap::decode(&only(&avail)),
            Ok(IommuCap::DmaAvail(65535))
        );
        assert_eq!(
            IommuCap::decode(&only(&one_cap(42, 2, vec![]))),
            Ok(IommuCap::Unknown { id: 42, version: 2 })
        );
    }

    #[test]
    fn short_iommu_caps_are_truncated() {
        let mig = one_cap(2, 1, vec![0; 20]);
        assert!(matches!(
            IommuCap::decode(&only(&mig)),
            Err(CapChainError::Truncated {
                id: 2,
                need: 32,
                have: 28,
                ..
            })
        ));
        let avail = one_cap(3, 1, vec![]);
        assert!(matches!(
            IommuCap::decode(&only(&avail)),
            Err(CapChainError::Truncated {
                id: 3,
                need: 12,
                have: 8,
                ..
            })
        ));
        let iova = one_cap(1, 1, payload(&[&1u32.to_ne_bytes(), &[0; 4], &ne64(0)]));
        assert!(matches!(
            IommuCap::decode(&only(&iova)),
            Err(CapChainError::Truncated {
                id: 1,
                need: 32,
                have: 24,
                ..
            })
        ));
    }

    #[test]
    fn inverted_iova_ranges_are_rejected() {
        let iova = one_cap(
            1,
            1,
            payload(&[
                &2u32.to_ne_bytes(),
                &[0; 4],
                &ne64(0),
                &ne64(0xfff),
                &ne64(0x2000),
                &ne64(0x1fff),
            ]),
        );
        assert_eq!(
            IommuCap::decode(&only(&iova)),
            Err(CapChainError::InvertedRange {
                offset: 0,
                index: 1,
                start: 0x2000,
                end: 0x1fff
            })
        );
    }

    #[test]
    fn iova_range_helpers_handle_the_whole_address_space() {
        let all = IovaRange {
            start: 0,
            end: u64::MAX,
        };
        assert_eq!(all.size(), 1u128 << 64);
        assert!(all.contains(u64::MAX));
        assert!(all.contains_span(u64::MAX, 1));
        assert!(!all.contains_span(u64::MAX, 2));
        assert!(!all.contains_span(0, 0));
        let low = IovaRange {
            start: 0x1000,
            end: 0x1fff,
        };
        assert_eq!(low.size(), 0x1000);
        assert!(low.contains_span(0x1000, 0x1000));
        assert!(!low.contains_span(0x1000, 0x1001));
        assert!(!low.contains_span(0xfff, 1));
        assert!(!low.contains(0x2000));
        let one = IovaRange { start: 5, end: 5 };
        assert_eq!(one.size(), 1);
        assert_eq!(IovaRange { start: 6, end: 5 }.size(), 0);
    }

    /// `VFIO_IOMMU_GET_INFO` on an x86 host with a 48-bit IOMMU aperture and the MSI window
    /// 0xfee00000..=0xfeefffff reserved, hand-built in the order vfio_iommu_type1 adds its
    /// capabilities (IOVA ranges, migration, DMA avail), each padded to 8 bytes.
    #[test]
    fn realistic_type1_info_with_iova_ranges() {
        let mut blob = Vec::new();
        blob.extend_from_slice(&120u32.to_ne_bytes()); // argsz
        blob.extend_from_slice(&3u32.to_ne_bytes()); // PGSIZES | CAPS
        blob.extend_from_slice(&0x4020_1000u64.to_ne_bytes()); // iova_pgsizes: 4K | 2M | 1G
        blob.extend_from_slice(&24u32.to_ne_bytes()); // cap_offset
        blob.extend_from_slice(&[0; 4]); // padding to 24
        blob.extend(header(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 72));
        blob.extend_from_slice(&2u32.to_ne_bytes()); // nr_iovas
        blob.extend_from_slice(&0u32.to_ne_bytes()); // reserved
        for (start, end) in [(0u64, 0xfedf_ffffu64), (0xfef0_0000, 0xffff_ffff_ffff)] {
            blob.extend_from_slice(&start.to_ne_bytes());
            blob.extend_from_slice(&end.to_ne_bytes());
        }
        blob.extend(header(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, 104));
        blob.extend_from_slice(&0u32.to_ne_bytes()); // flags
        blob.extend_from_slice(&[0; 4]); // padding
        blob.extend_from_slice(&0x1000u64.to_ne_bytes()); // pgsize_bitmap
        blob.extend_from_slice(&0x1000_0000u64.to_ne_bytes()); // max_dirty_bitmap_size
        blob.extend(header(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0));
        blob.extend_from_slice(&65535u32.to_ne_bytes()); // avail
        blob.extend_from_slice(&[0; 4]); // padding
        assert_eq!(blob.len(), 120);

        let cap_offset = u32::from_ne_bytes(blob[16..20].try_into().unwrap());
        let caps = decode_chain(&blob, cap_offset, 24, IommuCap::decode).unwrap();
        let ranges = vec![
            IovaRange {
                start: 0,
                end: 0xfedf_ffff,
            },
            IovaRange {
                start: 0xfef0_0000,
                end: 0xffff_ffff_ffff,
            },
        ];
        assert_eq!(
            caps,
            [
                IommuCap::IovaRanges(ranges.clone()),
                IommuCap::Migration {
                    flags: 0,
                    pgsize_bitmap: 0x1000,
                    max_dirty_bitmap_size: 0x1000_0000
                },
                IommuCap::DmaAvail(65535),
            ]
        );
        assert!(ranges[0].contains_span(0, 0xfee0_0000));
        assert!(!ranges.iter().any(|r| r.contains(0xfee0_0000)));
        assert_eq!(ranges[1].size(), 0xffff_ffff_ffff - 0xfef0_0000 + 1);
        let offsets: Vec<_> = parse_chain(&blob, cap_offset, 24)
            .unwrap()
            .iter()
            .map(|c| (c.offset, c.data.len()))
            .collect();
        assert_eq!(offsets, [(24, 48), (72, 32), (104, 16)]);
    }

    // ---- device capabilities ----

    fn zpci_base(version: u16, fh: Option<u32>) -> Vec<u8> {
        let mut p = payload(&[
            &ne64(0x1_0000),
            &ne64(0xffff_ffff),
            &0x1234u16.to_ne_bytes(),
            &7u16.to_ne_bytes(),
            &64u16.to_ne_bytes(),
            &[0x0a, 0x03],
        ]);
        if let Some(fh) = fh {
            p.extend_from_slice(&fh.to_ne_bytes());
        }
        one_cap(1, version, p)
    }

    #[test]
    fn decodes_zpci_base() {
        let v1 = ZpciBase {
            start_dma: 0x1_0000,
            end_dma: 0xffff_ffff,
            pchid: 0x1234,
            vfn: 7,
            fmb_length: 64,
            pft: 0x0a,
            gid: 3,
            fh: None,
        };
        assert_eq!(
            DeviceCap::decode(&only(&zpci_base(1, None))),
            Ok(DeviceCap::ZpciBase(v1))
        );
        assert_eq!(
            DeviceCap::decode(&only(&zpci_base(2, Some(0x0800_0001)))),
            Ok(DeviceCap::ZpciBase(ZpciBase {
                fh: Some(0x0800_0001),
                ..v1
            }))
        );
        assert!(matches!(
            DeviceCap::decode(&only(&zpci_base(2, None))),
            Err(CapChainError::Truncated {
                id: 1,
                need: 36,
                have: 32,
                ..
            })
        ));
    }

    #[test]
    fn decodes_zpci_group() {
        let mut p = payload(&[
            &ne64(0xffff_ffff_ffff),
            &ne64(0xfe00_0000),
            &ne64(1),
            &4u16.to_ne_bytes(),
            &2048u16.to_ne_bytes(),
            &128u16.to_ne_bytes(),
            &[3, 0],
            &0x800u16.to_ne_bytes(),
        ]);
        let v1 = ZpciGroup {
            dasm: 0xffff_ffff_ffff,
            msi_addr: 0xfe00_0000,
            flags: 1,
            mui: 4,
            noi: 2048,
            maxstbl: 128,
            version: 3,
            imaxstbl: None,
        };
        assert_eq!(
            DeviceCap::decode(&only(&one_cap(2, 2, p.clone()))),
            Ok(DeviceCap::ZpciGroup(ZpciGroup {
                imaxstbl: Some(0x800),
                ..v1
            }))
        );
        p.truncate(31); // version 1 ends after `version` at byte 39 of the capability
        assert_eq!(
            DeviceCap::decode(&only(&one_cap(2, 1, p.clone()))),
            Ok(DeviceCap::ZpciGroup(v1))
        );
        p.truncate(28);
        assert!(matches!(
            DeviceCap::decode(&only(&one_cap(2, 1, p))),
            Err(CapChainError::Truncated {
                id: 2,
                need: 39,
                have: 36,
                ..
            })
        ));
    }

    #[test]
    fn decodes_zpci_strings() {
        let util = one_cap(
            3,
            1,
            payload(&[&5u32.to_ne_bytes(), b"\xc1\xc2\xc3\xc4\xc5"]),
        );
        assert_eq!(
            DeviceCap::decode(&only(&util)),
            Ok(DeviceCap::ZpciUtil(b"\xc1\xc2\xc3\xc4\xc5".to_vec()))
        );
        let pfip = one_cap(4, 1, payload(&[&2u32.to_ne_bytes(), &[1, 2]]));
        assert_eq!(
            DeviceCap::decode(&only(&pfip)),
            Ok(DeviceCap::ZpciPfip(vec![1, 2]))
        );
        let long = one_cap(4, 1, payload(&[&9u32.to_ne_bytes(), &[1, 2]]));
        assert!(matches!(
            DeviceCap::decode(&only(&long)),
            Err(CapChainError::Truncated {
                id: 4,
                need: 21,
                have: 16,
                ..
            })
        ));
        assert_eq!(
            DeviceCap::decode(&only(&one_cap(77, 1, vec![]))),
            Ok(DeviceCap::Unknown { id: 77, version: 1 })
        );
    }

    // ---- properties ----

    /// Walks the chain and checks every invariant the module promises, whatever the input.
    fn check_walk(buf: &[u8], first: u32, fixed_len: usize) -> Result<(), TestCaseError> {
        let mut chain = CapChain::new(buf, first, fixed_len);
        let (_, upper) = chain.size_hint();
        let upper = upper.unwrap_or(usize::MAX);
        prop_assert!(upper <= buf.len() / CAP_HEADER_LEN + 1);
        let mut oks = 0usize;
        let mut prev: Option<usize> = None;
        let mut steps = 0usize;
        while let Some(item) = chain.next() {
            steps += 1;
            prop_assert!(steps <= upper, "more items than size_hint promised");
            match item {
                Ok(cap) => {
                    oks += 1;
                    prop_assert!(cap.offset >= fixed_len);
                    prop_assert_eq!(cap.offset % CAP_ALIGN, 0);
                    prop_assert!(cap.data.len() >= CAP_HEADER_LEN);
                    prop_assert!(cap.offset + cap.data.len() <= buf.len());
                    if let Some(p) = prev {
                        prop_assert!(cap.offset >= p + CAP_HEADER_LEN);
                    }
                    prev = Some(cap.offset);
                    // The decoders never panic either.
                    let _ = RegionCap::decode(&cap);
                    let _ = IommuCap::decode(&cap);
                    let _ = DeviceCap::decode(&cap);
                }
                Err(_) => {
                    prop_assert_eq!(chain.next(), None, "an error ends the walk");
                    break;
                }
            }
        }
        prop_assert!(oks <= buf.len() / CAP_HEADER_LEN);
        prop_assert_eq!(chain.next(), None);
        prop_assert_eq!(chain.next(), None);
        Ok(())
    }

    fn cap_strategy() -> impl Strategy<Value = (u16, u16, Vec<u8>)> {
        (
            0u16..8,
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..48).prop_map(|mut p| {
                p.resize(p.len() / 4 * 4, 0);
                p
            }),
        )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_terminate(
            buf in prop::collection::vec(any::<u8>(), 0..512),
            first in prop_oneof![0u32..600, any::<u32>()],
            fixed_len in 0usize..64,
        ) {
            check_walk(&buf, first, fixed_len)?;
        }

        #[test]
        fn corrupted_chains_never_panic_and_terminate(
            fixed4 in 0usize..10,
            caps in prop::collection::vec(cap_strategy(), 1..10),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let (mut buf, offsets) = build(fixed4 * 4, &caps);
            for (index, byte) in edits {
                let i = index.index(buf.len());
                buf[i] = byte;
            }
            check_walk(&buf, first(&offsets), fixed4 * 4)?;
        }

        #[test]
        fn valid_chains_round_trip(
            fixed4 in 0usize..10,
            caps in prop::collection::vec(cap_strategy(), 0..10),
            trailing in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            let fixed_len = fixed4 * 4;
            let (mut buf, offsets) = build(fixed_len, &caps);
            buf.extend_from_slice(&trailing);
            // A chain built at offset 0 cannot be named by `first` (0 means none): skip it.
            prop_assume!(offsets.first() != Some(&0));
            let parsed = parse_chain(&buf, first(&offsets), fixed_len);
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            let parsed = parsed.unwrap_or_default();
            prop_assert_eq!(parsed.len(), caps.len());
            for (i, (cap, (id, version, payload))) in parsed.iter().zip(&caps).enumerate() {
                prop_assert_eq!(cap.id, *id);
                prop_assert_eq!(cap.version, *version);
                prop_assert_eq!(cap.offset, offsets[i]);
                let mut expected = payload.clone();
                if i + 1 == caps.len() {
                    expected.extend_from_slice(&trailing);
                }
                prop_assert_eq!(cap.payload(), &expected[..]);
            }
        }
    }
}
