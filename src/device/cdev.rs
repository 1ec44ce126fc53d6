//! A device opened through its cdev and bound to an iommufd: attach, detach, replace.

use std::sync::Mutex;

use super::{Backend, Device};
use crate::error::{Error, Result};
use crate::iommufd::{Hwpt, Ioas, Iommufd};
use crate::uapi::ioctl::DeviceFd;

/// The iommufd a cdev device is bound to, its id there, and what it is attached to.
pub(crate) struct Binding {
    iommufd: Iommufd,
    dev_id: u32,
    // What the device is attached to (kept alive by these handles). Dropped after the device
    // fd closes (see `DeviceInner`).
    attached: Mutex<Option<Attachment>>,
}

/// An attachment: the IOAS, the HWPT id, and the HWPT itself when the driver allocated it.
struct Attachment {
    ioas: Ioas,
    hwpt_id: u32,
    _hwpt: Option<Hwpt>,
}

impl Binding {
    pub(crate) fn dev_id(&self) -> u32 {
        self.dev_id
    }
}

impl Device {
    /// Binds a freshly opened cdev to `iommufd` and reads its info.
    pub(crate) fn from_cdev(fd: DeviceFd, name: String, iommufd: Iommufd) -> Result<Device> {
        let dev_id = fd
            .bind_iommufd(&iommufd.0.fd)
            .map_err(|f| f.on(crate::error::Object::Device(name.clone())))?;
        let binding = Binding {
            iommufd,
            dev_id,
            attached: Mutex::new(None),
        };
        Self::with_backend(fd, name, Backend::Cdev(binding))
    }

    fn binding(&self, op: &'static str) -> Result<&Binding> {
        match &self.0.backend {
            Backend::Cdev(b) => Ok(b),
            Backend::Group(_) => Err(Error::invalid(
                op,
                self.object(),
                "the device was opened through its group: its DMA goes through the group's \
                 container, not an iommufd (open it with Iommufd::open_pci_device instead)",
            )),
        }
    }

    /// The iommufd the device is bound to and its id there (`out_devid` of
    /// `VFIO_DEVICE_BIND_IOMMUFD`), or `None` for a device opened through its group.
    pub fn iommufd(&self) -> Option<(&Iommufd, u32)> {
        match &self.0.backend {
            Backend::Cdev(b) => Some((&b.iommufd, b.dev_id)),
            Backend::Group(_) => None,
        }
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`: attaches the device to `ioas`, so that its DMA is
    /// translated by the IOAS's mappings; a device attached elsewhere is moved (the kernel
    /// replaces the attachment without a window of no translation). Returns the id of the
    /// hardware page table the kernel attached it through. The device keeps `ioas` alive while
    /// attached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a device opened through its group or an IOAS of another
    /// iommufd, [`Error::Ioctl`] when the kernel refuses (`EINVAL`, `ENOENT` for a bad id).
    #[doc(alias = "VFIO_DEVICE_ATTACH_IOMMUFD_PT")]
    pub fn attach(&self, ioas: &Ioas) -> Result<u32> {
        let binding = self.binding("attach")?;
        if !ioas.iommufd().same_as(&binding.iommufd) {
            return Err(Error::invalid(
                "attach",
                self.object(),
                format!(
                    "IOAS {} belongs to another iommufd than the one the device is bound to",
                    ioas.id()
                ),
            ));
        }
        let mut attached = binding
            .attached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let hwpt = self
            .0
            .fd
            .attach_iommufd_pt(ioas.id())
            .map_err(|f| f.on(self.object()))?;
        Self::attached(
            &mut attached,
            Attachment {
                ioas: ioas.clone(),
                hwpt_id: hwpt,
                _hwpt: None,
            },
        );
        Ok(hwpt)
    }

    /// Records a new attachment. The device's reserved regions (the MSI window) now cut the
    /// new IOAS's ranges; the old IOAS, if any, lost them.
    fn attached(slot: &mut Option<Attachment>, new: Attachment) {
        if let Some(old) = slot.as_ref() {
            old.ioas.dma_state().invalidate_ranges();
        }
        new.ioas.dma_state().invalidate_ranges();
        *slot = Some(new);
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` with a HWPT the driver allocated
    /// ([`Ioas::alloc_hwpt`]): the device's DMA is translated by that page table (the IOAS's
    /// mappings); an existing attachment is replaced without a window of no translation. The
    /// device keeps the HWPT alive while attached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a device opened through its group or a HWPT of another
    /// iommufd, [`Error::Ioctl`] when the kernel refuses (`EINVAL` for a HWPT made for an
    /// incompatible IOMMU).
    #[doc(alias = "VFIO_DEVICE_ATTACH_IOMMUFD_PT")]
    pub fn attach_hwpt(&self, hwpt: &Hwpt) -> Result<()> {
        let binding = self.binding("attach_hwpt")?;
        if !hwpt.ioas().iommufd().same_as(&binding.iommufd) {
            return Err(Error::invalid(
                "attach_hwpt",
                self.object(),
                format!(
                    "HWPT {} belongs to another iommufd than the one the device is bound to",
                    hwpt.id()
                ),
            ));
        }
        let mut attached = binding
            .attached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = self
            .0
            .fd
            .attach_iommufd_pt(hwpt.id())
            .map_err(|f| f.on(self.object()))?;
        Self::attached(
            &mut attached,
            Attachment {
                ioas: hwpt.ioas().clone(),
                hwpt_id: id,
                _hwpt: Some(hwpt.clone()),
            },
        );
        Ok(())
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT`: the device's DMA is blocked until it is attached again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a device opened through its group, [`Error::Ioctl`] when
    /// the kernel refuses.
    #[doc(alias = "VFIO_DEVICE_DETACH_IOMMUFD_PT")]
    pub fn detach(&self) -> Result<()> {
        let binding = self.binding("detach")?;
        let mut attached = binding
            .attached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.0
            .fd
            .detach_iommufd_pt()
            .map_err(|f| f.on(self.object()))?;
        if let Some(old) = attached.take() {
            old.ioas.dma_state().invalidate_ranges();
        }
        Ok(())
    }

    /// The IOAS the device is attached to, if any, and the HWPT id it is attached through.
    pub fn attached_ioas(&self) -> Option<(Ioas, u32)> {
        match &self.0.backend {
            Backend::Cdev(b) => b
                .attached
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .map(|a| (a.ioas.clone(), a.hwpt_id)),
            Backend::Group(_) => None,
        }
    }
}
