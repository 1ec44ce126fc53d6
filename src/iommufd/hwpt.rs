//! [`Hwpt`]: a hardware page table of an iommufd, allocated explicitly (`IOMMU_HWPT_ALLOC`), and
//! the IOMMU's dirty tracking on it.
//!
//! Attaching a device to an [`Ioas`] makes the kernel pick or create a page table for it. A
//! driver allocates one itself when it needs what only an explicit one offers: dirty tracking
//! by the IOMMU (live migration of DMA-written memory), or a nesting parent. The HWPT
//! translates through its IOAS's mappings; devices attach to it with [`Device::attach_hwpt`]
//! (replacing their attachment without a window of no translation).

use std::fmt;
use std::sync::Arc;

use super::Ioas;
use crate::device::Device;
use crate::error::{Errno, Error, Object, Result};
use crate::iommu::DirtyBitmap;
use crate::uapi::iommufd as uapi;

bitflags::bitflags! {
    /// What to ask of a new HWPT (`iommu_hwpt_alloc.flags`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HwptFlags: u32 {
        /// `IOMMU_HWPT_ALLOC_NEST_PARENT`: the HWPT may be the parent (stage 2) of nested ones.
        const NEST_PARENT = uapi::IOMMU_HWPT_ALLOC_NEST_PARENT;
        /// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`: the IOMMU records which pages devices write
        /// ([`Hwpt::set_dirty_tracking`], [`Hwpt::read_dirty`]).
        const DIRTY_TRACKING = uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    }
}

pub(crate) struct HwptInner {
    ioas: Ioas,
    id: u32,
    flags: HwptFlags,
}

impl Drop for HwptInner {
    fn drop(&mut self) {
        // Devices attached to the HWPT hold a handle, so none is attached now. An error leaves
        // it to the close of the iommufd; nothing here can panic.
        let _ = self.ioas.iommufd().0.fd.destroy(self.id);
    }
}

/// A hardware page table (`IOMMU_HWPT_ALLOC`) over an [`Ioas`]: the IOAS's mappings, in the
/// format of one device's IOMMU.
///
/// A cheap handle (an `Arc`): devices attached to it hold one, and it holds its IOAS, so it is
/// destroyed (`IOMMU_DESTROY`) only after the last device left it and the last handle went.
#[derive(Clone)]
pub struct Hwpt(Arc<HwptInner>);

impl fmt::Debug for Hwpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hwpt")
            .field("id", &self.0.id)
            .field("ioas", &self.0.ioas.id())
            .field("flags", &self.0.flags)
            .finish()
    }
}

impl Ioas {
    /// `IOMMU_HWPT_ALLOC`: a page table for `device`'s IOMMU that translates through this
    /// IOAS's mappings. The device must be bound to the IOAS's iommufd; attach it (and others
    /// behind the same IOMMU) with [`Device::attach_hwpt`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a device not bound to this IOAS's iommufd;
    /// [`Error::NotSupported`] (`EOPNOTSUPP`) when the device's IOMMU cannot do what `flags` ask
    /// (dirty tracking needs e.g. VT-d's second-stage access/dirty bits, which
    /// [`HwInfo::dirty_tracking`](super::HwInfo::dirty_tracking) reports); [`Error::Ioctl`] for
    /// other refusals.
    #[doc(alias = "IOMMU_HWPT_ALLOC")]
    pub fn alloc_hwpt(&self, device: &Device, flags: HwptFlags) -> Result<Hwpt> {
        const OP: &str = "IOMMU_HWPT_ALLOC";
        let dev_id = self.iommufd().dev_id_of(device, OP)?;
        let id = self
            .iommufd()
            .0
            .fd
            .hwpt_alloc(dev_id, self.id(), flags.bits())
            .map_err(|f| f.on(device.object()))
            .map_err(|e| match e.errno() {
                Errno::EOPNOTSUPP => Error::NotSupported {
                    op: OP,
                    object: device.object().into(),
                    reason: format!(
                        "the device's IOMMU cannot make a page table with {flags:?} (for dirty \
                         tracking, see Iommufd::hw_info(..).dirty_tracking())"
                    )
                    .into(),
                    errno: Errno::EOPNOTSUPP,
                },
                _ => e,
            })?;
        Ok(Hwpt(Arc::new(HwptInner {
            ioas: self.clone(),
            id,
            flags,
        })))
    }
}

impl Hwpt {
    /// The HWPT's id in its iommufd.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The IOAS whose mappings it translates.
    pub fn ioas(&self) -> &Ioas {
        &self.0.ioas
    }

    /// The flags it was allocated with.
    pub fn flags(&self) -> HwptFlags {
        self.0.flags
    }

    /// Whether two handles refer to the same HWPT.
    pub fn same_as(&self, other: &Hwpt) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn object(&self) -> Object {
        Object::Ioas(self.0.ioas.id())
    }

    fn require_dirty(&self, op: &'static str) -> Result<()> {
        if self.0.flags.contains(HwptFlags::DIRTY_TRACKING) {
            return Ok(());
        }
        Err(Error::NotSupported {
            op,
            object: self.object().into(),
            reason: format!(
                "HWPT {} was allocated without HwptFlags::DIRTY_TRACKING",
                self.0.id
            )
            .into(),
            errno: Errno::EOPNOTSUPP,
        })
    }

    /// `IOMMU_HWPT_SET_DIRTY_TRACKING`: starts (`true`) or stops recording which pages the
    /// attached devices write.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] for a HWPT allocated without [`HwptFlags::DIRTY_TRACKING`];
    /// [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "IOMMU_HWPT_SET_DIRTY_TRACKING")]
    pub fn set_dirty_tracking(&self, on: bool) -> Result<()> {
        const OP: &str = "IOMMU_HWPT_SET_DIRTY_TRACKING";
        self.require_dirty(OP)?;
        self.0
            .ioas
            .iommufd()
            .0
            .fd
            .hwpt_set_dirty_tracking(self.0.id, on)
            .map_err(|f| f.on(self.object()))
    }

    /// `IOMMU_HWPT_GET_DIRTY_BITMAP`: which pages of `[iova, iova + size)` devices wrote since
    /// tracking started or the last read, one bit per `page_size` bytes; the bits read are
    /// cleared (see [`Hwpt::peek_dirty`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a page size that is not a power of two or a range not
    /// made of whole pages (`EINVAL`), or one past 2^64 (`EOVERFLOW`); [`Error::NotSupported`]
    /// as [`Hwpt::set_dirty_tracking`]; [`Error::Ioctl`] when the kernel refuses.
    #[doc(alias = "IOMMU_HWPT_GET_DIRTY_BITMAP")]
    pub fn read_dirty(&self, iova: u64, size: u64, page_size: u64) -> Result<DirtyBitmap> {
        self.dirty_bitmap(iova, size, page_size, 0)
    }

    /// [`Hwpt::read_dirty`] without clearing the bits
    /// (`IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`).
    ///
    /// # Errors
    ///
    /// As [`Hwpt::read_dirty`].
    pub fn peek_dirty(&self, iova: u64, size: u64, page_size: u64) -> Result<DirtyBitmap> {
        self.dirty_bitmap(
            iova,
            size,
            page_size,
            uapi::IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
        )
    }

    fn dirty_bitmap(
        &self,
        iova: u64,
        size: u64,
        page_size: u64,
        flags: u32,
    ) -> Result<DirtyBitmap> {
        const OP: &str = "IOMMU_HWPT_GET_DIRTY_BITMAP";
        self.require_dirty(OP)?;
        let mut bitmap = DirtyBitmap::new(OP, self.object(), iova, size, page_size)?;
        self.0
            .ioas
            .iommufd()
            .0
            .fd
            .hwpt_get_dirty_bitmap(self.0.id, flags, iova, size, page_size, &mut bitmap.words)
            .map_err(|f| f.on(self.object()))?;
        Ok(bitmap)
    }
}
