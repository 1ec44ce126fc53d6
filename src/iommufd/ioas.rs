//! [`Ioas`]: an I/O address space of an iommufd.
//!
//! # Safety
//!
//! The only `unsafe` here is [`Ioas::map_raw`], an `unsafe fn` that forwards its caller's
//! promise (the memory outlives the mapping) to the raw `IOMMU_IOAS_MAP` call.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use super::Iommufd;
use std::sync::atomic::Ordering;

use crate::dma::DmaState;
use crate::error::{Errno, Error, Object, Result};
use crate::iommu::{DmaAccess, IovaRange};
use crate::uapi::iommufd as uapi;

pub(crate) struct IoasInner {
    iommufd: Iommufd,
    id: u32,
    /// The DMA layer's state: the IOVA allocator of [`DmaBuffer`]s and its counters.
    ///
    /// [`DmaBuffer`]: crate::DmaBuffer
    dma: DmaState,
}

impl Drop for IoasInner {
    fn drop(&mut self) {
        // Every device attached to the IOAS holds a handle, so none is attached now: the kernel
        // unmaps what is left and frees the IOAS. An error (a HWPT allocated over it by hand,
        // say) leaves it to the close of the iommufd; nothing here can panic.
        let _ = self.iommufd.0.fd.destroy(self.id);
    }
}

/// An I/O address space (`IOMMU_IOAS_ALLOC`): the IOVA → memory mappings that the devices
/// attached to it see.
///
/// A cheap handle (an `Arc`): devices attached to it hold one, so it is destroyed
/// (`IOMMU_DESTROY`, which unmaps everything left) only after the last of them is closed and
/// the last handle dropped.
#[derive(Clone)]
pub struct Ioas(pub(crate) Arc<IoasInner>);

impl fmt::Debug for Ioas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ioas").field("id", &self.0.id).finish()
    }
}

/// The IOVA ranges an IOAS can map now, and the alignment a mapping's IOVA needs
/// (`IOMMU_IOAS_IOVA_RANGES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoasRanges {
    /// The usable ranges, inclusive ends, ascending. The attached devices' IOMMUs and reserved
    /// regions (the MSI window on x86) are already taken out.
    pub ranges: Vec<IovaRange>,
    /// The minimum alignment of a mapping's IOVA (the smallest IOMMU page size).
    pub alignment: u64,
}

impl Ioas {
    pub(crate) fn adopt(iommufd: Iommufd, id: u32) -> Ioas {
        Ioas(Arc::new(IoasInner {
            iommufd,
            id,
            dma: DmaState::default(),
        }))
    }

    pub(crate) fn dma_state(&self) -> &DmaState {
        &self.0.dma
    }

    /// The IOAS's id in its iommufd (what `VFIO_DEVICE_ATTACH_IOMMUFD_PT` takes).
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The iommufd the IOAS belongs to.
    pub fn iommufd(&self) -> &Iommufd {
        &self.0.iommufd
    }

    /// Whether two handles refer to the same IOAS.
    pub fn same_as(&self, other: &Ioas) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn object(&self) -> Object {
        Object::Ioas(self.0.id)
    }

    /// `IOMMU_IOAS_MAP`: maps `len` bytes of this process's memory at `vaddr` at `iova`, or at
    /// an IOVA the kernel picks when `iova` is `None`; returns the IOVA. The kernel pins the
    /// memory for as long as it is mapped.
    ///
    /// # Safety
    ///
    /// Devices attached to the IOAS may read and (unless `access` is
    /// [`DmaAccess::ReadOnly`]) write `[vaddr, vaddr + len)` until the range is unmapped
    /// ([`Ioas::unmap`], [`Ioas::unmap_all`], or the IOAS's destruction). The caller must keep
    /// that memory allocated, and must not let Rust code hold references to it that assume no
    /// one else writes it, until then.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`]: `EINVAL` for an unaligned address or length, `EEXIST` when the IOVA
    /// range overlaps a mapping, `ENOSPC` when no free IOVA range is large enough or the fixed
    /// one is outside the usable ranges, `EOVERFLOW` when `iova + len` wraps, `ENOMEM` past
    /// `RLIMIT_MEMLOCK`, `EFAULT` for an unmapped `vaddr`.
    ///
    /// The kernel maps first and copies the chosen IOVA back last, so a failed copy
    /// (`EFAULT`) can leave a mapping behind: at a fixed `iova` this call then unmaps the
    /// range before it returns the error (found by the fault-injection sweep, tests/faults);
    /// with a kernel-chosen IOVA the mapping's address is unknown, and only
    /// [`Ioas::unmap_all`] or the IOAS's end removes it.
    #[doc(alias = "IOMMU_IOAS_MAP")]
    pub unsafe fn map_raw(
        &self,
        vaddr: *const u8,
        len: u64,
        access: DmaAccess,
        iova: Option<u64>,
    ) -> Result<u64> {
        let mut flags = 0;
        if access.device_reads() {
            flags |= uapi::IOMMU_IOAS_MAP_READABLE;
        }
        if access.device_writes() {
            flags |= uapi::IOMMU_IOAS_MAP_WRITEABLE;
        }
        if iova.is_some() {
            flags |= uapi::IOMMU_IOAS_MAP_FIXED_IOVA;
        }
        self.0.dma.map_ioctls.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded to the caller's contract above.
        let mapped = unsafe {
            self.0
                .iommufd
                .0
                .fd
                .ioas_map(self.0.id, flags, vaddr as u64, len, iova.unwrap_or(0))
        }
        .map_err(|f| f.on(self.object()));
        if let (Err(e), Some(at)) = (&mapped, iova) {
            if e.errno() == Errno::EFAULT {
                // Nothing else can be mapped in the range (that map would fail with EEXIST):
                // whatever the unmap finds is this call's. ENOENT: nothing was mapped.
                let _ = self.unmap_teardown(at, len);
            }
        }
        mapped
    }

    /// `IOMMU_IOAS_UNMAP`: unmaps every mapping that lies inside `[iova, iova + len)`; returns
    /// the bytes unmapped. A mapping only partly inside the range is refused as a whole.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`]: `ENOENT` when nothing is mapped there or a mapping would be split,
    /// `EOVERFLOW` when the range wraps past 2^64.
    #[doc(alias = "IOMMU_IOAS_UNMAP")]
    pub fn unmap(&self, iova: u64, len: u64) -> Result<u64> {
        self.0.dma.unmap_ioctls.fetch_add(1, Ordering::Relaxed);
        self.unmap_uncounted(iova, len)
    }

    /// `IOMMU_IOAS_UNMAP` without counting it (the DMA layer counts its own).
    pub(crate) fn unmap_uncounted(&self, iova: u64, len: u64) -> Result<u64> {
        self.0
            .iommufd
            .0
            .fd
            .ioas_unmap(self.0.id, iova, len)
            .map_err(|f| f.on(self.object()))
    }

    /// `IOMMU_IOAS_UNMAP` of a range this crate mapped, for teardown; `Ok(0)` when nothing
    /// is mapped there. Retries what is worth retrying (`retry_teardown`), and asks again
    /// after `ENOENT`: the kernel answers it both when nothing is mapped in the range and when
    /// its lookup of the IOAS failed, which `CONFIG_IOMMUFD_TEST`'s fault injection
    /// (`fail_iommufd`, in `iommufd_get_object`) does to a live IOAS. Trusting the first
    /// `ENOENT` freed memory that was still mapped (found by the fault-injection sweep,
    /// tests/faults); two in a row cannot both be injected.
    pub(crate) fn unmap_teardown(&self, iova: u64, len: u64) -> Result<u64> {
        match crate::error::retry_teardown(|| self.unmap_uncounted(iova, len)) {
            Err(e) if e.errno() == Errno::ENOENT => match self.unmap_uncounted(iova, len) {
                Err(again) if again.errno() == Errno::ENOENT => Ok(0),
                other => other,
            },
            other => other,
        }
    }

    /// `IOMMU_IOAS_UNMAP` of everything (IOVA 0, length `u64::MAX`); returns the bytes
    /// unmapped. Mappings owned by a [`DmaBuffer`](crate::DmaBuffer) or
    /// [`DmaPool`](crate::DmaPool) go too: their memory stays allocated but devices can no
    /// longer reach it, and they say so (`is_mapped` is `false`,
    /// [`DmaMemory::iova_at`](crate::DmaMemory::iova_at) fails with
    /// [`Error::NotMapped`]).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses.
    pub fn unmap_all(&self) -> Result<u64> {
        let all = self.unmap(0, u64::MAX);
        if all.is_ok() {
            self.0.dma.mappings_dropped();
        }
        all
    }

    /// `IOMMU_IOAS_IOVA_RANGES`: the IOVA ranges usable now. They shrink when a device whose
    /// IOMMU is more limited attaches.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "IOMMU_IOAS_IOVA_RANGES")]
    pub fn iova_ranges(&self) -> Result<IoasRanges> {
        let (ranges, alignment) = self
            .0
            .iommufd
            .0
            .fd
            .ioas_iova_ranges(self.0.id)
            .map_err(|f| f.on(self.object()))?;
        Ok(IoasRanges {
            ranges: ranges
                .iter()
                .map(|r| IovaRange {
                    start: r.start,
                    end: r.last,
                })
                .collect(),
            alignment,
        })
    }

    /// `IOMMU_IOAS_ALLOW_IOVAS`: IOVAs the kernel picks ([`Ioas::map_raw`] with `None`) stay
    /// inside `ranges`; an empty list lifts the restriction.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a range whose end is below its start, [`Error::Ioctl`]:
    /// `EINVAL` for overlapping or unsorted ranges, `EBUSY` when existing mappings lie outside.
    #[doc(alias = "IOMMU_IOAS_ALLOW_IOVAS")]
    pub fn allow_iovas(&self, ranges: &[IovaRange]) -> Result<()> {
        if let Some(bad) = ranges.iter().find(|r| r.end < r.start) {
            return Err(Error::invalid(
                "allow_iovas",
                self.object(),
                format!(
                    "range {:#x}..={:#x} ends below its start",
                    bad.start, bad.end
                ),
            ));
        }
        let raw: Vec<uapi::iommu_iova_range> = ranges
            .iter()
            .map(|r| uapi::iommu_iova_range {
                start: r.start,
                last: r.end,
            })
            .collect();
        self.0
            .iommufd
            .0
            .fd
            .ioas_allow_iovas(self.0.id, &raw)
            .map_err(|f| f.on(self.object()))
    }

    /// `IOMMU_IOAS_COPY`: maps the `len` bytes that `src` maps at `src_iova` into this IOAS as
    /// well, at `iova` or where the kernel picks; returns the IOVA. The pages are the ones
    /// `src` pinned already: no second pin, no second `RLIMIT_MEMLOCK` charge. The copy stays
    /// mapped after `src` unmaps its range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an `src` of another iommufd, [`Error::Ioctl`]: `ENOENT`
    /// when `src` does not map the whole range, else as [`Ioas::map_raw`].
    #[doc(alias = "IOMMU_IOAS_COPY")]
    pub fn copy_from(
        &self,
        src: &Ioas,
        src_iova: u64,
        len: u64,
        access: DmaAccess,
        iova: Option<u64>,
    ) -> Result<u64> {
        if !src.iommufd().same_as(self.iommufd()) {
            return Err(Error::invalid(
                "copy_from",
                self.object(),
                "the source IOAS belongs to another iommufd",
            ));
        }
        let mut flags = 0;
        if access.device_reads() {
            flags |= uapi::IOMMU_IOAS_MAP_READABLE;
        }
        if access.device_writes() {
            flags |= uapi::IOMMU_IOAS_MAP_WRITEABLE;
        }
        if iova.is_some() {
            flags |= uapi::IOMMU_IOAS_MAP_FIXED_IOVA;
        }
        self.0.dma.map_ioctls.fetch_add(1, Ordering::Relaxed);
        self.0
            .iommufd
            .0
            .fd
            .ioas_copy(self.0.id, src.0.id, flags, src_iova, len, iova.unwrap_or(0))
            .map_err(|f| f.on(self.object()))
    }

    /// `IOMMU_OPTION_HUGE_PAGES`: whether the IOAS may use huge IOMMU pages (the default).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses.
    pub fn huge_pages(&self) -> Result<bool> {
        self.0
            .iommufd
            .0
            .fd
            .option(
                uapi::IOMMU_OPTION_HUGE_PAGES,
                uapi::IOMMU_OPTION_OP_GET,
                self.0.id,
                0,
            )
            .map(|v| v != 0)
            .map_err(|f| f.on(self.object()))
    }

    /// Sets `IOMMU_OPTION_HUGE_PAGES`: with `false` every mapping uses base pages (for tests of
    /// page-granular behaviour). Only allowed while nothing is mapped and no device attached.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`]: `EBUSY` when the IOAS has mappings or devices.
    pub fn set_huge_pages(&self, on: bool) -> Result<()> {
        self.0
            .iommufd
            .0
            .fd
            .option(
                uapi::IOMMU_OPTION_HUGE_PAGES,
                uapi::IOMMU_OPTION_OP_SET,
                self.0.id,
                u64::from(on),
            )
            .map(drop)
            .map_err(|f| f.on(self.object()))
    }
}
