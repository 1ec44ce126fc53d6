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

mod decode;
pub use decode::*;

#[cfg(test)]
mod tests;
