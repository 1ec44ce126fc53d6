//! Interrupts: `VFIO_DEVICE_GET_IRQ_INFO` and `VFIO_DEVICE_SET_IRQS`.
//!
//! Each IRQ index (INTx, MSI, MSI-X, ERR, REQ for PCI) has a number of vectors. `SET_IRQS`
//! combines an action (mask, unmask, trigger) with a data kind (none, bool per vector, eventfd per
//! vector) over a range of vectors `start .. start + count`. [`Device::set_irqs`] is the checked,
//! typed form of that one ioctl.

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Device;
use crate::error::{Errno, Error, Object, Result};
use crate::uapi::buf::{self, IrqSetData};
use crate::uapi::vfio;

bitflags::bitflags! {
    /// `vfio_irq_info.flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct IrqFlags: u32 {
        /// `VFIO_IRQ_INFO_EVENTFD`: vectors can signal an eventfd.
        const EVENTFD = vfio::VFIO_IRQ_INFO_EVENTFD;
        /// `VFIO_IRQ_INFO_MASKABLE`: vectors can be masked and unmasked.
        const MASKABLE = vfio::VFIO_IRQ_INFO_MASKABLE;
        /// `VFIO_IRQ_INFO_AUTOMASKED`: the kernel masks the vector when it fires (level-triggered
        /// INTx); it must be unmasked after servicing.
        const AUTOMASKED = vfio::VFIO_IRQ_INFO_AUTOMASKED;
        /// `VFIO_IRQ_INFO_NORESIZE`: the set of enabled vectors cannot change without disabling
        /// the index first.
        const NORESIZE = vfio::VFIO_IRQ_INFO_NORESIZE;
        // Flags a newer kernel may add are kept, not dropped.
        const _ = !0;
    }
}

/// An IRQ index, as the kernel numbers them; the named constants are vfio-pci's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IrqIndex(pub u32);

impl IrqIndex {
    /// `VFIO_PCI_INTX_IRQ_INDEX`: the legacy level-triggered interrupt.
    pub const INTX: IrqIndex = IrqIndex(vfio::VFIO_PCI_INTX_IRQ_INDEX);
    /// `VFIO_PCI_MSI_IRQ_INDEX`.
    pub const MSI: IrqIndex = IrqIndex(vfio::VFIO_PCI_MSI_IRQ_INDEX);
    /// `VFIO_PCI_MSIX_IRQ_INDEX`.
    pub const MSIX: IrqIndex = IrqIndex(vfio::VFIO_PCI_MSIX_IRQ_INDEX);
    /// `VFIO_PCI_ERR_IRQ_INDEX`: AER error notification.
    pub const ERR: IrqIndex = IrqIndex(vfio::VFIO_PCI_ERR_IRQ_INDEX);
    /// `VFIO_PCI_REQ_IRQ_INDEX`: the kernel asks the user to release the device.
    pub const REQ: IrqIndex = IrqIndex(vfio::VFIO_PCI_REQ_IRQ_INDEX);

    /// The vfio-pci name of this index (`"INTx"`, `"MSI-X"`, ...).
    pub fn pci_name(self) -> Option<&'static str> {
        const NAMES: [&str; 5] = ["INTx", "MSI", "MSI-X", "ERR", "REQ"];
        NAMES.get(self.0 as usize).copied()
    }
}

impl From<u32> for IrqIndex {
    fn from(i: u32) -> Self {
        IrqIndex(i)
    }
}

impl fmt::Display for IrqIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `VFIO_DEVICE_GET_IRQ_INFO`: one IRQ index of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqInfo {
    /// The index.
    pub index: IrqIndex,
    /// What the index supports.
    pub flags: IrqFlags,
    /// How many vectors it has (0 when the device does not implement it).
    pub count: u32,
}

/// What `VFIO_DEVICE_SET_IRQS` does to the selected vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IrqAction {
    /// `VFIO_IRQ_SET_ACTION_MASK`.
    Mask,
    /// `VFIO_IRQ_SET_ACTION_UNMASK`.
    Unmask,
    /// `VFIO_IRQ_SET_ACTION_TRIGGER`: with eventfds, binds them as the vectors' triggers; with no
    /// data or `true`, fires the vectors (loopback, no device involved).
    Trigger,
}

impl IrqAction {
    fn raw(self) -> u32 {
        match self {
            IrqAction::Mask => vfio::VFIO_IRQ_SET_ACTION_MASK,
            IrqAction::Unmask => vfio::VFIO_IRQ_SET_ACTION_UNMASK,
            IrqAction::Trigger => vfio::VFIO_IRQ_SET_ACTION_TRIGGER,
        }
    }
}

/// The data of a `VFIO_DEVICE_SET_IRQS` request, one entry per vector from `start` on.
#[derive(Debug, Clone, Copy)]
pub enum IrqData<'a> {
    /// `VFIO_IRQ_SET_DATA_NONE`: act on `count` vectors unconditionally. `Trigger` with
    /// `count == 0` (and `start == 0`) disables the whole index.
    None {
        /// The number of vectors.
        count: u32,
    },
    /// `VFIO_IRQ_SET_DATA_BOOL`: act on the vectors whose entry is `true`.
    Bool(&'a [bool]),
    /// `VFIO_IRQ_SET_DATA_EVENTFD`: for `Trigger`, the eventfd each vector signals (`None`
    /// leaves that vector without one / removes it); for `Unmask` on INTx, the eventfd that
    /// unmasks when written (the "resample" fd).
    Eventfd(&'a [Option<BorrowedFd<'a>>]),
}

impl IrqData<'_> {
    fn count(&self) -> u32 {
        match self {
            IrqData::None { count } => *count,
            IrqData::Bool(b) => b.len().try_into().unwrap_or(u32::MAX),
            IrqData::Eventfd(f) => f.len().try_into().unwrap_or(u32::MAX),
        }
    }
}

impl Device {
    pub(crate) fn irq_object(&self, index: u32) -> Object {
        Object::Irq {
            device: self.name().to_string(),
            index,
        }
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for `index`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for an index at or past
    /// [`DeviceInfo::num_irqs`](super::DeviceInfo::num_irqs), [`Error::Ioctl`] if the ioctl fails,
    /// [`Error::Malformed`] if the kernel describes another index.
    #[doc(alias = "VFIO_DEVICE_GET_IRQ_INFO")]
    pub fn irq_info(&self, index: impl Into<IrqIndex>) -> Result<IrqInfo> {
        let index = index.into().0;
        if index >= self.info().num_irqs {
            return Err(Error::out_of_range(
                "irq_info",
                self.irq_object(index),
                format!("the device has {} IRQ indexes", self.info().num_irqs),
            ));
        }
        let info = self
            .fd()
            .get_irq_info(index)
            .map_err(|f| f.on(self.irq_object(index)))?;
        if info.index != index {
            return Err(Error::malformed(
                "VFIO_DEVICE_GET_IRQ_INFO",
                self.irq_object(index),
                crate::error::Malformation::Other(format!(
                    "asked for IRQ index {index}, the kernel described {}",
                    info.index
                )),
            ));
        }
        Ok(IrqInfo {
            index: IrqIndex(index),
            flags: IrqFlags::from_bits_retain(info.flags),
            count: info.count,
        })
    }

    /// Every IRQ index of the device, each with its kernel index.
    ///
    /// # Errors
    ///
    /// As [`Device::irq_info`].
    pub fn irqs(&self) -> Result<Vec<IrqInfo>> {
        (0..self.info().num_irqs)
            .map(|i| self.irq_info(i))
            .collect()
    }

    /// `VFIO_DEVICE_SET_IRQS`: applies `action` to vectors `start ..` of `index` with `data`.
    ///
    /// The request is checked against the index's info first, so a bad request leaves the
    /// index as it was and gets a precise error instead of the kernel's bare `EINVAL`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) when the vectors are out of range;
    /// [`Error::NotSupported`] when the index has no vectors, is not maskable (for `Mask` and
    /// `Unmask` other than INTx's resample eventfd) or takes no eventfds; [`Error::Ioctl`] when the
    /// kernel refuses (`EBADF` for a closed eventfd, `EINVAL` when NORESIZE forbids the change).
    #[doc(alias = "VFIO_DEVICE_SET_IRQS")]
    pub fn set_irqs(
        &self,
        index: impl Into<IrqIndex>,
        action: IrqAction,
        start: u32,
        data: IrqData<'_>,
    ) -> Result<()> {
        let index = index.into();
        let info = self.irq_info(index)?;
        let object = || self.irq_object(index.0);
        let count = data.count();
        let disable = action == IrqAction::Trigger && matches!(data, IrqData::None { count: 0 });
        if info.count == 0 {
            return Err(Error::NotSupported {
                op: "set_irqs",
                object: object(),
                reason: "the device implements no vector at this index".into(),
                errno: Errno::EINVAL,
            });
        }
        if !disable {
            let end = start
                .checked_add(count)
                .filter(|&end| count > 0 && end <= info.count);
            if end.is_none() {
                return Err(Error::out_of_range(
                    "set_irqs",
                    object(),
                    format!(
                        "vectors {start}..{} requested, the index has {} (and at least one must be given)",
                        u64::from(start) + u64::from(count),
                        info.count
                    ),
                ));
            }
        } else if start != 0 {
            return Err(Error::invalid(
                "set_irqs",
                object(),
                "disabling an index (trigger with no vectors) needs start 0",
            ));
        }
        if matches!(action, IrqAction::Mask | IrqAction::Unmask)
            && !info.flags.contains(IrqFlags::MASKABLE)
        {
            return Err(Error::NotSupported {
                op: "set_irqs",
                object: object(),
                reason: "the index is not maskable (no VFIO_IRQ_INFO_MASKABLE)".into(),
                errno: Errno::EINVAL,
            });
        }
        if matches!(data, IrqData::Eventfd(_)) && !info.flags.contains(IrqFlags::EVENTFD) {
            return Err(Error::NotSupported {
                op: "set_irqs",
                object: object(),
                reason: "the index does not signal eventfds (no VFIO_IRQ_INFO_EVENTFD)".into(),
                errno: Errno::EINVAL,
            });
        }
        let fds: Vec<i32>;
        let raw = match data {
            IrqData::None { count } => IrqSetData::None { count },
            IrqData::Bool(b) => IrqSetData::Bool(b),
            IrqData::Eventfd(f) => {
                fds = f
                    .iter()
                    .map(|fd| fd.map_or(-1, |fd| fd.as_raw_fd()))
                    .collect();
                IrqSetData::Eventfd(&fds)
            }
        };
        let request = buf::irq_set(index.0, action.raw(), start, raw);
        self.fd().set_irqs(&request).map_err(|f| f.on(object()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_index_names() {
        assert_eq!(IrqIndex::INTX.pci_name(), Some("INTx"));
        assert_eq!(IrqIndex::MSIX.pci_name(), Some("MSI-X"));
        assert_eq!(IrqIndex::REQ.pci_name(), Some("REQ"));
        assert_eq!(IrqIndex(9).pci_name(), None);
    }

    #[test]
    fn data_counts() {
        assert_eq!(IrqData::None { count: 3 }.count(), 3);
        assert_eq!(IrqData::Bool(&[true, false]).count(), 2);
        assert_eq!(IrqData::Eventfd(&[None, None, None]).count(), 3);
    }
}
